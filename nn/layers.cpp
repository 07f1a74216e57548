#include "nn/layers.h"

#include <cmath>

#include "nn/init.h"
#include "tensor/ops/elementwise.h"
#include "tensor/rng.h"

namespace dearest::nn {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, int64_t groups,
               int64_t dilation)
    : Module("Conv2d"), has_bias_(bias) {
  DEAREST_CHECK(in > 0 && out > 0 && kernel > 0 && groups > 0 && in % groups == 0 && out % groups == 0,
                "Conv2d: invalid channels ", in, "->", out, " kernel ", kernel, " groups ", groups);
  params.stride_h = params.stride_w = stride;
  params.pad_h = params.pad_w = padding;
  params.dil_h = params.dil_w = dilation;
  params.groups = groups;
  Tensor w = Tensor::empty({out, in / groups, kernel, kernel});
  Tensor b = bias ? Tensor::empty({out}) : Tensor();
  default_init_conv_linear(w, b);
  register_parameter("weight", w);
  if (bias) register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) {
  const Tensor& w = param("weight");
  Tensor b = has_bias_ ? param("bias") : Tensor();
  if (b.defined() && bias_transform) b = bias_transform(b);
  return conv2d(x, weight_transform ? weight_transform(w) : w, b, params);
}

void Conv2d::set_bias(const Tensor& b) {
  DEAREST_CHECK(b.dim() == 1 && b.size(0) == weight().size(0), "Conv2d::set_bias: expected [", weight().size(0), "], got ",
                b.describe());
  if (has_bias_) {
    NoGradGuard ng;
    param("bias").copy_(b);
    return;
  }
  register_parameter("bias", b.detach().clone());
  has_bias_ = true;
}

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, double momentum_) : Module("BatchNorm2d"), eps(eps_), momentum(momentum_) {
  register_parameter("weight", Tensor::ones({c}));
  register_parameter("bias", Tensor::zeros({c}));
  register_buffer("running_mean", Tensor::zeros({c}));
  register_buffer("running_var", Tensor::ones({c}));
}

Tensor BatchNorm2d::run(const Tensor& x, bool fuse_relu) {
  if (folded) return fuse_relu ? relu(x) : x;
  return batch_norm(x, buffer("running_mean"), buffer("running_var"), param("weight"), param("bias"), is_training(),
                    momentum, eps, fuse_relu);
}

Linear::Linear(int64_t in, int64_t out, bool bias) : Module("Linear"), has_bias_(bias) {
  DEAREST_CHECK(in > 0 && out > 0, "Linear: invalid features ", in, "->", out);
  Tensor w = Tensor::empty({out, in}), b = bias ? Tensor::empty({out}) : Tensor();
  default_init_conv_linear(w, b);
  register_parameter("weight", w);
  if (bias) register_parameter("bias", b);
}

Tensor Linear::forward(const Tensor& x) {
  const Tensor& w = param("weight");
  Tensor b = has_bias_ ? param("bias") : Tensor();
  if (b.defined() && bias_transform) b = bias_transform(b);
  return linear(x, weight_transform ? weight_transform(w) : w, b);
}

MaxPool2d::MaxPool2d(int64_t k, int64_t s, int64_t pad) : Module("MaxPool2d") {
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s < 0 ? k : s;
  p.pad_h = p.pad_w = pad;
}

AvgPool2d::AvgPool2d(int64_t k, int64_t s, int64_t pad) : Module("AvgPool2d") {
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s < 0 ? k : s;
  p.pad_h = p.pad_w = pad;
}

namespace {
thread_local uint64_t t_dropout_seed = 0;
thread_local int64_t t_dropout_step = 0;
thread_local int64_t t_dropout_call = 0;
}  // namespace

void set_dropout_context(uint64_t seed, int64_t step) {
  t_dropout_seed = seed;
  t_dropout_step = step;
  t_dropout_call = 0;
}

Dropout::Dropout(double p_) : Module("Dropout"), p(p_) {
  DEAREST_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0) return x;
  Rng rng(t_dropout_seed + 0xD20F, (uint64_t(t_dropout_step) << 16) + uint64_t(t_dropout_call++));
  Tensor mask = rng.bernoulli(x.shape(), 1 - p, x.dtype());
  return mul(x, raw::binary(raw::Binary::Mul, mask, 1.0 / (1.0 - p)));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  const auto& ch = children();
  for (size_t i = 0; i < ch.size(); ++i) {
    Module& m = *ch[i].second;
    if (i + 1 < ch.size() && m.type() == "BatchNorm2d" && ch[i + 1].second->type() == "ReLU" && !m.has_forward_hooks() &&
        !ch[i + 1].second->has_forward_hooks() && !m.has_output_transform() && !ch[i + 1].second->has_input_transform()) {
      h = static_cast<BatchNorm2d&>(m).run(h, true);
      ++i;
      continue;
    }
    h = m(h);
  }
  return h;
}

ChannelMask::ChannelMask(int64_t channels) : Module("ChannelMask") {
  DEAREST_CHECK(channels >= 1, "ChannelMask: at least one channel, got ", channels);
  register_buffer("mask", Tensor::ones({channels}));
}

Tensor ChannelMask::forward(const Tensor& x) {
  DEAREST_CHECK(x.dim() == 4 && x.size(1) == buffer("mask").numel(), "ChannelMask: expected [N, ",
                buffer("mask").numel(), ", H, W], got ", x.describe());
  return mul(x, reshape(buffer("mask"), {1, x.size(1), 1, 1}));
}

int64_t ChannelMask::pruned() const {
  int64_t n = 0;
  for (auto& [k, t] : named_buffers())
    if (k == "mask") {
      const Tensor m = t.contiguous();
      for (int64_t c = 0; c < m.numel(); ++c) n += m.data<float>()[c] == 0.0f;
    }
  return n;
}

}  // namespace dearest::nn
