// How a whole model is quantized: the reference frameworks' choices as named presets, each
// overridable. ALGORITHMS.md §1.2 (mqbench), §2.1 (tflite-int8, tflite-dynamic, pytorch-fbgemm,
// pytorch-qnnpack as PQBackdoor deploys), §2.2 (qu-anti-zation), §2.3 (comp-artifact).
#pragma once
#include <string>
#include <vector>

#include "quant/observer.h"
#include "quant/scheme.h"

namespace dearest::quant {

// Where activation fake-quantizers sit.
enum class Placement {
  Producer,  // one quantizer per tensor feeding a conv/linear, seen by all its consumers (MQBench:
             // in a ResNet block the identity path carries the quantized block input)
  Consumer,  // at the input of each conv/linear only (Qu-ANTI-zation, the TF emulation)
};

struct QuantConfig {
  std::string preset;
  int w_bits = 8;
  int a_bits = 8;           // 0: activations stay float
  int first_last_bits = 0;  // 0: like the others; else the first conv and last linear (weights and inputs)
  QuantScheme conv_weight, linear_weight, act;  // at w_bits / a_bits
  ObserverOptions weight_obs, act_obs;
  bool dynamic_weights = false;  // weight ranges from the current weights at every forward
  bool dynamic_acts = false;     // activation ranges from each batch at run time
  Placement placement = Placement::Producer;
  bool quantize_add_inputs = false;  // also quantize the two inputs of each residual add (integer runtimes do)
  // Integer runtimes pool quantized tensors and keep their qparams: a tensor that is pooled is
  // quantized (and observed) before the pooling, and the ResNet head reuses the last block's.
  bool pool_passthrough = false;
  bool fold_bn = false;
  bool quantize_bias = false;  // biases on the int32 accumulator grid (s_in * s_w), as integer runtimes store them
  std::vector<std::string> layers;  // name prefixes of the layers to quantize; empty = all
  std::vector<std::string> skip;    // name prefixes never quantized
  bool quantize_first = true;       // the first conv (OCS's code leaves it float)
  bool quantize_linear = true;      // linear layers (OCS's code leaves them float)
  double ocs_expand = 0;            // outlier channel splitting of conv weights: ceil(ratio * I) splits
  bool ocs_grid_aware = true;       // OCS's grid-aware halves (per-tensor weight schemes)

  // Rescales the schemes to new widths (first/last stay at first_last_bits when set).
  void set_bits(int w, int a);
  // Whether the layer at this module path is quantized by `layers` and `skip` (name prefixes).
  bool selects(const std::string& layer) const;
  std::string describe() const;
};

// mqbench, qu-anti-zation, tflite-int8, tflite-dynamic, pytorch-fbgemm, pytorch-qnnpack, comp-artifact,
// ocs, aciq, omse (the robust-quantization baselines' quantizers).
QuantConfig preset(const std::string& name, int w_bits = 8, int a_bits = -1);  // a_bits -1: the preset's
std::vector<std::string> preset_names();

}  // namespace dearest::quant
