#include "nn/gradcam.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "tensor/error.h"

namespace dearest::nn {

std::string gradcam_layer(Module& model, const ModelSpec& spec) {
  if (spec.arch == "resnet18") return "layer4";
  std::string last;
  for (auto& [name, m] : model.named_modules())
    if (name.rfind("features.", 0) == 0 && m->type() == "ReLU") last = name;
  DEAREST_CHECK(!last.empty(), "grad-cam: no ReLU in the model's features; name a layer");
  return last;
}

namespace {

// Bilinear upsampling of one map [h, w] to [H, W], half-pixel centres (align_corners=False).
void upsample(const float* src, int64_t h, int64_t w, float* dst, int64_t H, int64_t W) {
  for (int64_t y = 0; y < H; ++y) {
    const double sy = std::max(0.0, (y + 0.5) * double(h) / double(H) - 0.5);
    const int64_t y0 = std::min<int64_t>(int64_t(sy), h - 1), y1 = std::min<int64_t>(y0 + 1, h - 1);
    const double fy = sy - double(y0);
    for (int64_t x = 0; x < W; ++x) {
      const double sx = std::max(0.0, (x + 0.5) * double(w) / double(W) - 0.5);
      const int64_t x0 = std::min<int64_t>(int64_t(sx), w - 1), x1 = std::min<int64_t>(x0 + 1, w - 1);
      const double fx = sx - double(x0);
      dst[y * W + x] = float((1 - fy) * ((1 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1]) +
                             fy * ((1 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1]));
    }
  }
}

}  // namespace

Tensor grad_cam(Module& model, const std::string& layer, const Tensor& x, const std::vector<int32_t>& classes) {
  DEAREST_CHECK(x.dim() == 4, "grad-cam: expected images [N, C, H, W], got ", x.dim(), " dimensions");
  const int64_t n = x.size(0), H = x.size(2), W = x.size(3);
  DEAREST_CHECK(int64_t(classes.size()) == n, "grad-cam: ", classes.size(), " classes for ", n, " images");
  auto cap = capture(model, layer, true);
  Tensor in = x.clone().set_requires_grad();  // the graph exists even if the weights are frozen
  Tensor logits = model(in);
  model.find(layer)->clear_forward_hooks();
  const int64_t k = logits.size(1);
  Tensor onehot = Tensor::zeros({n, k}, logits.dtype());
  for (int64_t i = 0; i < n; ++i) {
    DEAREST_CHECK(classes[size_t(i)] >= 0 && classes[size_t(i)] < k, "grad-cam: class ", classes[size_t(i)], " outside [0, ", k, ")");
    onehot.data<float>()[i * k + classes[size_t(i)]] = 1;
  }
  backward(sum(mul(logits, onehot)));
  DEAREST_CHECK(cap->output.defined() && cap->grad.defined(), "grad-cam: no gradient reached ", layer);
  Tensor a = cap->output.plain().contiguous(), g = cap->grad.contiguous();
  const int64_t c = a.size(1), h = a.size(2), w = a.size(3);
  const float* ap = a.data<float>();
  const float* gp = g.data<float>();
  Tensor out = Tensor::zeros({n, H, W}, DType::F32);
  std::vector<float> map(size_t(h * w));
  for (int64_t i = 0; i < n; ++i) {
    std::fill(map.begin(), map.end(), 0.f);
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* gc = gp + (i * c + ch) * h * w;
      const float* ac = ap + (i * c + ch) * h * w;
      double alpha = 0;
      for (int64_t p = 0; p < h * w; ++p) alpha += gc[p];
      alpha /= double(h * w);
      for (int64_t p = 0; p < h * w; ++p) map[size_t(p)] += float(alpha * ac[p]);
    }
    for (float& v : map) v = std::max(v, 0.f);
    float* o = out.data<float>() + i * H * W;
    upsample(map.data(), h, w, o, H, W);
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t p = 0; p < H * W; ++p) lo = std::min(lo, o[p]), hi = std::max(hi, o[p]);
    for (int64_t p = 0; p < H * W; ++p) o[p] = hi > lo ? (o[p] - lo) / (hi - lo) : 0.f;
  }
  return out;
}

Tensor penultimate_features(Module& model, const Tensor& x) {
  Module* last = nullptr;
  for (auto& [name, m] : model.named_modules())
    if (m->type() == "Linear") last = m;
  DEAREST_CHECK(last != nullptr, "penultimate features: the model has no linear layer");
  // Wrap the layer's input transform (a quantized model's activation quantizer lives there): the
  // features are what the layer actually reads.
  const Module::TensorTransform old = last->input_transform();
  Tensor seen;
  last->set_input_transform([&](const Tensor& t) {
    Tensor y = old ? old(t) : t;
    seen = y;
    return y;
  });
  {
    NoGradGuard ng;
    model(x);
  }
  last->set_input_transform(old);
  DEAREST_CHECK(seen.defined(), "penultimate features: the last linear layer was not reached");
  return seen.plain().contiguous().reshape({x.size(0), -1});
}

}  // namespace dearest::nn
