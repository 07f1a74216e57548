#include "quant/integer_ops.h"

#include <cmath>
#include <limits>

#include "tensor/ops/matmul.h"

namespace dearest::quant {

FixedMultiplier quantize_multiplier(double real) {
  FixedMultiplier m;
  if (real == 0) return m;
  DEAREST_CHECK(real > 0 && std::isfinite(real), "quantize_multiplier: expected a positive finite multiplier, got ", real);
  int shift = 0;
  const double q = std::frexp(real, &shift);  // real = q * 2^shift, q in [0.5, 1)
  int64_t q_fixed = std::llround(q * double(int64_t(1) << 31));
  if (q_fixed == (int64_t(1) << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) return m;  // too small to represent: the product is 0
  DEAREST_CHECK(shift <= 30, "quantize_multiplier: multiplier ", real, " too large");
  m.multiplier = int32_t(q_fixed);
  m.shift = shift;
  return m;
}

int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  const bool overflow = a == b && a == std::numeric_limits<int32_t>::min();
  const int64_t ab = int64_t(a) * int64_t(b);
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  const int32_t high = int32_t((ab + nudge) / (int64_t(1) << 31));
  return overflow ? std::numeric_limits<int32_t>::max() : high;
}

int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = int32_t((int64_t(1) << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t multiply_by_quantized_multiplier(int32_t x, FixedMultiplier m) {
  const int left = m.shift > 0 ? m.shift : 0, right = m.shift > 0 ? 0 : -m.shift;
  const int64_t shifted = int64_t(x) * (int64_t(1) << left);
  DEAREST_CHECK(shifted >= std::numeric_limits<int32_t>::min() && shifted <= std::numeric_limits<int32_t>::max(),
                "multiply_by_quantized_multiplier: ", x, " << ", left, " overflows int32");
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(int32_t(shifted), m.multiplier), right);
}

namespace {

void check_int(const Tensor& t, const char* what, int64_t dims) {
  DEAREST_CHECK(t.dtype() == DType::I32 && t.dim() == dims, "integer op: ", what, " must be i32 with ", dims,
                " dims, got ", t.describe());
}

}  // namespace

Tensor int_conv2d(const Tensor& q_in_, int32_t z_in, const Tensor& w_, const Tensor& bias_, const Conv2dParams& p,
                  bool reference) {
  Tensor q_in = q_in_.contiguous(), w = w_.contiguous();
  check_int(q_in, "input", 4);
  check_int(w, "weight", 4);
  DEAREST_CHECK(p.groups == 1, "int_conv2d: groups are not supported");
  const int64_t N = q_in.size(0), C = q_in.size(1), H = q_in.size(2), W = q_in.size(3);
  const int64_t O = w.size(0), kh = w.size(2), kw = w.size(3);
  DEAREST_CHECK(w.size(1) == C, "int_conv2d: weight has ", w.size(1), " input channels, input ", C);
  const int64_t OH = (H + 2 * p.pad_h - p.dil_h * (kh - 1) - 1) / p.stride_h + 1;
  const int64_t OW = (W + 2 * p.pad_w - p.dil_w * (kw - 1) - 1) / p.stride_w + 1;
  const int64_t K = C * kh * kw, P = OH * OW;
  Tensor out = Tensor::empty({N, O, OH, OW}, DType::I32);
  const int32_t* x = q_in.data<int32_t>();
  const int32_t* wd = w.data<int32_t>();
  const int32_t* b = bias_.defined() ? bias_.contiguous().data<int32_t>() : nullptr;
  int32_t* o = out.data<int32_t>();
  // Column matrix of (q - z) per image: [K, P]; zero (in real terms) in the padding.
  auto column = [&](int64_t n, auto* col) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t row = (c * kh + i) * kw + j;
          for (int64_t oy = 0; oy < OH; ++oy) {
            const int64_t y = oy * p.stride_h - p.pad_h + i * p.dil_h;
            for (int64_t ox = 0; ox < OW; ++ox) {
              const int64_t xx = ox * p.stride_w - p.pad_w + j * p.dil_w;
              const bool in = y >= 0 && y < H && xx >= 0 && xx < W;
              col[row * P + oy * OW + ox] = in ? x[((n * C + c) * H + y) * W + xx] - z_in : 0;
            }
          }
        }
  };
  if (reference) {
    std::vector<int64_t> col(size_t(K * P));
    for (int64_t n = 0; n < N; ++n) {
      column(n, col.data());
      for (int64_t oc = 0; oc < O; ++oc)
        for (int64_t q = 0; q < P; ++q) {
          int64_t acc = b ? b[oc] : 0;
          for (int64_t k = 0; k < K; ++k) acc += int64_t(wd[oc * K + k]) * col[size_t(k * P + q)];
          DEAREST_CHECK(acc >= std::numeric_limits<int32_t>::min() && acc <= std::numeric_limits<int32_t>::max(),
                        "int_conv2d: accumulator overflows int32");
          o[(n * O + oc) * P + q] = int32_t(acc);
        }
    }
    return out;
  }
  Tensor wf = w.reshape({O, K}).to(DType::F64);
  Tensor colt = Tensor::empty({K, P}, DType::F64);
  for (int64_t n = 0; n < N; ++n) {
    column(n, colt.data<double>());
    Tensor acc = raw::matmul(wf, colt);  // [O, P], exact integers
    const double* a = acc.data<double>();
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t q = 0; q < P; ++q) {
        const double v = a[oc * P + q] + (b ? double(b[oc]) : 0.0);
        DEAREST_CHECK(std::fabs(v) <= 2147483647.0, "int_conv2d: accumulator overflows int32");
        o[(n * O + oc) * P + q] = int32_t(v);
      }
  }
  return out;
}

Tensor int_linear(const Tensor& q_in_, int32_t z_in, const Tensor& w_, const Tensor& bias_, bool reference) {
  Tensor q = q_in_.contiguous(), w = w_.contiguous();
  check_int(q, "input", 2);
  check_int(w, "weight", 2);
  DEAREST_CHECK(q.size(1) == w.size(1), "int_linear: input has ", q.size(1), " features, weight ", w.size(1));
  const int64_t N = q.size(0), K = q.size(1), O = w.size(0);
  Tensor out = Tensor::empty({N, O}, DType::I32);
  const int32_t* x = q.data<int32_t>();
  const int32_t* wd = w.data<int32_t>();
  const int32_t* b = bias_.defined() ? bias_.contiguous().data<int32_t>() : nullptr;
  int32_t* o = out.data<int32_t>();
  if (reference) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oc = 0; oc < O; ++oc) {
        int64_t acc = b ? b[oc] : 0;
        for (int64_t k = 0; k < K; ++k) acc += int64_t(wd[oc * K + k]) * (x[n * K + k] - z_in);
        o[n * O + oc] = int32_t(acc);
      }
    return out;
  }
  Tensor xf = Tensor::empty({N, K}, DType::F64);
  double* xd = xf.data<double>();
  for (int64_t i = 0; i < N * K; ++i) xd[i] = double(x[i] - z_in);
  Tensor acc = raw::matmul(xf, w.to(DType::F64).transpose(0, 1).contiguous());
  const double* a = acc.data<double>();
  for (int64_t i = 0; i < N * O; ++i) o[i] = int32_t(a[i] + (b ? double(b[i % O]) : 0.0));
  return out;
}

}  // namespace dearest::quant
