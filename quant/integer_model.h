// The integer-only reference model: what an int8 runtime (TFLite, PyTorch's fbgemm/qnnpack)
// computes for a quantized ResNet-18 or VGG-16. The image is quantized once; from there on every
// tensor is an integer: int8 weights, u8/i8 activations, int32 accumulators with int32 biases,
// requantization by fixed-point multiplier and shift, TFLite's integer residual add, integer
// max-pooling and average pooling. The logits are the last accumulator times its scale.
//
// It needs a quantized model whose weights are symmetric (zero point 0), whose batch norms are
// folded and whose activation quantizers are static, at every conv/linear input and at both
// inputs of each residual add: the tflite-int8, pytorch-fbgemm and pytorch-qnnpack presets.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "quant/integer_ops.h"
#include "quant/quantized_model.h"

namespace dearest::quant {

// How an int32 accumulator is rescaled to the next 8-bit tensor.
enum class Requant {
  Gemmlowp,  // TFLite/gemmlowp exactly: a 31-bit multiplier, a rounding doubling high multiply, then
             // a rounding right shift (two roundings), and TFLite's add with 20 bits of headroom
  Single,    // a 48-bit fixed-point multiplier and one rounding shift with the emulation's tie rule:
             // integer-only still, without the intermediate rounding
};

class IntegerModel {
 public:
  // reference: plain integer loops for the convolutions instead of the exact f64 GEMM path.
  explicit IntegerModel(QuantizedModel& q, bool reference = false, Requant requant = Requant::Gemmlowp);
  // Float images (normalized, as the float model takes them) -> float logits.
  Tensor forward(const Tensor& images);
  // Called with each activation quantizer's name and the integers the integer model holds there
  // (the same names as QuantizedModel::activation_quantizers()): for comparing layer by layer.
  std::function<void(const std::string& name, const Tensor& q)> trace;
  // Why a quantized model cannot run integer-only ("" when it can).
  static std::string unsupported_reason(QuantizedModel& q);

 private:
  struct Act {
    Tensor q;  // i32
    float scale;
    int32_t zero;
  };
  struct Layer {
    const QuantLayer* ql = nullptr;
    Tensor w;     // i32
    Tensor wscale;  // f32 [O]: per-channel (or repeated per-tensor) weight steps
    Tensor bias;  // f32 [O] or undefined
  };
  Act quantize_input(const Tensor& x);
  Tensor accumulate(const Layer& l, const Act& in) const;  // i32 accumulator with the int32 bias
  Act requantize(const Tensor& acc, const Layer& l, float in_scale, const TensorQuantizer& out, bool relu,
                 bool relu6) const;
  Act add(const Act& a, const Act& b, const TensorQuantizer& out, bool relu) const;
  Act avg_pool(const Act& a, int64_t k, const TensorQuantizer& out) const;  // k = 0: global
  static Act max_pool(const Act& a, const Pool2dParams& p);
  Tensor logits(const Tensor& acc, const Layer& l, float in_scale) const;
  // round(x * real) by the chosen requantization (m is real as gemmlowp's multiplier).
  int64_t rescale(int32_t x, double real, const FixedMultiplier& m, Rounding tie) const;
  const TensorQuantizer& act_quantizer(const std::string& name) const;
  Tensor forward_resnet(const Tensor& x);
  Tensor forward_vgg(const Tensor& x);

  QuantizedModel& q_;
  bool reference_;
  Requant requant_;
  std::map<std::string, Layer> layers_;
  std::map<std::string, const TensorQuantizer*> acts_;
};

}  // namespace dearest::quant
