// A float model turned into its fake-quantized twin: a copy of the model (BN folded when the
// preset says so) with a weight quantizer on every chosen conv/linear and activation quantizers
// where the preset places them. It evaluates like any nn::Module and exposes, per layer, the
// scale, zero point, integer weights and rounding.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/models.h"
#include "quant/presets.h"
#include "quant/tensor_quantizer.h"

namespace dearest::quant {

struct QuantLayer {
  std::string name;  // the module's path, e.g. "layer1.0.conv1"
  bool is_conv = true;
  nn::Module* module = nullptr;
  int weight_bits = 8, input_bits = 0;  // input_bits 0: the input stays float
  bool first = false, last = false;
  std::shared_ptr<TensorQuantizer> weight;
  std::shared_ptr<TensorQuantizer> input;  // shared by the consumers of one producer; may be null
  std::string input_name;                  // where that quantizer sits ("layer1.0:input", "fc:input")
  bool input_before_pool = false;          // it sits on the input of the pooling before this layer
  // Outlier channel splitting: the weight is split, quantized, folded back (ratio 0 = off).
  struct Ocs {
    double ratio = 0;
    bool grid_aware = true;
    double grid_scale = 0;  // S = 1/step from the plain split, set at calibration
  };
  std::shared_ptr<Ocs> ocs;
  Tensor& float_weight() const;            // the (folded) float weight the quantizer sees
};

struct NamedQuantizer {
  std::string name;
  std::shared_ptr<TensorQuantizer> q;
};

class QuantizedModel {
 public:
  QuantizedModel(const nn::ModelSpec& spec, nn::Module& float_model, QuantConfig cfg);

  nn::Module& model() { return *model_; }
  nn::ModulePtr model_ptr() { return model_; }
  Tensor operator()(const Tensor& x) { return (*model_)(x); }
  const QuantConfig& config() const { return cfg_; }
  const nn::ModelSpec& spec() const { return spec_; }
  // The float model's state as it came in (before folding): what a quantized file stores.
  const nn::StateDict& source_state() const { return source_; }

  // MQBench's order: activation observers over every batch with nothing quantized (twice for
  // OMSE), then the weights' ranges; then everything is switched on.
  void calibrate(const std::vector<Tensor>& batches);
  bool calibrated() const { return calibrated_; }
  // Switch weight and activation quantization on or off (qparams are kept).
  void set_enabled(bool weights, bool activations);
  // Marks the model calibrated after qparams were set by hand (e.g. loaded from a file).
  void mark_calibrated() {
    calibrated_ = true;
    set_enabled(true, true);
  }

  std::vector<QuantLayer>& layers() { return layers_; }
  QuantLayer& layer(const std::string& name);
  // Every activation quantizer once, in forward order (extra add-input quantizers included).
  const std::vector<NamedQuantizer>& activation_quantizers() const { return acts_; }

  // The fake-quantized weight of a layer, and its integers.
  Tensor quantized_weight(const QuantLayer& l) const;
  Tensor integer_weight(const QuantLayer& l) const;
  // The rounding mask: u8, 1 where the weight's integer (before clamping) is above its unrounded
  // value v, i.e. it was rounded up; for mask rounding this is the mask itself.
  Tensor rounded_up(const QuantLayer& l) const;

 private:
  nn::ModelSpec spec_;
  QuantConfig cfg_;
  nn::ModulePtr model_;
  nn::StateDict source_;
  std::vector<QuantLayer> layers_;
  std::vector<NamedQuantizer> acts_;
  // (quantizer, the one whose qparams it takes): the ResNet head under pool_passthrough.
  std::vector<std::pair<std::shared_ptr<TensorQuantizer>, std::shared_ptr<TensorQuantizer>>> tied_;
  bool calibrated_ = false;
  void install();
};

// Folds every batch norm into the conv before it (eval-mode statistics, torch's
// fuse_conv_bn_weights in float32): W' = W * g/sqrt(v+eps), b' = (b - m) * g/sqrt(v+eps) + beta.
// The BN layers are marked folded and pass their input through. Returns the number folded.
int fold_batchnorm(nn::Module& model);

// A fresh copy of a model (same spec, same weights and buffers), in eval mode.
nn::ModulePtr clone_model(const nn::ModelSpec& spec, nn::Module& model);

}  // namespace dearest::quant
