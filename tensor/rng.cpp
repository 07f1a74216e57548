#include "tensor/rng.h"

#include <cmath>

namespace dearest {

namespace {
constexpr uint32_t kM0 = 0xD2511F53, kM1 = 0xCD9E8D57;  // Philox4x32 multipliers
constexpr uint32_t kW0 = 0x9E3779B9, kW1 = 0xBB67AE85;  // Weyl key increments

inline void round_once(std::array<uint32_t, 4>& c, const std::array<uint32_t, 2>& k) {
  uint64_t p0 = uint64_t(kM0) * c[0], p1 = uint64_t(kM1) * c[2];
  c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
}

// 24-bit float in [0,1) and 53-bit double in [0,1): exact, no rounding up to 1.
inline float u01f(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }
inline double u01d(uint32_t a, uint32_t b) {
  return double((uint64_t(a) << 21) ^ (b >> 11)) * (1.0 / 9007199254740992.0);
}
// Multiply-shift bounded integer: bias below range/2^64, and no rejection, so one draw per value.
inline uint64_t bounded(uint64_t x, uint64_t range) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * range) >> 64);
}
}  // namespace

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int r = 0; r < 10; ++r) {
    round_once(c, k);
    if (r < 9) k = {k[0] + kW0, k[1] + kW1};
  }
  return c;
}

std::array<uint32_t, 4> Rng::block(uint64_t index) const {
  // counter = (block index, stream): distinct streams never share a block.
  return philox4x32({uint32_t(index), uint32_t(index >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)},
                    {uint32_t(seed_), uint32_t(seed_ >> 32)});
}

uint32_t Rng::next_u32() { return block(counter_++)[0]; }
uint64_t Rng::next_u64() {
  auto b = block(counter_++);
  return (uint64_t(b[0]) << 32) | b[1];
}
double Rng::next_double() {
  auto b = block(counter_++);
  return u01d(b[0], b[1]);
}
int64_t Rng::next_int(int64_t lo, int64_t hi) {
  DEAREST_CHECK(hi > lo, "Rng::next_int: empty range [", lo, ", ", hi, ")");
  return lo + static_cast<int64_t>(bounded(next_u64(), static_cast<uint64_t>(hi - lo)));
}

Tensor Rng::uniform(const Shape& shape, double lo, double hi, DType dtype) {
  DEAREST_CHECK(is_floating(dtype), "Rng::uniform: dtype must be f32 or f64, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  const uint64_t base = counter_;
  if (dtype == DType::F32) {
    float* p = t.data<float>();
    const float flo = float(lo), fw = float(hi - lo);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t b = 0; b < (n + 3) / 4; ++b) {
      auto w = block(base + b);
      for (int j = 0; j < 4 && b * 4 + j < n; ++j) p[b * 4 + j] = flo + fw * u01f(w[j]);
    }
    counter_ += (n + 3) / 4;
  } else {
    double* p = t.data<double>();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t b = 0; b < (n + 1) / 2; ++b) {
      auto w = block(base + b);
      for (int j = 0; j < 2 && b * 2 + j < n; ++j) p[b * 2 + j] = lo + (hi - lo) * u01d(w[2 * j], w[2 * j + 1]);
    }
    counter_ += (n + 1) / 2;
  }
  return t;
}

Tensor Rng::normal(const Shape& shape, double mean, double std, DType dtype) {
  DEAREST_CHECK(is_floating(dtype), "Rng::normal: dtype must be f32 or f64, got ", dtype_name(dtype));
  // Box-Muller in double, one normal per pair of words: element i owns words 2i, 2i+1.
  Tensor t = Tensor::empty(shape, DType::F64);
  const int64_t n = t.numel();
  const uint64_t base = counter_;
  double* p = t.data<double>();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + 1) / 2; ++b) {
    auto w = block(base + b);
    for (int j = 0; j < 2 && b * 2 + j < n; ++j) {
      double u1 = (double(w[2 * j]) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]: log is finite
      double u2 = double(w[2 * j + 1]) * (1.0 / 4294967296.0);
      p[b * 2 + j] = mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    }
  }
  counter_ += (n + 1) / 2;
  return dtype == DType::F64 ? t : t.to(dtype);
}

Tensor Rng::integers(const Shape& shape, int64_t lo, int64_t hi) {
  DEAREST_CHECK(hi > lo, "Rng::integers: empty range [", lo, ", ", hi, ")");
  DEAREST_CHECK(lo >= INT32_MIN && hi - 1 <= INT32_MAX, "Rng::integers: range does not fit in i32");
  Tensor t = Tensor::empty(shape, DType::I32);
  const int64_t n = t.numel();
  const uint64_t base = counter_, range = static_cast<uint64_t>(hi - lo);
  int32_t* p = t.data<int32_t>();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + 1) / 2; ++b) {
    auto w = block(base + b);
    for (int j = 0; j < 2 && b * 2 + j < n; ++j)
      p[b * 2 + j] = int32_t(lo + int64_t(bounded((uint64_t(w[2 * j]) << 32) | w[2 * j + 1], range)));
  }
  counter_ += (n + 1) / 2;
  return t;
}

Tensor Rng::bernoulli(const Shape& shape, double prob, DType dtype) {
  DEAREST_CHECK(prob >= 0 && prob <= 1, "Rng::bernoulli: p must be in [0, 1], got ", prob);
  Tensor u = uniform(shape, 0, 1, DType::F64);
  Tensor out = Tensor::empty(shape, dtype);
  const double* up = u.data<double>();
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = up[i] < prob ? T(1) : T(0);
  });
  return out;
}

std::vector<int64_t> Rng::permutation(int64_t n) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[next_int(0, i + 1)]);
  return p;
}

}  // namespace dearest
