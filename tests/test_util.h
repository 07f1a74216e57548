// Helpers shared by the tests: random tensors from the project's RNG, comparisons that report the
// worst element, and the location of ../shared.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "tensor/ops/nn_params.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"

namespace dearest::test {

inline Tensor randn(const Shape& s, uint64_t seed, DType dt = DType::F32) { return Rng(seed, 7).normal(s, 0, 1, dt); }
inline Tensor randu(const Shape& s, uint64_t seed, double lo, double hi, DType dt = DType::F32) {
  return Rng(seed, 9).uniform(s, lo, hi, dt);
}

// max |a - b| / max(1e-30, max |b|): the error relative to the tensor's scale.
inline double rel_err(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape()));
  auto va = a.to_vector(), vb = b.to_vector();
  double m = 0, s = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    m = std::max(m, std::fabs(va[i] - vb[i]));
    s = std::max(s, std::fabs(vb[i]));
  }
  return m / std::max(s, 1e-30);
}

// As rel_err, but the scale is at least `floor`: for tensors that are zero in exact arithmetic
// (e.g. the gradient of a conv bias feeding a training-mode batch norm), where float noise remains.
inline double rel_err_floor(const Tensor& a, const Tensor& b, double floor) {
  auto vb = b.to_vector();
  double s = 0;
  for (double v : vb) s = std::max(s, std::fabs(v));
  return rel_err(a, b) * std::max(s, 1e-30) / std::max(s, floor);
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector(), vb = b.to_vector();
  EXPECT_EQ(va.size(), vb.size());
  double m = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  Tensor x = a.contiguous(), y = b.contiguous();
  return x.shape() == y.shape() && x.dtype() == y.dtype() && std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

// Square strides, padding and dilation: the common case in the tests.
inline Conv2dParams conv_params(int64_t stride, int64_t pad, int64_t dil = 1, int64_t groups = 1) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dil_h = p.dil_w = dil;
  p.groups = groups;
  return p;
}

inline std::string shared_dir() {
  if (const char* e = std::getenv("DEAREST_SHARED")) return e;
  return DEAREST_SHARED_DIR;
}

}  // namespace dearest::test

// Runs `body` with the thrown dearest::Error's message in `msg`; fails if nothing is thrown.
#define EXPECT_ERROR_CONTAINS(stmt, ...)                                              \
  do {                                                                                \
    try {                                                                             \
      stmt;                                                                           \
      ADD_FAILURE() << "expected an error from: " #stmt;                              \
    } catch (const ::dearest::Error& e) {                                             \
      for (const char* want : {__VA_ARGS__})                                          \
        EXPECT_NE(std::string(e.what()).find(want), std::string::npos)                \
            << "message \"" << e.what() << "\" lacks \"" << want << "\"";             \
    }                                                                                 \
  } while (0)
