// What every `dearest defend` method shares: the float model's and the standard quantizers'
// numbers (cached between defenses of one model), metrics as JSON, atomic text files, the result
// table.
#pragma once
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "attacks/judge.h"
#include "defenses/efrap.h"
#include "nn/models.h"
#include "tensor/json.h"
#include "tools/cli.h"

namespace dearest::cli {

using NamedMetrics = std::vector<std::pair<std::string, attacks::BackdoorMetrics>>;

double seconds_since(std::chrono::steady_clock::time_point t0);
void write_text(const std::string& path, const std::string& text);  // via a temporary, then renamed
Json metrics_json(const attacks::BackdoorMetrics& m);
Json metrics_json(const NamedMetrics& m);

// The undefended model in float and under each standard quantizer (the first is the one DTM uses).
struct StandardNumbers {
  attacks::BackdoorMetrics fp;
  NamedMetrics standard;
  bool cached = false;
};
// --calib-size/batch/pool/split/augment and --seed: the calibration set of the defended model and
// of the standard MQBench model.
quant::CalibOptions calib_options(const po::variables_map& vm, const std::string& data_kind);

// What the standard numbers depend on: the weights, the data, the backdoor, the evaluation, the
// standards and the calibration.
Json standard_key(nn::Module& model, const std::string& data_text, const std::string& trigger_spec,
                  const attacks::JudgeOptions& jo, const std::string& standard_list, const quant::CalibOptions& co);
// `key` identifies the model and the measurement (weights, data, trigger, ...); `cache` is a JSON
// file ("" for none) that keeps the numbers for the next defense of the same model.
StandardNumbers standard_numbers(attacks::Judge& judge, const nn::ModelSpec& spec, nn::Module& model,
                                 const std::vector<attacks::QuantTarget>& standards, const Json& key,
                                 const std::string& cache);

// The removal defenses (tools/defend_removal.cpp): ft, fp.
bool is_removal_method(const std::string& m);
int defend_removal(const po::variables_map& vm);

// The result table: float, each standard, then the defended rows with their DTM against the first
// standard's ASR.
void print_result_table(const std::string& model_file, const attacks::JudgeOptions& jo, const StandardNumbers& s,
                        const NamedMetrics& defended);

// EFRAP's figures in `dir`: flip-rate.svg (the share of each layer's weights rounded away from
// nearest) and loss.svg (L_A while each of the first 8 layers learns).
void write_efrap_figures(const std::string& dir, const std::vector<defenses::EfrapLayerReport>& reports);

}  // namespace dearest::cli
