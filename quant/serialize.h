// Quantized-model files: the float model's weights as they came in, the quantization config,
// and every quantizer's scheme, scale, zero point and rounding mask, in one safetensors file.
// Loading rebuilds the quantized model without calibrating again, so every later evaluation
// (CDA, ASR, audit, integer model) sees exactly the quantizer that was written.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "quant/quantized_model.h"
#include "tensor/json.h"

namespace dearest::quant {

Json scheme_to_json(const QuantScheme& s);
QuantScheme scheme_from_json(const Json& j);
Json config_to_json(const QuantConfig& c);
QuantConfig config_from_json(const Json& j);

void save_quantized(const std::string& path, const QuantizedModel& q, std::map<std::string, std::string> meta = {});

struct LoadedQuantized {
  std::unique_ptr<QuantizedModel> model;
  std::map<std::string, std::string> meta;
};
LoadedQuantized load_quantized(const std::string& path);
bool is_quantized_file(const std::string& path);

}  // namespace dearest::quant
