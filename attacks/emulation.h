// Quantization emulated during training, in place on a float model (ALGORITHMS.md §2): the
// attacks' fake quantizers sit on the model's own conv/linear weights and inputs, so the float
// and the quantized paths share every parameter and the quantized path's gradient reaches them
// through the straight-through estimator. Ranges come from the current weights and the current
// batch at every forward, as all three attacks compute them. Which bit width is live is switched
// between forwards; 0 is the plain float model.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"
#include "quant/presets.h"
#include "quant/tensor_quantizer.h"

namespace dearest::attacks {

class QuantEmulation {
 public:
  // `config` gives the schemes, the layers (layers/skip prefixes, quantize_first/linear, the
  // first conv's and last linear's first_last_bits), the placement of the input quantizers
  // (producer: a residual block's input quantized once for conv1, the downsample conv and the
  // identity path, as QuantizedModel does; consumer: at each conv/linear input), whether
  // weights are BN-folded (CompArtifact: the folded weight W*g/sqrt(var+eps) is fake-quantized and
  // divided back, BN then runs as usual) and whether inputs are quantized (a_bits > 0: at every
  // quantized conv/linear input). One set of quantizers per width in `bits`.
  // `observed_ranges`: ranges come from the preset's own observers (MQBench: the MSE search)
  // instead of each tensor's min and max, set by observe_ranges: the weights' from the weights
  // then, the activations' from the float model on the batch given, as a calibration takes them.
  QuantEmulation(nn::Module& model, const quant::QuantConfig& config, const std::vector<int>& bits,
                 quant::Ste ste = quant::Ste::Clipped, bool observed_ranges = false);
  ~QuantEmulation();  // takes its transforms off the model
  QuantEmulation(const QuantEmulation&) = delete;
  QuantEmulation& operator=(const QuantEmulation&) = delete;

  void use(int bits);  // 0: float
  // Observed ranges only (call it once a step, before the quantized forwards): set every width's
  // weight ranges from the current weights, and its activation ranges from what each quantizer's
  // input is when the float model runs on `x` (no graph; skipped with float activations).
  void observe_ranges(const Tensor& x);
  int active() const { return *active_; }
  const std::vector<std::string>& layers() const { return names_; }
  std::vector<Shape> weight_shapes() const;  // per layer, in layers() order

  // How weights of every width are rounded from the next forward on: the preset's own rounding
  // (nearest), Flipped, or FlipMask with per-layer masks (set_flip_masks) of the weights' shapes.
  void set_weight_rounding(quant::Rounding r);
  void reset_weight_rounding();  // back to the preset's
  // FlipMask's masks for one width, u8 0/1, one per layer in layers() order.
  void set_flip_masks(int bits, const std::vector<Tensor>& masks);

 private:
  struct Layer {
    nn::Module* module = nullptr;
    bool is_conv = true;
    std::map<int, std::shared_ptr<quant::TensorQuantizer>> weight, input;
    std::map<int, quant::QuantScheme> nearest;  // the preset's weight scheme per width
  };
  nn::Module& model_;
  std::shared_ptr<int> active_;
  std::shared_ptr<bool> observing_;
  bool observed_ranges_ = false;
  std::vector<Layer> layers_;
  std::vector<std::string> names_;
  // Producer placement: the input quantizers of residual blocks per width, and the blocks carrying them.
  std::map<std::string, std::map<int, std::shared_ptr<quant::TensorQuantizer>>> block_inputs_;
  std::vector<nn::Module*> blocks_;
};

}  // namespace dearest::attacks
