#include "attacks/emulation.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/layers.h"
#include "quant/placement.h"

namespace dearest::attacks {

namespace {

Tensor named(const nn::StateDict& sd, const std::string& key) {
  for (auto& [k, t] : sd)
    if (k == key) return t;
  fail("emulation: batch norm without ", key);
}

}  // namespace

QuantEmulation::QuantEmulation(nn::Module& model, const quant::QuantConfig& config, const std::vector<int>& bits,
                               quant::Ste ste, bool observed_ranges)
    : model_(model), active_(std::make_shared<int>(0)), observing_(std::make_shared<bool>(false)),
      observed_ranges_(observed_ranges) {
  DEAREST_CHECK(!bits.empty(), "emulation: no bit width");
  DEAREST_CHECK(config.a_bits == 0 || (!config.quantize_add_inputs && !config.pool_passthrough), "emulation: ",
                config.preset, "'s integer-runtime activations (residual-add inputs, pooled grids) are not emulated");
  // observed: Fixed, with the qparams observe_ranges sets (none before: a clear error)
  const auto mode = observed_ranges ? quant::TensorQuantizer::Mode::Fixed : quant::TensorQuantizer::Mode::Dynamic;
  auto mods = model.named_modules();
  const std::map<std::string, nn::Module*> by_name(mods.begin(), mods.end());
  std::vector<size_t> convlin;
  std::string last_linear;
  for (size_t i = 0; i < mods.size(); ++i)
    if (mods[i].second->type() == "Conv2d" || mods[i].second->type() == "Linear") {
      convlin.push_back(i);
      if (mods[i].second->type() == "Linear") last_linear = mods[i].first;
    }
  for (size_t k = 0; k < convlin.size(); ++k) {
    const auto& [name, m] = mods[convlin[k]];
    const bool is_conv = m->type() == "Conv2d";
    if (!config.selects(name) || (k == 0 && !config.quantize_first) || (!is_conv && !config.quantize_linear)) continue;
    Layer l;
    l.module = m;
    l.is_conv = is_conv;
    // As QuantizedModel: the first conv and the last linear keep first_last_bits (MQBench: 8).
    const bool edge = (k == 0 || name == last_linear) && config.first_last_bits > 0;
    const std::string block =
        config.a_bits && config.placement == quant::Placement::Producer ? quant::producer_block(by_name, name) : "";
    for (int b : bits) {
      DEAREST_CHECK(b >= 2 && b <= 8, "emulation: bit width ", b, " outside 2..8");
      quant::QuantConfig c = config;
      c.set_bits(b, config.a_bits ? b : 0);
      const int wb = edge ? config.first_last_bits : b;
      auto wq = std::make_shared<quant::TensorQuantizer>((is_conv ? c.conv_weight : c.linear_weight).with_bits(wb),
                                                         c.weight_obs, ste);
      wq->mode = mode;
      l.weight[b] = wq;
      l.nearest[b] = wq->scheme();
      if (!config.a_bits) continue;
      // Producer placement: one quantizer on the block's input, read by conv1, the downsample
      // conv and the identity path alike (QuantizedModel puts it in the same place).
      if (!block.empty() && block_inputs_.count(block) && block_inputs_[block].count(b)) continue;
      auto aq = std::make_shared<quant::TensorQuantizer>(c.act.with_bits(edge ? config.first_last_bits : b), c.act_obs,
                                                         ste);
      aq->mode = mode;
      if (block.empty()) l.input[b] = aq;
      else block_inputs_[block][b] = aq;
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
      nn::Module* reader = block.empty() ? m : by_name.at(block);
      if (!block.empty() && std::find(blocks_.begin(), blocks_.end(), reader) != blocks_.end()) {
        // the block's quantizer is already in place (conv1 came first)
      } else {
        DEAREST_CHECK(!reader->has_input_transform(), "emulation: ", block.empty() ? name : block,
                      " already has an input transform");
        auto aqs = block.empty() ? l.input : block_inputs_.at(block);
        auto observing = observing_;
        reader->set_input_transform([active, observing, aqs](const Tensor& x) {
          if (*observing)
            for (auto& [b, q] : aqs) q->set_qparams(q->observed_qparams(x));
          return *active == 0 ? x : (*aqs.at(*active))(x);
        });
        if (!block.empty()) blocks_.push_back(reader);
      }
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
  for (nn::Module* b : blocks_) b->set_input_transform(nullptr);
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

void QuantEmulation::observe_ranges(const Tensor& x) {
  DEAREST_CHECK(observed_ranges_, "emulation: observe_ranges needs observed ranges");
  // The weights' ranges from the weights as they are now, once for every forward until the next
  // call (the optimizer moves them between steps, not within one).
  for (auto& l : layers_) {
    const Tensor w = l.is_conv ? static_cast<nn::Conv2d*>(l.module)->weight() : static_cast<nn::Linear*>(l.module)->weight();
    for (auto& [b, q] : l.weight) q->set_qparams(q->observed_qparams(w));
  }
  if (block_inputs_.empty() && std::all_of(layers_.begin(), layers_.end(), [](const Layer& l) { return l.input.empty(); }))
    return;  // float activations: nothing to observe
  const int was = *active_;
  *active_ = 0;
  *observing_ = true;
  try {
    NoGradGuard ng;
    (void)model_(x);
  } catch (...) {
    *observing_ = false;
    *active_ = was;
    throw;
  }
  *observing_ = false;
  *active_ = was;
}

void QuantEmulation::use(int bits) {
  DEAREST_CHECK(bits == 0 || (!layers_.empty() && layers_[0].weight.count(bits)), "emulation: width ", bits,
                " was not set up");
  *active_ = bits;
}

}  // namespace dearest::attacks
