// One element through a quantizer, in float32 exactly as the reference code computes it. The
// fake-quantization kernel, the MSE range search and the audit all call these, so they agree bit
// for bit.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "quant/scheme.h"

namespace dearest::quant {

// v = x / s, x * (1/s), x * S - Z or x / s + zf.
inline float scaled_element(ScaleForm f, float x, float sc, float inv, int32_t z, float zf = 0) {
  switch (f) {
    case ScaleForm::MulInverse: return x * inv;
    case ScaleForm::Divide: return x / sc;
    case ScaleForm::MulScale: return x * sc - float(z);
    case ScaleForm::DivideFloatZero: return x / sc + zf;
  }
  return 0;
}

// The grid neighbour that half-even nearest rounding does not pick; v itself when on the grid.
inline float flipped_element(float v) {
  const float n = std::nearbyint(v);
  if (n == v) return v;
  const float fl = std::floor(v);
  return n == fl ? fl + 1.0f : fl;
}

inline float round_element(Rounding r, float v, uint8_t up) {
  switch (r) {
    case Rounding::HalfEven: return std::nearbyint(v);
    case Rounding::HalfUp: return std::floor(v + 0.5f);
    case Rounding::HalfAway: return std::round(v);
    case Rounding::Floor: return std::floor(v);
    case Rounding::Ceil: return std::ceil(v);
    case Rounding::Flipped: return flipped_element(v);
    case Rounding::Mask: return std::floor(v) + float(up);
    case Rounding::FlipMask: return up ? flipped_element(v) : std::nearbyint(v);
  }
  return 0;
}

// The integer before clamping: MulScale and DivideFloatZero have the zero point inside v, the
// others add z after rounding.
inline int64_t unclamped_integer(ScaleForm f, float rounded, int32_t z) {
  // NaN and |v| >= 2^63 have no int64 (the conversion is undefined, and adding z to what x86
  // returns could overflow): below every range, so qmin when clamped.
  if (!(std::fabs(rounded) < 9223372036854775808.0f)) return INT64_MIN;
  return (f == ScaleForm::MulScale || f == ScaleForm::DivideFloatZero) ? int64_t(rounded) : int64_t(rounded) + z;
}

inline int64_t clamp_integer(const QuantScheme& s, int64_t u) {
  return s.clamp ? std::min(std::max(u, s.qmin), s.qmax) : u;
}

inline float dequantize_element(ScaleForm f, int64_t q, float sc, int32_t z) {
  return f == ScaleForm::MulScale ? float(q + z) / sc : float(q - z) * sc;
}

// The whole round trip for nearest-type roundings (no mask).
inline float fake_quantize_element(const QuantScheme& s, float x, float sc, float inv, int32_t z, float zf = 0) {
  const int64_t u = unclamped_integer(s.form, round_element(s.rounding, scaled_element(s.form, x, sc, inv, z, zf), 0), z);
  return dequantize_element(s.form, clamp_integer(s, u), sc, z);
}

}  // namespace dearest::quant
