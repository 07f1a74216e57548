#include "quant/presets.h"

#include <sstream>

namespace dearest::quant {

namespace {

QuantScheme with(QuantScheme s, QParamRule rule, ScaleForm form, Rounding r) {
  s.rule = rule;
  s.form = form;
  s.rounding = r;
  return s;
}

ObserverOptions obs(ObserverKind k, int candidates = 80) {
  ObserverOptions o;
  o.kind = k;
  o.candidates = candidates;
  return o;
}

// The observer's name, with its percentile where it has one (the describe lines record the run).
std::string observer_label(const ObserverOptions& o) {
  std::ostringstream os;
  os << observer_name(o.kind);
  if (o.kind == ObserverKind::Percentile) os << " " << o.percentile;
  return os.str();
}

// The training-time emulations (PQBackdoor's, EFRAP's evaluation helper): `weight` divides by
// its step taken from the weights at every forward and is never clamped; every conv/linear input
// is quantized per batch as round(x/s + zf) - round(zf), s = (max - min)/(2^b - 1),
// zf = -(min/s + 2^(b-1)), neither clamped, both rounded by `r`; BN kept.
void per_batch_emulation(QuantConfig& c, QuantScheme weight, Rounding r) {
  weight.form = ScaleForm::Divide;
  weight.rounding = r;
  weight.clamp = false;
  c.conv_weight = weight;
  c.linear_weight = weight;
  c.act = with(QuantScheme::make(8, true, false, false), QParamRule::PqEmulation, ScaleForm::DivideFloatZero, r);
  c.act.clamp = false;
  c.weight_obs = obs(ObserverKind::MinMax);
  c.act_obs = obs(ObserverKind::MinMax);
  c.dynamic_weights = true;
  c.dynamic_acts = true;
  c.placement = Placement::Consumer;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"mqbench",       "qu-anti-zation",   "tflite-int8", "tflite-dynamic",      "pytorch-fbgemm",
          "pytorch-qnnpack", "comp-artifact", "ocs",         "aciq",                "omse",
          "pq-emulation-tf", "pq-emulation-fbgemm", "pq-emulation-qnnpack", "efrap-standard"};
}

QuantConfig preset(const std::string& name, int w, int a) {
  DEAREST_CHECK(w >= 2 && w <= 8, "quantize: weight bits must be in 2..8, got ", w);
  QuantConfig c;
  c.preset = name;
  if (name == "mqbench") {
    // EFRAP's: affine per-channel weights [0, 2^b-1] with the MSE search, affine per-tensor
    // activations with EMA-MSE, first and last layer 8-bit, BN not folded.
    c.conv_weight = with(QuantScheme::make(8, false, false, true), QParamRule::Affine, ScaleForm::MulInverse,
                         Rounding::HalfEven);
    c.linear_weight = c.conv_weight;
    c.act = with(QuantScheme::make(8, false, false, false), QParamRule::Affine, ScaleForm::MulInverse, Rounding::HalfEven);
    c.weight_obs = obs(ObserverKind::Mse, 80);
    c.act_obs = obs(ObserverKind::EmaMse, 95);
    c.first_last_bits = 8;
    c.placement = Placement::Producer;
    c.set_bits(w, a < 0 ? w : a);
  } else if (name == "qu-anti-zation") {
    // Symmetric per-layer weights with S = (2^(b-1)-1)/max|w|, per-batch affine activations,
    // floor(x + 0.5), at every conv/linear input including the first and the last.
    c.conv_weight = with(QuantScheme::make(8, true, true, false), QParamRule::Multiplicative, ScaleForm::MulScale,
                         Rounding::HalfUp);
    c.linear_weight = c.conv_weight;
    c.act = with(QuantScheme::make(8, false, false, false), QParamRule::Multiplicative, ScaleForm::MulScale,
                 Rounding::HalfUp);
    c.weight_obs = obs(ObserverKind::MinMax);
    c.act_obs = obs(ObserverKind::MinMax);
    c.dynamic_weights = true;
    c.dynamic_acts = true;
    c.placement = Placement::Consumer;
    c.set_bits(w, a < 0 ? w : a);
  } else if (name == "tflite-int8" || name == "tflite-dynamic") {
    // TFLite full integer: symmetric per-channel conv weights /127 ([-127, 127]), per-tensor
    // dense weights, asymmetric int8 activations from a representative set, BN folded; rounding
    // half away from zero as the converter and kernels do. Dynamic range: activations per batch.
    c.conv_weight = with(QuantScheme::make(8, true, true, true, true), QParamRule::Symmetric, ScaleForm::MulInverse,
                         Rounding::HalfAway);
    c.linear_weight = with(QuantScheme::make(8, true, true, false, true), QParamRule::Symmetric, ScaleForm::MulInverse,
                           Rounding::HalfAway);
    c.act = with(QuantScheme::make(8, true, false, false), QParamRule::TfliteAffine, ScaleForm::Divide, Rounding::HalfAway);
    c.weight_obs = obs(ObserverKind::MinMax);
    c.act_obs = obs(ObserverKind::MinMax);
    c.fold_bn = true;
    c.quantize_bias = true;
    if (name == "tflite-dynamic") {
      c.dynamic_acts = true;
      c.placement = Placement::Consumer;
    } else {
      c.placement = Placement::Producer;
      c.quantize_add_inputs = true;
      c.pool_passthrough = true;
    }
    c.set_bits(w, a < 0 ? 8 : a);
  } else if (name == "pytorch-fbgemm" || name == "pytorch-qnnpack") {
    // torch.quantization eager PTQ with the default qconfig: fused conv+bn(+relu), qint8
    // symmetric weights (/127.5) per channel (fbgemm) or per tensor (qnnpack) from min-max;
    // quint8 affine activations (fbgemm reduces the range to 7 bits) from the histogram observer.
    const bool fb = name == "pytorch-fbgemm";
    c.conv_weight = with(QuantScheme::make(8, true, true, fb), QParamRule::Symmetric, ScaleForm::MulInverse,
                         Rounding::HalfEven);
    c.linear_weight = c.conv_weight;
    c.act = with(QuantScheme::make(8, false, false, false), QParamRule::Affine, ScaleForm::MulInverse, Rounding::HalfEven);
    if (fb) c.act.qmax = 127;  // reduce_range
    c.weight_obs = obs(ObserverKind::MinMax);
    c.act_obs = obs(ObserverKind::Histogram);
    c.fold_bn = true;
    c.quantize_bias = true;
    c.placement = Placement::Producer;
    c.quantize_add_inputs = true;
    c.pool_passthrough = true;
    c.set_bits(w, a < 0 ? 8 : a);
  } else if (name == "comp-artifact") {
    // CompArtifact's training-time quantizer: BN folded, per-tensor symmetric qint8 (/127.5),
    // activations float, only the chosen layers (ResNet-18: layer4 and fc).
    c.conv_weight = with(QuantScheme::make(8, true, true, false), QParamRule::Symmetric, ScaleForm::MulInverse,
                         Rounding::HalfEven);
    c.linear_weight = c.conv_weight;
    c.act = with(QuantScheme::make(8, false, false, false), QParamRule::Affine, ScaleForm::MulInverse, Rounding::HalfEven);
    c.weight_obs = obs(ObserverKind::MinMax);
    c.act_obs = obs(ObserverKind::MinMax);
    c.dynamic_weights = true;
    c.fold_bn = true;
    c.placement = Placement::Consumer;
    c.set_bits(w, 0);
    if (a > 0) c.set_bits(w, a);
  } else if (name == "ocs") {
    // cornell-zhang/dnn-quant-ocs: symmetric per-tensor weights and activations, S = (2^(b-1)-1) /
    // max|x|, round(x*S); conv weights split with expand ratio 0.02 (grid-aware); the first conv
    // and the linear layers stay float, as that code leaves them.
    c.conv_weight = with(QuantScheme::make(8, true, true, false, true), QParamRule::Multiplicative, ScaleForm::MulScale,
                         Rounding::HalfEven);
    c.linear_weight = c.conv_weight;
    c.act = c.conv_weight;
    c.weight_obs = obs(ObserverKind::MinMax);
    c.act_obs = obs(ObserverKind::MinMax);
    c.placement = Placement::Consumer;
    c.quantize_first = false;
    c.quantize_linear = false;
    c.ocs_expand = 0.02;
    c.set_bits(w, a < 0 ? w : a);
  } else if (name.rfind("pq-emulation-", 0) == 0) {
    // PQBackdoor's training-time emulation of the int8 deployment (utils.py, pytorch/utils.py):
    // weights w/s rounded half-even and never clamped, s = max|w|/127 per output channel for
    // conv and per tensor for dense (tf), or max|w|/127.5 per channel (fbgemm: conv and linear
    // rows) or per tensor (qnnpack); every conv/dense input quantized per batch as
    // round(x/s + zf) - round(zf) with s = (max - min)/255 and zf = -(min/s + 128); BN kept.
    const std::string mode = name.substr(13);
    DEAREST_CHECK(mode == "tf" || mode == "fbgemm" || mode == "qnnpack", "quantize: unknown preset \"", name, "\"");
    const bool tf = mode == "tf";
    per_batch_emulation(c, QuantScheme::make(8, true, true, mode != "qnnpack", tf), Rounding::HalfEven);
    c.linear_weight.per_channel = mode == "fbgemm";
    DEAREST_CHECK((w == 8) && (a < 0 || a == 8), "quantize: ", name, " is PQBackdoor's 8-bit emulation (bits 8)");
    c.set_bits(8, 8);
  } else if (name == "efrap-standard") {
    // The "standard quantization" of the EFRAP reference's evaluation helper (quantize_helper.py,
    // utils.py), whose README logs are the accuracy anchors: per-tensor symmetric weights
    // w / (max|w| / (2^(b-1) - 0.5)) rounded floor(v + 0.5), never clamped (the largest weight
    // becomes 2^(b-1)); the input of every conv and linear quantized per batch as
    // floor(x/s + zf + 0.5) - floor(zf + 0.5), s = (max - min)/(2^b - 1), zf = -(min/s + 2^(b-1)),
    // at the weights' bits, first and last included; BN kept.
    per_batch_emulation(c, QuantScheme::make(8, true, true, false), Rounding::HalfUp);
    c.set_bits(w, a < 0 ? w : a);
  } else if (name == "aciq" || name == "omse") {
    // The robust-quantization baselines on MQBench's scheme (affine per-channel weights, affine
    // per-tensor activations, first and last layer 8-bit): ACIQ clips activations at its
    // analytical alpha (Laplace); OMSE picks every range by the MSE over the whole calibration set.
    c = preset("mqbench", w, a);
    c.preset = name;
    if (name == "aciq") {
      c.act_obs = obs(ObserverKind::Aciq);
      c.weight_obs = obs(ObserverKind::Aciq);
    } else {
      c.act_obs = obs(ObserverKind::Omse, 95);
      c.weight_obs = obs(ObserverKind::Omse, 80);
    }
  } else {
    std::string all;
    for (auto& n : preset_names()) all += (all.empty() ? "" : ", ") + n;
    fail("quantize: unknown preset \"", name, "\" (", all, ")");
  }
  return c;
}

bool QuantConfig::selects(const std::string& layer) const {
  auto starts = [&](const std::string& prefix) { return layer.compare(0, prefix.size(), prefix) == 0; };
  for (const auto& s : skip)
    if (starts(s)) return false;
  if (layers.empty()) return true;
  for (const auto& s : layers)
    if (starts(s)) return true;
  return false;
}

void QuantConfig::set_bits(int w, int a) {
  DEAREST_CHECK(w >= 2 && w <= 8, "quantize: weight bits must be in 2..8, got ", w);
  DEAREST_CHECK(a == 0 || (a >= 2 && a <= 8), "quantize: activation bits must be 0 (float) or in 2..8, got ", a);
  const bool reduce = act.qmax == 127 && !act.is_signed;  // fbgemm's 7-bit activations stay 7-bit
  w_bits = w;
  a_bits = a;
  conv_weight = conv_weight.with_bits(w);
  linear_weight = linear_weight.with_bits(w);
  if (a > 0) {
    act = act.with_bits(a);
    if (reduce && a == 8) act.qmax = 127;
  }
}

std::string QuantConfig::describe() const {
  std::ostringstream os;
  os << preset << ": W" << w_bits << "A" << (a_bits ? std::to_string(a_bits) : std::string("32"));
  if (first_last_bits) os << " (first/last " << first_last_bits << "-bit)";
  os << "; conv weights " << conv_weight.describe() << " [" << observer_label(weight_obs)
     << (dynamic_weights ? ", dynamic" : "") << "]";
  os << "; linear weights " << linear_weight.describe();
  if (a_bits) os << "; activations " << act.describe() << " [" << (dynamic_acts ? "per batch" : observer_label(act_obs)) << "]";
  os << "; " << (placement == Placement::Producer ? "producer" : "consumer") << " placement";
  if (quantize_add_inputs) os << " + add inputs";
  if (pool_passthrough) os << ", pooled tensors quantized before pooling";
  if (!quantize_first) os << "; first conv float";
  if (!quantize_linear) os << "; linear layers float";
  if (ocs_expand > 0) os << "; OCS expand " << ocs_expand << (ocs_grid_aware ? " (grid-aware)" : "");
  os << (fold_bn ? "; BN folded" : "; BN kept");
  if (quantize_bias) os << "; int32 biases";
  return os.str();
}

}  // namespace dearest::quant
