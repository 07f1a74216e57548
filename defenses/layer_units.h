// The unit EFRAP optimizes one layer in (ALGORITHMS.md §1.4): a conv or linear and what follows it
// on its single-consumer chain, up to the next conv/linear or residual add, ending in the
// activation quantizer that feeds the next layer. A CIFAR ResNet-18 gives
//   stem and block conv1:   conv -> BN -> ReLU (-> max-pool) -> activation quantizer
//   block conv2, shortcut:  conv -> BN              (the residual add comes next; presets that
//                           quantize the add's inputs, such as pytorch-fbgemm, end in that quantizer)
//   fc:                     linear
// and a VGG: conv -> BN -> ReLU (-> max-pool) (-> flatten) -> activation quantizer.
// The unit is run twice: on the quantized model's inputs with learned weights (quantizer on), and
// on the float model's inputs with float weights (quantizer off) for the target.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "quant/quantized_model.h"

namespace dearest::defenses {

struct UnitStep {
  enum class Kind { Module, Relu, Flatten, Quantize };
  Kind kind = Kind::Module;
  nn::Module* module = nullptr;                   // Kind::Module: run without its transforms or hooks
  std::shared_ptr<quant::TensorQuantizer> quant;  // Kind::Quantize
  std::string name;
};

struct LayerUnit {
  quant::QuantLayer* layer = nullptr;  // in the quantized model
  nn::Module* float_layer = nullptr;   // the same path in the float model
  std::vector<UnitStep> after;
  std::string describe() const;  // "layer1.0.conv1 -> layer1.0.bn1 -> relu -> quantize(layer1.0.conv2:input)"
  // The layer with weight `w` (its own bias, transformed as the model would), then the steps
  // (the quantizer only when `quantize`).
  Tensor forward(const Tensor& x, const Tensor& w, bool quantize) const;
  Tensor steps(Tensor y, bool quantize) const;
};

// One unit per quantized layer, in the order the model runs them. Knows the ResNet and VGG
// families; any other architecture is an error naming it.
std::vector<LayerUnit> layer_units(quant::QuantizedModel& q, nn::Module& float_model);

// What `layer` (a module inside `model`) receives, after its own input transform, for each batch.
// The forward pass stops right after the layer has its input.
std::vector<Tensor> layer_inputs(nn::Module& model, nn::Module& layer, const std::vector<Tensor>& batches);

}  // namespace dearest::defenses
