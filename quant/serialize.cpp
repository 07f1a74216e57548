#include "quant/serialize.h"

#include <fstream>

#include "nn/checkpoint.h"
#include "tensor/safetensors.h"

namespace dearest::quant {

namespace {

const char* kFormat = "dearest-quantized-1";

Placement parse_placement(const std::string& s) {
  if (s == "producer") return Placement::Producer;
  if (s == "consumer") return Placement::Consumer;
  fail("quantized file: unknown placement \"", s, "\"");
}

ScaleForm parse_form(const std::string& s) {
  for (ScaleForm f : {ScaleForm::MulInverse, ScaleForm::Divide, ScaleForm::MulScale, ScaleForm::DivideFloatZero})
    if (s == form_name(f)) return f;
  fail("quantized file: unknown scale form \"", s, "\"");
}

QParamRule parse_rule(const std::string& s) {
  for (QParamRule r : {QParamRule::Affine, QParamRule::Symmetric, QParamRule::TfliteAffine, QParamRule::Multiplicative,
                       QParamRule::PqEmulation})
    if (s == rule_name(r)) return r;
  fail("quantized file: unknown qparams rule \"", s, "\"");
}

Json observer_to_json(const ObserverOptions& o) {
  Json j = Json::object();
  j.set("kind", observer_name(o.kind));
  j.set("ema", o.ema);
  j.set("percentile", o.percentile);
  j.set("candidates", o.candidates);
  j.set("prior", o.prior == AciqPrior::Laplace ? "laplace" : "gaussian");
  j.set("aciq_sided", o.aciq_sided);
  j.set("aciq_cap", o.aciq_cap);
  j.set("bins", o.bins);
  j.set("upsample_rate", o.upsample_rate);
  j.set("dst_bits", o.dst_bits);
  return j;
}

ObserverOptions observer_from_json(const Json& j) {
  ObserverOptions o;
  o.kind = parse_observer(j["kind"].as_string());
  o.ema = j["ema"].as_number();
  o.percentile = j["percentile"].as_number();
  o.candidates = int(j["candidates"].as_int());
  o.prior = j["prior"].as_string() == "laplace" ? AciqPrior::Laplace : AciqPrior::Gaussian;
  o.aciq_sided = int(j["aciq_sided"].as_int());
  o.aciq_cap = j["aciq_cap"].as_bool();
  if (j.contains("bins")) {
    o.bins = int(j["bins"].as_int());
    o.upsample_rate = int(j["upsample_rate"].as_int());
    o.dst_bits = int(j["dst_bits"].as_int());
  }
  return o;
}

Json strings(const std::vector<std::string>& v) {
  Json a = Json::array();
  for (auto& s : v) a.push(s);
  return a;
}

std::vector<std::string> strings_from(const Json& j) {
  std::vector<std::string> v;
  for (auto& s : j.items()) v.push_back(s.as_string());
  return v;
}

}  // namespace

Json scheme_to_json(const QuantScheme& s) {
  Json j = Json::object();
  j.set("bits", s.bits);
  j.set("signed", s.is_signed);
  j.set("symmetric", s.symmetric);
  j.set("per_channel", s.per_channel);
  j.set("axis", s.axis);
  j.set("qmin", s.qmin);
  j.set("qmax", s.qmax);
  j.set("form", form_name(s.form));
  j.set("rounding", rounding_name(s.rounding));
  j.set("rule", rule_name(s.rule));
  j.set("clamp", s.clamp);
  return j;
}

QuantScheme scheme_from_json(const Json& j) {
  QuantScheme s;
  s.bits = int(j["bits"].as_int());
  s.is_signed = j["signed"].as_bool();
  s.symmetric = j["symmetric"].as_bool();
  s.per_channel = j["per_channel"].as_bool();
  s.axis = j["axis"].as_int();
  s.qmin = j["qmin"].as_int();
  s.qmax = j["qmax"].as_int();
  s.form = parse_form(j["form"].as_string());
  s.rounding = parse_rounding(j["rounding"].as_string());
  s.rule = parse_rule(j["rule"].as_string());
  s.clamp = !j.contains("clamp") || j["clamp"].as_bool();
  s.validate();
  return s;
}

Json config_to_json(const QuantConfig& c) {
  Json j = Json::object();
  j.set("preset", c.preset);
  j.set("w_bits", c.w_bits);
  j.set("a_bits", c.a_bits);
  j.set("first_last_bits", c.first_last_bits);
  j.set("conv_weight", scheme_to_json(c.conv_weight));
  j.set("linear_weight", scheme_to_json(c.linear_weight));
  j.set("act", scheme_to_json(c.act));
  j.set("weight_observer", observer_to_json(c.weight_obs));
  j.set("act_observer", observer_to_json(c.act_obs));
  j.set("dynamic_weights", c.dynamic_weights);
  j.set("dynamic_acts", c.dynamic_acts);
  j.set("placement", c.placement == Placement::Producer ? "producer" : "consumer");
  j.set("quantize_add_inputs", c.quantize_add_inputs);
  j.set("pool_passthrough", c.pool_passthrough);
  j.set("fold_bn", c.fold_bn);
  j.set("quantize_bias", c.quantize_bias);
  j.set("layers", strings(c.layers));
  j.set("skip", strings(c.skip));
  j.set("quantize_first", c.quantize_first);
  j.set("quantize_linear", c.quantize_linear);
  j.set("ocs_expand", c.ocs_expand);
  j.set("ocs_grid_aware", c.ocs_grid_aware);
  return j;
}

QuantConfig config_from_json(const Json& j) {
  QuantConfig c;
  c.preset = j["preset"].as_string();
  c.w_bits = int(j["w_bits"].as_int());
  c.a_bits = int(j["a_bits"].as_int());
  c.first_last_bits = int(j["first_last_bits"].as_int());
  c.conv_weight = scheme_from_json(j["conv_weight"]);
  c.linear_weight = scheme_from_json(j["linear_weight"]);
  c.act = scheme_from_json(j["act"]);
  c.weight_obs = observer_from_json(j["weight_observer"]);
  c.act_obs = observer_from_json(j["act_observer"]);
  c.dynamic_weights = j["dynamic_weights"].as_bool();
  c.dynamic_acts = j["dynamic_acts"].as_bool();
  c.placement = parse_placement(j["placement"].as_string());
  c.quantize_add_inputs = j["quantize_add_inputs"].as_bool();
  c.pool_passthrough = j.contains("pool_passthrough") && j["pool_passthrough"].as_bool();
  c.fold_bn = j["fold_bn"].as_bool();
  c.quantize_bias = j.contains("quantize_bias") && j["quantize_bias"].as_bool();
  c.layers = strings_from(j["layers"]);
  c.skip = strings_from(j["skip"]);
  c.quantize_first = j["quantize_first"].as_bool();
  c.quantize_linear = j["quantize_linear"].as_bool();
  c.ocs_expand = j["ocs_expand"].as_number();
  c.ocs_grid_aware = j["ocs_grid_aware"].as_bool();
  return c;
}

void save_quantized(const std::string& path, const QuantizedModel& q, std::map<std::string, std::string> meta) {
  DEAREST_CHECK(q.calibrated(), "save_quantized: the model is not calibrated");
  std::vector<std::pair<std::string, Tensor>> tensors = q.source_state();
  Json layers = Json::array(), acts = Json::array();
  auto& qm = const_cast<QuantizedModel&>(q);
  for (auto& l : qm.layers()) {
    Json e = Json::object();
    e.set("name", l.name);
    e.set("scheme", scheme_to_json(l.weight->scheme()));
    e.set("mask", l.weight->up_mask.defined());
    if (l.ocs) e.set("ocs_grid_scale", l.ocs->grid_scale);
    layers.push(e);
    if (l.weight->has_qparams()) {
      tensors.emplace_back("quant/" + l.name + "/weight.scale", l.weight->qparams().scale);
      tensors.emplace_back("quant/" + l.name + "/weight.zero_point", l.weight->qparams().zero_point);
      if (l.weight->qparams().zero_float.defined())
        tensors.emplace_back("quant/" + l.name + "/weight.zero_float", l.weight->qparams().zero_float);
    }
    if (l.weight->up_mask.defined()) tensors.emplace_back("quant/" + l.name + "/weight.up_mask", l.weight->up_mask);
  }
  for (auto& a : qm.activation_quantizers()) {
    Json e = Json::object();
    e.set("name", a.name);
    e.set("scheme", scheme_to_json(a.q->scheme()));
    acts.push(e);
    if (a.q->has_qparams()) {
      tensors.emplace_back("quant/" + a.name + ".scale", a.q->qparams().scale);
      tensors.emplace_back("quant/" + a.name + ".zero_point", a.q->qparams().zero_point);
      if (a.q->qparams().zero_float.defined())
        tensors.emplace_back("quant/" + a.name + ".zero_float", a.q->qparams().zero_float);
    }
  }
  meta["format"] = kFormat;
  meta["arch"] = q.spec().str();
  meta["quant_config"] = config_to_json(q.config()).dump();
  meta["quant_layers"] = layers.dump();
  meta["quant_activations"] = acts.dump();
  meta["fingerprint"] = fingerprint(q.source_state());
  write_safetensors(path, tensors, {meta.begin(), meta.end()});
}

bool is_quantized_file(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  for (auto& [k, v] : f.metadata)
    if (k == "format") return v == kFormat;
  return false;
}

LoadedQuantized load_quantized(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  LoadedQuantized out;
  for (auto& [k, v] : f.metadata) out.meta[k] = v;
  DEAREST_CHECK(out.meta["format"] == kFormat, path, ": not a quantized model (format \"", out.meta["format"],
                "\", expected ", kFormat, "); quantize a float model with dearest quantize");
  const nn::ModelSpec spec = nn::ModelSpec::parse(out.meta["arch"]);
  nn::StateDict state;
  for (auto& [k, t] : f.tensors)
    if (k.rfind("quant/", 0) != 0) state.emplace_back(k, t);
  nn::ModulePtr fm = nn::build_model(spec);
  fm->load_state_dict(state, true);
  fm->eval();
  const QuantConfig cfg = config_from_json(Json::parse(out.meta["quant_config"], path + ": quant_config"));
  out.model = std::make_unique<QuantizedModel>(spec, *fm, cfg);
  QuantizedModel& q = *out.model;
  const Json layers = Json::parse(out.meta["quant_layers"], path + ": quant_layers");
  DEAREST_CHECK(layers.items().size() == q.layers().size(), path, ": ", layers.items().size(), " quantized layers in the file, ",
                q.layers().size(), " in the rebuilt model");
  for (auto& e : layers.items()) {
    QuantLayer& l = q.layer(e["name"].as_string());
    l.weight->set_scheme(scheme_from_json(e["scheme"]));
    const std::string base = "quant/" + l.name + "/weight.";
    if (f.has(base + "scale"))
      l.weight->set_qparams({f.get(base + "scale").clone(), f.get(base + "zero_point").clone(),
                             f.has(base + "zero_float") ? f.get(base + "zero_float").clone() : Tensor()});
    if (e["mask"].as_bool()) l.weight->up_mask = f.get(base + "up_mask").clone();
    if (l.ocs && e.contains("ocs_grid_scale")) l.ocs->grid_scale = e["ocs_grid_scale"].as_number();
  }
  const Json acts = Json::parse(out.meta["quant_activations"], path + ": quant_activations");
  DEAREST_CHECK(acts.items().size() == q.activation_quantizers().size(), path, ": activation quantizers in the file (",
                acts.items().size(), ") and in the rebuilt model (", q.activation_quantizers().size(), ") differ");
  size_t i = 0;
  for (auto& e : acts.items()) {
    const NamedQuantizer& a = q.activation_quantizers()[i++];
    DEAREST_CHECK(a.name == e["name"].as_string(), path, ": activation quantizer ", e["name"].as_string(), " vs ", a.name);
    a.q->set_scheme(scheme_from_json(e["scheme"]));
    const std::string base = "quant/" + a.name + ".";
    if (f.has(base + "scale"))
      a.q->set_qparams({f.get(base + "scale").clone(), f.get(base + "zero_point").clone(),
                        f.has(base + "zero_float") ? f.get(base + "zero_float").clone() : Tensor()});
  }
  q.mark_calibrated();
  return out;
}

}  // namespace dearest::quant
