#include "attacks/judge.h"

#include <algorithm>

#include "data/subset.h"
#include "quant/quantized_model.h"

namespace dearest::attacks {

std::vector<QuantTarget> parse_quant_targets(const std::string& list) {
  std::vector<QuantTarget> out;
  size_t start = 0;
  const auto names = quant::preset_names();
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    QuantTarget t;
    const size_t colon = item.find(':');
    t.preset = item.substr(0, colon);
    if (colon != std::string::npos) {
      std::string b = item.substr(colon + 1);
      const size_t second = b.find(':');
      if (second != std::string::npos) {
        const std::string mod = b.substr(second + 1);
        DEAREST_CHECK(mod == "flipped", "quantizer \"", item, "\": the third field may only be \"flipped\", got \"", mod, "\"");
        t.flipped = true;
        b = b.substr(0, second);
      }
      DEAREST_CHECK(!b.empty() && b.find_first_not_of("0123456789") == std::string::npos,
                    "quantizer \"", item, "\": bits must be a number (e.g. mqbench:4)");
      t.bits = std::stoi(b);
    }
    DEAREST_CHECK(std::find(names.begin(), names.end(), t.preset) != names.end(), "quantizer \"", item,
                  "\": unknown preset \"", t.preset, "\" (dearest quantize --help lists them)");
    DEAREST_CHECK(t.bits >= 2 && t.bits <= 8, "quantizer \"", item, "\": bits must be in 2..8");
    out.push_back(t);
  }
  return out;
}

Json Verdict::to_json() const {
  auto one = [](const BackdoorMetrics& m) {
    Json j = Json::object();
    j.set("cda", m.cda);
    j.set("asr", m.asr);
    j.set("clean_images", m.clean_images);
    j.set("asr_images", m.asr_images);
    return j;
  };
  Json j = Json::object();
  j.set("float", one(fp));
  for (const auto& [k, m] : quantized) j.set(k, one(m));
  return j;
}

const BackdoorMetrics& Verdict::at(const std::string& label) const {
  if (label == "float") return fp;
  for (const auto& [k, m] : quantized)
    if (k == label) return m;
  fail("verdict: no quantizer ", label);
}

Judge::Judge(JudgeOptions o) : o_(std::move(o)) {
  DEAREST_CHECK(o_.trigger, "judge: no trigger");
  test_ = data::open_dataset(o_.data, data::test_split(o_.data.kind));
  DEAREST_CHECK(o_.target >= 0 && o_.target < int32_t(test_->num_classes()), "target label ", o_.target,
                " is outside the dataset's classes [0, ", test_->num_classes(), ")");
  if (o_.images > 0 && o_.images < test_->size()) test_ = data::index_range(test_, 0, o_.images);
}

const std::vector<Tensor>& Judge::calibration(const std::string& preset) {
  const bool efrap = preset == "mqbench";
  const std::string key = efrap ? "efrap" : "attack";
  auto it = calib_.find(key);
  if (it != calib_.end()) return it->second;
  quant::CalibOptions c = efrap ? o_.efrap_calib : o_.calib;
  return calib_[key] = quant::calibration_batches(o_.data, c);
}

BackdoorMetrics Judge::float_metrics(nn::Module& model) {
  return evaluate_backdoor(model, test_, o_.data.kind, o_.trigger, o_.target, o_.include_target, o_.batch, o_.sources);
}

quant::QuantConfig QuantTarget::config() const {
  quant::QuantConfig c = quant::preset(preset, bits);
  if (flipped) c.conv_weight.rounding = c.linear_weight.rounding = quant::Rounding::Flipped;
  return c;
}

std::unique_ptr<quant::QuantizedModel> Judge::quantized_model(const nn::ModelSpec& spec, nn::Module& model,
                                                              const QuantTarget& q) {
  const quant::QuantConfig cfg = q.config();
  // Ranges taken at run time (per batch) need no calibration set.
  const bool static_acts = cfg.a_bits > 0 && !cfg.dynamic_acts;
  auto qm = std::make_unique<quant::QuantizedModel>(spec, model, cfg);
  qm->calibrate(static_acts ? calibration(q.preset) : std::vector<Tensor>{});
  return qm;
}

BackdoorMetrics Judge::quantized_metrics(const nn::ModelSpec& spec, nn::Module& model, const QuantTarget& q) {
  auto qm = quantized_model(spec, model, q);
  return evaluate_backdoor(qm->model(), test_, o_.data.kind, o_.trigger, o_.target, o_.include_target, o_.batch, o_.sources);
}

Verdict Judge::judge(const nn::ModelSpec& spec, nn::Module& model, const std::vector<QuantTarget>& targets) {
  Verdict v;
  v.fp = float_metrics(model);
  for (const auto& q : targets) v.quantized.emplace_back(q.label(), quantized_metrics(spec, model, q));
  return v;
}

}  // namespace dearest::attacks
