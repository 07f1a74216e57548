// The layers the model families need, each a thin Module over the differentiable ops.
#pragma once
#include "nn/module.h"

namespace dearest::nn {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool bias = true,
         int64_t groups = 1, int64_t dilation = 1);
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return param("weight"); }
  Tensor& bias() { return param("bias"); }
  bool has_bias() const { return has_bias_; }
  // Adds a bias parameter to a conv built without one (batch-norm folding), or overwrites it.
  void set_bias(const Tensor& b);
  Conv2dParams params;
  // Applied to the weight / bias at every forward (fake quantization); empty = as is.
  TensorTransform weight_transform, bias_transform;

 private:
  bool has_bias_;
};

// Batch norm over channels: momentum 0.1, eps 1e-5, unbiased running variance (as PyTorch).
// fuse_relu makes it BatchNorm2d followed by ReLU in one oneDNN primitive.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override { return run(x, false); }
  Tensor run(const Tensor& x, bool fuse_relu);
  double eps, momentum;
  // Folded into the preceding conv: the layer passes its input through (then the ReLU, if fused).
  bool folded = false;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor& weight() { return param("weight"); }
  bool has_bias() const { return has_bias_; }
  TensorTransform weight_transform, bias_transform;  // as Conv2d's

 private:
  bool has_bias_;
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class ReLU6 : public Module {
 public:
  ReLU6() : Module("ReLU6") {}
  Tensor forward(const Tensor& x) override { return clamp(x, 0, 6); }
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0);
  Tensor forward(const Tensor& x) override { return max_pool2d(x, p); }
  Pool2dParams p;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(int64_t kernel, int64_t stride = -1, int64_t padding = 0);
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, p); }
  Pool2dParams p;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t h, int64_t w) : Module("AdaptiveAvgPool2d"), h_(h), w_(w) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, h_, w_); }

 private:
  int64_t h_, w_;
};

// Inverted dropout (scaled by 1/(1-p) in training, identity in eval). Masks come from the
// dropout RNG context (set_dropout_context), so a run replays exactly.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  double p;
};
// Sets the seed and step that dropout masks are drawn from; each Dropout call within the step
// takes the next stream.
void set_dropout_context(uint64_t seed, int64_t step);

class Flatten : public Module {
 public:
  Flatten() : Module("Flatten") {}
  Tensor forward(const Tensor& x) override { return flatten(x, 1); }
};

// Fine-pruning's channel mask: x * mask[c] on an NCHW tensor; the mask (a buffer, ones at first)
// is saved with the model, so a pruned model stays pruned when it is loaded and quantized.
class ChannelMask : public Module {
 public:
  explicit ChannelMask(int64_t channels);
  Tensor forward(const Tensor& x) override;
  Tensor& mask() { return buffer("mask"); }
  int64_t pruned() const;  // channels whose mask is 0
};

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

// Children named "0", "1", ... run in order. A BatchNorm2d directly followed by a ReLU runs fused
// (unless either has forward hooks, which need the two outputs apart).
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  void push_back(ModulePtr m) { register_module(std::to_string(size_++), std::move(m)); }
  Tensor forward(const Tensor& x) override;
  int64_t size() const { return size_; }
  Module& at(int64_t i) { return *children()[size_t(i)].second; }

 private:
  int64_t size_ = 0;
};

}  // namespace dearest::nn
