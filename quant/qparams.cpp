#include "quant/qparams.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "quant/channels.h"

namespace dearest::quant {

namespace {

float round_half_even(float v) { return std::nearbyint(v); }

}  // namespace

float pq_float_zero(float lo, float scale) { return -(lo / scale + 128.0f); }

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
      const float scale = (hi - lo) / 255.0f;
      return {scale, int32_t(round_half_even(pq_float_zero(lo, scale)))};
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
    DEAREST_CHECK(!(lo[c] > hi[c]), "qparams: channel ", c, " has min ", lo[c], " > max ", hi[c]);
    DEAREST_CHECK(std::isfinite(lo[c]) && std::isfinite(hi[c]), "qparams: channel ", c, " has a non-finite range [",
                  lo[c], ", ", hi[c], "]");
    std::tie(sc[c], zp[c]) = qparams_scalar(s, lo[c], hi[c]);
    if (qp.zero_float.defined()) {
      DEAREST_CHECK(s.rule == QParamRule::PqEmulation, "qparams: the x/s+zf form takes the pq-emulation rule");
      qp.zero_float.data<float>()[c] = pq_float_zero(lo[c], sc[c]);
    }
  }
  return qp;
}

std::pair<Tensor, Tensor> tensor_range(const QuantScheme& s, const Tensor& x_in) {
  Tensor x = x_in.plain().contiguous().to(DType::F32);
  const ChannelView v = channel_view(s, x.shape());
  Tensor mn = Tensor::empty({v.C}, DType::F32), mx = Tensor::empty({v.C}, DType::F32);
  const float* d = x.data<float>();
  float* a = mn.data<float>();
  float* b = mx.data<float>();
  for (int64_t c = 0; c < v.C; ++c) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t o = 0; o < v.outer; ++o) {
      const float* p = d + (o * v.C + c) * v.inner;
      for (int64_t i = 0; i < v.inner; ++i) {
        lo = std::min(lo, p[i]);
        hi = std::max(hi, p[i]);
      }
    }
    DEAREST_CHECK(v.outer * v.inner > 0, "tensor_range: empty tensor ", x.describe());
    a[c] = lo;
    b[c] = hi;
  }
  return {mn, mx};
}

}  // namespace dearest::quant
