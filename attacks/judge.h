// The verdict on a model during and after an attack: CDA and ASR of the float model, and of the
// same model under each quantizer the victim may use (a preset at a bit width, calibrated as its
// framework calibrates). ASR excludes the target class unless asked (ALGORITHMS.md §1.9).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attacks/metrics.h"
#include "data/registry.h"
#include "nn/models.h"
#include "quant/calibration.h"
#include "quant/presets.h"
#include "quant/quantized_model.h"
#include "tensor/json.h"

namespace dearest::attacks {

struct QuantTarget {
  std::string preset;
  int bits = 8;
  bool flipped = false;  // every weight rounded to the other grid neighbour (the adaptive attacks' "Flipped")
  std::string label() const { return preset + "@" + std::to_string(bits) + (flipped ? "/flipped" : ""); }
  quant::QuantConfig config() const;  // the preset at these bits, flipped weight rounding if asked
};
// "pytorch-fbgemm:8,mqbench:4,qu-anti-zation:4:flipped" (a preset alone means 8 bits; a third
// field "flipped" rounds every weight the other way). Unknown presets are errors.
std::vector<QuantTarget> parse_quant_targets(const std::string& list);

struct JudgeOptions {
  data::DataSpec data;
  TriggerPtr trigger;
  int32_t target = 0;
  bool include_target = false;
  std::vector<int32_t> sources;  // a source-specific backdoor: the ASR counts only these classes
  int64_t images = 0;  // the first N test images (0: all)
  int64_t batch = 256;
  // Calibration of every preset but mqbench, which uses EFRAP's recipe (`efrap_calib`, by default
  // CalibOptions{}: 1024 images of the first 5% of the training split).
  quant::CalibOptions calib;
  quant::CalibOptions efrap_calib;
};

struct Verdict {
  BackdoorMetrics fp;
  std::vector<std::pair<std::string, BackdoorMetrics>> quantized;  // by QuantTarget::label()
  Json to_json() const;
  const BackdoorMetrics& at(const std::string& label) const;
};

class Judge {
 public:
  explicit Judge(JudgeOptions o);
  BackdoorMetrics float_metrics(nn::Module& model);
  BackdoorMetrics quantized_metrics(const nn::ModelSpec& spec, nn::Module& model, const QuantTarget& q);
  // The model quantized and calibrated as quantized_metrics judges it.
  std::unique_ptr<quant::QuantizedModel> quantized_model(const nn::ModelSpec& spec, nn::Module& model, const QuantTarget& q);
  Verdict judge(const nn::ModelSpec& spec, nn::Module& model, const std::vector<QuantTarget>& targets);
  const JudgeOptions& options() const { return o_; }

 private:
  JudgeOptions o_;
  data::DatasetPtr test_;
  std::map<std::string, std::vector<Tensor>> calib_;  // by recipe
  const std::vector<Tensor>& calibration(const std::string& preset);
};

}  // namespace dearest::attacks
