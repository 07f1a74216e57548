#include "quant/qparams.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#include <tuple>

#include "quant/channels.h"

namespace dearest::quant {

namespace {

float round_half_even(float v) { return std::nearbyint(v); }

}  // namespace

float pq_float_zero(float lo, float scale, int bits) { return -(lo / scale + float(int64_t(1) << (bits - 1))); }

std::pair<float, int32_t> qparams_scalar(const QuantScheme& s, float lo, float hi) {
  const float qmin = float(s.qmin), qmax = float(s.qmax);
  const float neg = std::min(lo, 0.0f), pos = std::max(hi, 0.0f);
  switch (s.rule) {
    case QParamRule::Affine: {
      const float scale = std::max((pos - neg) / float(s.qmax - s.qmin), kTorchEps);
      const float z = qmin - round_half_even(neg / scale);
      return {scale, int32_t(std::clamp(z, qmin, qmax))};
    }
    case QParamRule::Symmetric: {
      const float m = std::max(-neg, pos);
      const float scale = std::max(m / (float(s.qmax - s.qmin) / 2.0f), kTorchEps);
      if (s.is_signed) return {scale, 0};
      return {scale, (s.qmin == 0 && s.qmax == 255) ? 128 : int32_t((s.qmin + s.qmax) / 2)};
    }
    case QParamRule::TfliteAffine: {
      float scale = (pos - neg) / (qmax - qmin);
      float from_min = qmin;
      if (scale != 0) from_min = qmin - neg / scale;
      else scale = kTorchEps;  // TFLite keeps 0 for an all-zero tensor; a zero step cannot divide
      const int32_t z = from_min < qmin ? int32_t(qmin) : from_min > qmax ? int32_t(qmax) : int32_t(std::round(from_min));
      return {scale, z};
    }
    case QParamRule::Multiplicative: {
      if (s.symmetric) {
        const float m = std::max(std::fabs(lo), std::fabs(hi));
        return {float((int64_t(1) << (s.bits - 1)) - 1) / (m + 1e-14f), 0};
      }
      const float S = float((int64_t(1) << s.bits) - 1) / (hi - lo + 1e-14f);
      return {S, int32_t(round_half_even(lo * S))};
    }
    case QParamRule::PqEmulation: {
      // The zero point rounds as the scheme's values do: half-even in PQBackdoor's emulation,
      // floor(zf + 0.5) in EFRAP's evaluation helper.
      const float scale = (hi - lo) / float((int64_t(1) << s.bits) - 1);
      const float zf = pq_float_zero(lo, scale, s.bits);
      return {scale, int32_t(s.rounding == Rounding::HalfUp ? std::floor(zf + 0.5f) : round_half_even(zf))};
    }
  }
  return {1.0f, 0};
}

QParams qparams_from_range(const QuantScheme& s, const Tensor& mn_in, const Tensor& mx_in) {
  s.validate();
  Tensor mn = mn_in.to(DType::F32).contiguous(), mx = mx_in.to(DType::F32).contiguous();
  DEAREST_CHECK(mn.numel() == mx.numel() && mn.numel() >= 1, "qparams: min and max must have the same length, got ",
                mn.describe(), " and ", mx.describe());
  const int64_t C = mn.numel();
  QParams qp{Tensor::empty({C}, DType::F32), Tensor::empty({C}, DType::I32)};
  float* sc = qp.scale.data<float>();
  int32_t* zp = qp.zero_point.data<int32_t>();
  const float* lo = mn.data<float>();
  const float* hi = mx.data<float>();
  if (s.form == ScaleForm::DivideFloatZero) qp.zero_float = Tensor::empty({C}, DType::F32);
  for (int64_t c = 0; c < C; ++c) {
    // A range of [inf, -inf] is what min/max leave when every value was NaN: a diverged run.
    DEAREST_CHECK(!(std::isinf(lo[c]) && std::isinf(hi[c]) && lo[c] > hi[c]), "qparams: channel ", c,
                  " has no finite value to take a range from (all NaN: did the training diverge? lower the learning rate)");
    DEAREST_CHECK(!(lo[c] > hi[c]), "qparams: channel ", c, " has min ", lo[c], " > max ", hi[c]);
    DEAREST_CHECK(std::isfinite(lo[c]) && std::isfinite(hi[c]), "qparams: channel ", c, " has a non-finite range [",
                  lo[c], ", ", hi[c], "]");
    std::tie(sc[c], zp[c]) = qparams_scalar(s, lo[c], hi[c]);
    if (qp.zero_float.defined()) {
      DEAREST_CHECK(s.rule == QParamRule::PqEmulation, "qparams: the x/s+zf form takes the pq-emulation rule");
      qp.zero_float.data<float>()[c] = pq_float_zero(lo[c], sc[c], s.bits);
    }
  }
  return qp;
}

namespace {

// l = min(l, p[0..n)), h = max(h, ...), NaNs skipped, in vectors of 8 (GCC's generic vectors:
// vminps/vmaxps on AVX2, whose select "x < l ? x : l" is std::min's). Only which zero a range
// of both signed zeros keeps can depend on the order, and no qparams rule sees that sign.
// The scalar loop was 4.7% of a Qu-ANTI-zation attack step.
void span_range(const float* p, int64_t n, float& l, float& h) {
  typedef float v8 __attribute__((vector_size(32)));
  constexpr float inf = INFINITY;
  v8 lo[4], hi[4];
  for (int a = 0; a < 4; ++a) lo[a] = v8{inf, inf, inf, inf, inf, inf, inf, inf}, hi[a] = -lo[a];
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int a = 0; a < 4; ++a) {
      v8 x;
      std::memcpy(&x, p + i + 8 * a, sizeof x);
      lo[a] = x < lo[a] ? x : lo[a];
      hi[a] = hi[a] < x ? x : hi[a];
    }
  for (int a = 0; a < 4; ++a)
    for (int j = 0; j < 8; ++j) l = std::min(l, lo[a][j]), h = std::max(h, hi[a][j]);
  for (; i < n; ++i) l = std::min(l, p[i]), h = std::max(h, p[i]);
}

}  // namespace

std::pair<Tensor, Tensor> tensor_range(const QuantScheme& s, const Tensor& x_in) {
  const Tensor bytes = per_tensor_bytes(s, x_in);
  Tensor x = bytes.defined() ? bytes : x_in.plain().contiguous().to(DType::F32);
  const ChannelView v = channel_view(s, x.shape());
  DEAREST_CHECK(v.outer * v.inner > 0, "tensor_range: empty tensor ", x.describe());
  Tensor mn = Tensor::empty({v.C}, DType::F32), mx = Tensor::empty({v.C}, DType::F32);
  const float* d = x.data<float>();
  float* a = mn.data<float>();
  float* b = mx.data<float>();
  // Work items are (channel, chunk of its rows' elements); min and max do not depend on the order,
  // so the split changes nothing (a NaN is skipped either way: it never compares below lo; the
  // sign of a zero bound aside, see span_range).
  constexpr int64_t kChunk = 32768;
  const int64_t per_channel = v.outer * v.inner, chunks = (per_channel + kChunk - 1) / kChunk;
  std::vector<float> lo(size_t(v.C * chunks), INFINITY), hi(size_t(v.C * chunks), -INFINITY);
#pragma omp parallel for schedule(static) if (v.C * per_channel > 65536)
  for (int64_t it = 0; it < v.C * chunks; ++it) {
    const int64_t c = it / chunks, begin = (it % chunks) * kChunk, end = std::min(per_channel, begin + kChunk);
    float l = INFINITY, h = -INFINITY;
    for (int64_t e = begin; e < end;) {  // e: index within the channel's (outer, inner) elements
      const int64_t o = e / v.inner, i0 = e % v.inner, n = std::min(v.inner - i0, end - e);
      const float* p = d + (o * v.C + c) * v.inner + i0;
      span_range(p, n, l, h);
      e += n;
    }
    lo[size_t(it)] = l;
    hi[size_t(it)] = h;
  }
  for (int64_t c = 0; c < v.C; ++c) {
    float l = INFINITY, h = -INFINITY;
    for (int64_t k = 0; k < chunks; ++k) {
      l = std::min(l, lo[size_t(c * chunks + k)]);
      h = std::max(h, hi[size_t(c * chunks + k)]);
    }
    a[c] = l;
    b[c] = h;
  }
  return {mn, mx};
}

}  // namespace dearest::quant
