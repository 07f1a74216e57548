// A quantization scheme: how a float tensor becomes integers and back. Every reference quantizer
// of the field is one value of this struct (see quant/presets.h); the formulas are in
// ../shared/spec/ALGORITHMS.md §1.2, §2 and §5 and in docs/quant.md.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace dearest::quant {

// How a value v = x / step is turned into an integer.
enum class Rounding {
  HalfEven,  // nearbyint: torch fake quantization, torch.round, tf.round
  HalfUp,    // floor(v + 0.5): Qu-ANTI-zation
  HalfAway,  // std::round: TFLite's converter
  Floor,
  Ceil,
  Flipped,  // the opposite of half-even nearest wherever v is not an integer
  Mask,     // floor(v) + up[i] for a given per-element 0/1 mask (learned rounding)
  FlipMask,  // Flipped where flip[i] is 1, half-even nearest elsewhere (adaptive attacks: partial flips)
};

// How the step enters the arithmetic, which decides the float32 bits of v and of the result.
enum class ScaleForm {
  MulInverse,  // v = x * (1/s), x̂ = (q - z) * s        (torch's fake_quantize_per_*_affine)
  Divide,      // v = x / s,     x̂ = (q - z) * s        (PQBackdoor's emulation, EFRAP's AdaRound)
  MulScale,    // v = x * S - Z, x̂ = (q + Z) / S        (Qu-ANTI-zation; S = 1/step, Z = -z)
  DivideFloatZero,  // v = x / s + zf, x̂ = (q - round(zf)) * s  (PQBackdoor's emulated inputs: a float zero point)
};

// How (scale, zero point) are computed from a range [mn, mx].
enum class QParamRule {
  Affine,          // torch _calculate_qparams, affine: s = (mx+ - mn-)/(qmax-qmin), z = qmin - round_even(mn-/s)
  Symmetric,       // torch symmetric: s = max(|mn-|, mx+) / ((qmax-qmin)/2), z = 0 (signed) or mid (unsigned)
  TfliteAffine,    // TFLite: as Affine but the zero point rounds half away from zero
  Multiplicative,  // Qu-ANTI-zation: S = (2^(b-1)-1)/(max|x| + 1e-14) (symmetric), or
                   // S = (2^b-1)/(mx - mn + 1e-14), Z = round_even(mn*S) (affine)
  PqEmulation,     // per-batch inputs of PQBackdoor's emulation and EFRAP's evaluation helper:
                   // s = (mx - mn)/(2^b - 1), zf = -(mn/s + 2^(b-1)), z = zf rounded as the values are
};

struct QuantScheme {
  int bits = 8;
  bool is_signed = true;
  bool symmetric = true;
  bool per_channel = false;
  int64_t axis = 0;  // the channel axis when per_channel
  int64_t qmin = -128, qmax = 127;
  ScaleForm form = ScaleForm::MulInverse;
  Rounding rounding = Rounding::HalfEven;
  QParamRule rule = QParamRule::Symmetric;
  bool clamp = true;  // false: the integer is not clamped (PQBackdoor's emulation never clamps)

  // The usual integer range for (bits, signed, narrow): signed [-2^(b-1), 2^(b-1)-1] or, narrow,
  // [-(2^(b-1)-1), 2^(b-1)-1]; unsigned [0, 2^b-1].
  static QuantScheme make(int bits, bool is_signed, bool symmetric, bool per_channel, bool narrow = false);
  void validate() const;  // bits 2..8, qmin < qmax within the bits, axis >= 0
  std::string describe() const;
  QuantScheme with_bits(int b) const;  // same conventions at another width (range rescaled)
};

const char* rounding_name(Rounding r);
// Mask and FlipMask read a per-element u8 mask (TensorQuantizer::up_mask).
constexpr bool uses_mask(Rounding r) { return r == Rounding::Mask || r == Rounding::FlipMask; }
Rounding parse_rounding(const std::string& s);  // half-even, half-up, half-away, floor, ceil, flipped, mask, flip-mask
const char* form_name(ScaleForm f);
const char* rule_name(QParamRule r);

// Scale and zero point, one per channel ([C]) or one for the tensor ([1]). `scale` is the step s
// for MulInverse / Divide and the multiplier S = 1/s for MulScale; `zero_point` is z, or Z for
// MulScale. Both live in float32 / int32 as the reference code keeps them.
struct QParams {
  QParams() = default;
  QParams(Tensor s, Tensor z, Tensor zf = Tensor()) : scale(std::move(s)), zero_point(std::move(z)), zero_float(std::move(zf)) {}
  Tensor scale;       // f32 [C]
  Tensor zero_point;  // i32 [C]
  Tensor zero_float;  // f32 [C], DivideFloatZero only: the unrounded zero point added before rounding
  int64_t channels() const { return scale.defined() ? scale.numel() : 0; }
  // The real step size of channel c (s, or 1/S).
  double step(const QuantScheme& s, int64_t c) const;
};

}  // namespace dearest::quant
