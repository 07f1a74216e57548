#include "quant/scheme.h"

#include <sstream>

namespace dearest::quant {

QuantScheme QuantScheme::make(int bits, bool is_signed, bool symmetric, bool per_channel, bool narrow) {
  QuantScheme s;
  s.bits = bits;
  s.is_signed = is_signed;
  s.symmetric = symmetric;
  s.per_channel = per_channel;
  DEAREST_CHECK(bits >= 2 && bits <= 8, "quantization: bits must be in 2..8, got ", bits);
  if (is_signed) {
    s.qmax = (int64_t(1) << (bits - 1)) - 1;
    s.qmin = narrow ? -s.qmax : -s.qmax - 1;
  } else {
    s.qmin = 0;
    s.qmax = (int64_t(1) << bits) - 1;
  }
  s.rule = symmetric ? QParamRule::Symmetric : QParamRule::Affine;
  return s;
}

void QuantScheme::validate() const {
  DEAREST_CHECK(bits >= 2 && bits <= 8, "quantization: bits must be in 2..8, got ", bits);
  const int64_t lo = is_signed ? -(int64_t(1) << (bits - 1)) : 0;
  const int64_t hi = is_signed ? (int64_t(1) << (bits - 1)) - 1 : (int64_t(1) << bits) - 1;
  DEAREST_CHECK(qmin < qmax && qmin >= lo && qmax <= hi, "quantization: integer range [", qmin, ", ", qmax,
                "] does not fit ", bits, "-bit ", is_signed ? "signed" : "unsigned", " [", lo, ", ", hi, "]");
  DEAREST_CHECK(axis >= 0, "quantization: channel axis must be >= 0, got ", axis);
}

QuantScheme QuantScheme::with_bits(int b) const {
  QuantScheme n = make(b, is_signed, symmetric, per_channel, is_signed && qmin == -qmax);
  n.axis = axis;
  n.form = form;
  n.rounding = rounding;
  n.rule = rule;
  n.clamp = clamp;
  return n;
}

std::string QuantScheme::describe() const {
  std::ostringstream os;
  os << bits << "-bit " << (symmetric ? "symmetric" : "affine") << " " << (per_channel ? "per-channel" : "per-tensor")
     << " [" << qmin << "," << qmax << (clamp ? "" : ", unclamped") << "] " << rule_name(rule) << "/" << form_name(form) << "/" << rounding_name(rounding);
  return os.str();
}

const char* rounding_name(Rounding r) {
  switch (r) {
    case Rounding::HalfEven: return "half-even";
    case Rounding::HalfUp: return "half-up";
    case Rounding::HalfAway: return "half-away";
    case Rounding::Floor: return "floor";
    case Rounding::Ceil: return "ceil";
    case Rounding::Flipped: return "flipped";
    case Rounding::Mask: return "mask";
    case Rounding::FlipMask: return "flip-mask";
  }
  return "?";
}

Rounding parse_rounding(const std::string& s) {
  for (Rounding r : {Rounding::HalfEven, Rounding::HalfUp, Rounding::HalfAway, Rounding::Floor, Rounding::Ceil,
                     Rounding::Flipped, Rounding::Mask, Rounding::FlipMask})
    if (s == rounding_name(r)) return r;
  fail("rounding: expected half-even, half-up, half-away, floor, ceil, flipped, mask or flip-mask, got \"", s, "\"");
}

const char* form_name(ScaleForm f) {
  switch (f) {
    case ScaleForm::MulInverse: return "x*(1/s)";
    case ScaleForm::Divide: return "x/s";
    case ScaleForm::MulScale: return "x*S-Z";
    case ScaleForm::DivideFloatZero: return "x/s+zf";
  }
  return "?";
}

const char* rule_name(QParamRule r) {
  switch (r) {
    case QParamRule::Affine: return "torch-affine";
    case QParamRule::Symmetric: return "torch-symmetric";
    case QParamRule::TfliteAffine: return "tflite-affine";
    case QParamRule::Multiplicative: return "multiplicative";
    case QParamRule::PqEmulation: return "pq-emulation";
  }
  return "?";
}

double QParams::step(const QuantScheme& s, int64_t c) const {
  const double v = scale.data<float>()[c];
  return s.form == ScaleForm::MulScale ? 1.0 / v : v;
}

}  // namespace dearest::quant
