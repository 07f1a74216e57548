#include "attacks/emulation.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/layers.h"

namespace dearest::attacks {

namespace {

Tensor named(const nn::StateDict& sd, const std::string& key) {
  for (auto& [k, t] : sd)
    if (k == key) return t;
  fail("emulation: batch norm without ", key);
}

}  // namespace

QuantEmulation::QuantEmulation(nn::Module& model, const quant::QuantConfig& config, const std::vector<int>& bits,
                               quant::Ste ste)
    : model_(model), active_(std::make_shared<int>(0)) {
  DEAREST_CHECK(!bits.empty(), "emulation: no bit width");
  DEAREST_CHECK(config.placement == quant::Placement::Consumer || config.a_bits == 0,
                "emulation: activations are emulated at each layer's input (consumer placement) only");
  auto mods = model.named_modules();
  std::vector<size_t> convlin;
  for (size_t i = 0; i < mods.size(); ++i)
    if (mods[i].second->type() == "Conv2d" || mods[i].second->type() == "Linear") convlin.push_back(i);
  for (size_t k = 0; k < convlin.size(); ++k) {
    const auto& [name, m] = mods[convlin[k]];
    const bool is_conv = m->type() == "Conv2d";
    if (!config.selects(name) || (k == 0 && !config.quantize_first) || (!is_conv && !config.quantize_linear)) continue;
    Layer l;
    l.module = m;
    l.is_conv = is_conv;
    for (int b : bits) {
      DEAREST_CHECK(b >= 2 && b <= 8, "emulation: bit width ", b, " outside 2..8");
      quant::QuantConfig c = config;
      c.set_bits(b, config.a_bits ? b : 0);
      auto wq = std::make_shared<quant::TensorQuantizer>(is_conv ? c.conv_weight : c.linear_weight, c.weight_obs, ste);
      wq->mode = quant::TensorQuantizer::Mode::Dynamic;
      l.weight[b] = wq;
      l.nearest[b] = wq->scheme();
      if (config.a_bits) {
        auto aq = std::make_shared<quant::TensorQuantizer>(c.act, c.act_obs, ste);
        aq->mode = quant::TensorQuantizer::Mode::Dynamic;
        l.input[b] = aq;
      }
    }
    // CompArtifact's fused conv+BN: the BN right after the conv scales its weight.
    nn::BatchNorm2d* bn = nullptr;
    if (is_conv && config.fold_bn && convlin[k] + 1 < mods.size() && mods[convlin[k] + 1].second->type() == "BatchNorm2d")
      bn = static_cast<nn::BatchNorm2d*>(mods[convlin[k] + 1].second);
    auto active = active_;
    auto wqs = l.weight;
    nn::Module::TensorTransform wt;
    if (bn) {
      const Tensor gamma = named(bn->named_parameters(), "weight"), var = named(bn->named_buffers(), "running_var");
      const double eps = bn->eps;
      wt = [active, wqs, gamma, var, eps](const Tensor& w) {
        if (*active == 0) return w;
        const int64_t C = w.size(0);
        Tensor inv_std;
        {
          NoGradGuard ng;
          inv_std = div(1.0, sqrt(add(var.detach(), eps)));
        }
        Tensor factor = reshape(mul(gamma, inv_std), {C, 1, 1, 1});
        return div((*wqs.at(*active))(mul(w, factor)), factor);
      };
    } else {
      wt = [active, wqs](const Tensor& w) { return *active == 0 ? w : (*wqs.at(*active))(w); };
    }
    if (is_conv) static_cast<nn::Conv2d*>(m)->weight_transform = wt;
    else static_cast<nn::Linear*>(m)->weight_transform = wt;
    if (config.a_bits) {
      DEAREST_CHECK(!m->has_input_transform(), "emulation: ", name, " already has an input transform");
      auto aqs = l.input;
      m->set_input_transform([active, aqs](const Tensor& x) { return *active == 0 ? x : (*aqs.at(*active))(x); });
    }
    layers_.push_back(std::move(l));
    names_.push_back(name);
  }
  DEAREST_CHECK(!layers_.empty(), "emulation: no conv/linear layer matches the chosen layers");
}

QuantEmulation::~QuantEmulation() {
  for (auto& l : layers_) {
    if (l.is_conv) static_cast<nn::Conv2d*>(l.module)->weight_transform = nullptr;
    else static_cast<nn::Linear*>(l.module)->weight_transform = nullptr;
    if (!l.input.empty()) l.module->set_input_transform(nullptr);
  }
}

std::vector<Shape> QuantEmulation::weight_shapes() const {
  std::vector<Shape> out;
  for (const auto& l : layers_)
    for (auto& [k, t] : l.module->named_parameters(false))
      if (k == "weight") out.push_back(t.shape());
  return out;
}

void QuantEmulation::set_weight_rounding(quant::Rounding r) {
  for (auto& l : layers_)
    for (auto& [b, q] : l.weight) {
      quant::QuantScheme s = l.nearest.at(b);
      s.rounding = r;
      q->set_scheme(s);
    }
}

void QuantEmulation::reset_weight_rounding() {
  for (auto& l : layers_)
    for (auto& [b, q] : l.weight) q->set_scheme(l.nearest.at(b));
}

void QuantEmulation::set_flip_masks(int bits, const std::vector<Tensor>& masks) {
  DEAREST_CHECK(masks.size() == layers_.size(), "emulation: ", masks.size(), " flip masks for ", layers_.size(), " layers");
  const std::vector<Shape> shapes = weight_shapes();
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto it = layers_[i].weight.find(bits);
    DEAREST_CHECK(it != layers_[i].weight.end(), "emulation: width ", bits, " was not set up");
    DEAREST_CHECK(masks[i].dtype() == DType::U8 && masks[i].shape() == shapes[i], "emulation: the flip mask of ",
                  names_[i], " must be u8 ", shape_str(shapes[i]), ", got ", masks[i].describe());
    it->second->up_mask = masks[i].contiguous();
  }
}

void QuantEmulation::use(int bits) {
  DEAREST_CHECK(bits == 0 || (!layers_.empty() && layers_[0].weight.count(bits)), "emulation: width ", bits,
                " was not set up");
  *active_ = bits;
}

}  // namespace dearest::attacks
