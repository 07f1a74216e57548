#include "quant/quantized_model.h"

#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "quant/element.h"
#include "quant/fake_quant.h"
#include "quant/ocs.h"
#include "quant/placement.h"

namespace dearest::quant {

namespace {

TensorQuantizer::Mode act_mode(const QuantConfig& c) {
  return c.dynamic_acts ? TensorQuantizer::Mode::Dynamic : TensorQuantizer::Mode::Fixed;
}

}  // namespace

Tensor& QuantLayer::float_weight() const {
  if (is_conv) return static_cast<nn::Conv2d*>(module)->weight();
  return static_cast<nn::Linear*>(module)->weight();
}

nn::ModulePtr clone_model(const nn::ModelSpec& spec, nn::Module& model) {
  nn::ModulePtr m = nn::build_model(spec);
  // Folding adds conv biases and marks BNs, which the spec does not know: carry them over first.
  auto src = model.named_modules(), dst = m->named_modules();
  DEAREST_CHECK(src.size() == dst.size(), "clone_model: the model does not have the structure of ", spec.str());
  for (size_t i = 0; i < src.size(); ++i) {
    DEAREST_CHECK(src[i].first == dst[i].first, "clone_model: module ", src[i].first, " vs ", dst[i].first);
    auto* sc = dynamic_cast<nn::Conv2d*>(src[i].second);
    auto* dc = dynamic_cast<nn::Conv2d*>(dst[i].second);
    if (sc && dc && sc->has_bias() && !dc->has_bias()) dc->set_bias(sc->bias().detach());
    auto* sb = dynamic_cast<nn::BatchNorm2d*>(src[i].second);
    if (sb && sb->folded) static_cast<nn::BatchNorm2d*>(dst[i].second)->folded = true;
  }
  m->load_state_dict(model.state_dict(), true);
  m->eval();
  return m;
}

int fold_batchnorm(nn::Module& model) {
  NoGradGuard ng;
  auto mods = model.named_modules();
  int folded = 0;
  nn::Conv2d* prev_conv = nullptr;
  for (auto& [name, m] : mods) {
    if (m->type() == "Conv2d") {
      prev_conv = static_cast<nn::Conv2d*>(m);
      continue;
    }
    if (m->type() == "BatchNorm2d" && prev_conv) {
      auto* bn = static_cast<nn::BatchNorm2d*>(m);
      if (bn->folded) continue;
      const auto sd = bn->state_dict();
      Tensor g, beta, mean, var;
      for (auto& [k, t] : sd) {
        if (k == "weight") g = t;
        if (k == "bias") beta = t;
        if (k == "running_mean") mean = t;
        if (k == "running_var") var = t;
      }
      Tensor& w = prev_conv->weight();
      const int64_t C = w.size(0);
      DEAREST_CHECK(g.numel() == C, "fold_batchnorm: ", name, " has ", g.numel(), " channels, the conv before it ", C);
      Tensor wc = w.contiguous().clone();
      Tensor b = prev_conv->has_bias() ? prev_conv->bias().contiguous().clone() : Tensor::zeros({C});
      const int64_t per = wc.numel() / C;
      float* wd = wc.data<float>();
      float* bd = b.data<float>();
      const float* gd = g.contiguous().data<float>();
      const float* betad = beta.contiguous().data<float>();
      const float* md = mean.contiguous().data<float>();
      const float* vd = var.contiguous().data<float>();
      for (int64_t c = 0; c < C; ++c) {
        const float rs = 1.0f / std::sqrt(vd[c] + float(bn->eps));
        const float f = gd[c] * rs;
        for (int64_t i = 0; i < per; ++i) wd[c * per + i] *= f;
        bd[c] = (bd[c] - md[c]) * rs * gd[c] + betad[c];
      }
      w.copy_(wc);
      prev_conv->set_bias(b);
      bn->folded = true;
      ++folded;
    }
    prev_conv = nullptr;
  }
  return folded;
}

QuantizedModel::QuantizedModel(const nn::ModelSpec& spec, nn::Module& float_model, QuantConfig cfg)
    : spec_(spec), cfg_(std::move(cfg)) {
  for (auto& [n, m] : float_model.named_modules())
    DEAREST_CHECK(!(m->type() == "BatchNorm2d" && static_cast<nn::BatchNorm2d*>(m)->folded),
                  "quantize: ", n, " is already folded; quantize the float model");
  model_ = clone_model(spec, float_model);
  for (auto& [k, t] : model_->state_dict()) source_.emplace_back(k, t.detach().clone());
  if (cfg_.fold_bn) fold_batchnorm(*model_);
  install();
}

void QuantizedModel::install() {
  auto mods = model_->named_modules();
  std::vector<std::pair<std::string, nn::Module*>> weighted;
  std::string last_linear;
  for (auto& [name, m] : mods)
    if (m->type() == "Conv2d" || m->type() == "Linear") {
      weighted.emplace_back(name, m);
      if (m->type() == "Linear") last_linear = name;
    }
  DEAREST_CHECK(!weighted.empty(), "quantize: the model has no conv or linear layer to quantize");
  const std::string first = weighted.front().first;
  std::map<std::string, nn::Module*> by_name(mods.begin(), mods.end());
  // Leaf modules in forward order (both families register them in the order they run).
  std::vector<std::pair<std::string, nn::Module*>> leaves;
  for (auto& [n, mm] : mods)
    if (mm->children().empty()) leaves.emplace_back(n, mm);
  // The pooling layer right before `name` (skipping dropout and identity), if any.
  auto pool_before = [&](const std::string& name) -> std::string {
    for (size_t i = 0; i < leaves.size(); ++i) {
      if (leaves[i].first != name) continue;
      for (size_t j = i; j-- > 0;) {
        const std::string t = leaves[j].second->type();
        if (t == "Dropout" || t == "Identity") continue;
        return t == "MaxPool2d" ? leaves[j].first : std::string();
      }
    }
    return "";
  };
  std::map<std::string, std::shared_ptr<TensorQuantizer>> block_inputs;
  for (auto& [name, m] : weighted) {
    if (!cfg_.selects(name)) continue;
    if (name == first && !cfg_.quantize_first) continue;
    if (m->type() == "Linear" && !cfg_.quantize_linear) continue;
    QuantLayer l;
    l.name = name;
    l.module = m;
    l.is_conv = m->type() == "Conv2d";
    l.first = name == first;
    l.last = name == last_linear;
    const bool edge = (l.first || l.last) && cfg_.first_last_bits > 0;
    l.weight_bits = edge ? cfg_.first_last_bits : cfg_.w_bits;
    QuantScheme ws = (l.is_conv ? cfg_.conv_weight : cfg_.linear_weight).with_bits(l.weight_bits);
    l.weight = std::make_shared<TensorQuantizer>(ws, cfg_.weight_obs);
    auto wq = l.weight;
    if (l.is_conv && cfg_.ocs_expand > 0) {
      l.ocs = std::make_shared<QuantLayer::Ocs>();
      l.ocs->ratio = cfg_.ocs_expand;
      l.ocs->grid_aware = cfg_.ocs_grid_aware && !ws.per_channel;
      auto ocs = l.ocs;
      static_cast<nn::Conv2d*>(m)->weight_transform = [wq, ocs](const Tensor& w) {
        if (wq->mode == TensorQuantizer::Mode::Off) return w;
        OcsSplit sp = ocs_split(w, ocs->ratio, ocs->grid_aware ? ocs->grid_scale : 0);
        return ocs_fold((*wq)(sp.weight), sp);
      };
    } else if (l.is_conv) {
      static_cast<nn::Conv2d*>(m)->weight_transform = [wq](const Tensor& w) { return (*wq)(w); };
    } else {
      static_cast<nn::Linear*>(m)->weight_transform = [wq](const Tensor& w) { return (*wq)(w); };
    }
    if (cfg_.a_bits > 0) {
      l.input_bits = edge ? cfg_.first_last_bits : cfg_.a_bits;
      // Producer placement in a ResNet block: conv1 and the downsample conv read the block input,
      // which the identity path reads too; one quantizer on the block's input serves all three.
      const std::string block = cfg_.placement == Placement::Producer ? producer_block(by_name, name) : "";
      if (!block.empty()) {
        auto it = block_inputs.find(block);
        // The first block reads the stem's max-pool (ImageNet stem): runtimes quantize before it.
        const bool pooled = cfg_.pool_passthrough && by_name.count("maxpool") && block == "layer1.0";
        const std::string where = pooled ? "maxpool" : block;
        if (it == block_inputs.end()) {
          auto q = std::make_shared<TensorQuantizer>(cfg_.act.with_bits(cfg_.a_bits), cfg_.act_obs);
          by_name[where]->set_input_transform([q](const Tensor& x) { return (*q)(x); });
          it = block_inputs.emplace(block, q).first;
          acts_.push_back({where + ":input", q});
        }
        l.input = it->second;
        l.input_bits = cfg_.a_bits;
        l.input_name = where + ":input";
        l.input_before_pool = pooled;
      } else {
        const std::string pool = cfg_.pool_passthrough ? pool_before(name) : "";
        auto q = std::make_shared<TensorQuantizer>(cfg_.act.with_bits(l.input_bits), cfg_.act_obs);
        (pool.empty() ? m : by_name[pool])->set_input_transform([q](const Tensor& x) { return (*q)(x); });
        l.input = q;
        l.input_name = (pool.empty() ? name : pool) + ":input";
        l.input_before_pool = !pool.empty();
        acts_.push_back({l.input_name, q});
      }
    }
    if (cfg_.quantize_bias && l.input && !cfg_.dynamic_acts) {
      // The bias on the accumulator grid s_in * s_w[c], once both quantizers have their qparams.
      auto iq = l.input;
      auto bias_fn = [wq, iq](const Tensor& b) {
        if (wq->mode != TensorQuantizer::Mode::Fixed || iq->mode != TensorQuantizer::Mode::Fixed) return b;
        const QParams& wp = wq->qparams();
        const float s_in = iq->qparams().scale.data<float>()[0];
        Tensor steps = Tensor::empty({b.numel()}, DType::F32);
        for (int64_t c = 0; c < b.numel(); ++c) steps.data<float>()[c] = s_in * wp.scale.data<float>()[wp.channels() == 1 ? 0 : c];
        return quantize_bias(b, steps, wq->scheme().rounding);
      };
      if (l.is_conv) static_cast<nn::Conv2d*>(m)->bias_transform = bias_fn;
      else static_cast<nn::Linear*>(m)->bias_transform = bias_fn;
    }
    layers_.push_back(std::move(l));
  }
  DEAREST_CHECK(!layers_.empty(), "quantize: no layer matches the chosen layers (", cfg_.layers.size(), " prefixes)");
  if (cfg_.a_bits > 0 && cfg_.quantize_add_inputs) {
    // The residual branch's two inputs, as integer runtimes requantize them before the add.
    for (auto& [name, m] : mods) {
      if (m->type() != "BasicBlock" || !cfg_.selects(name + ".conv2")) continue;
      for (const std::string leaf : {"bn2", "downsample"}) {
        auto it = by_name.find(name + "." + leaf);
        if (it == by_name.end()) continue;
        auto q = std::make_shared<TensorQuantizer>(cfg_.act.with_bits(cfg_.a_bits), cfg_.act_obs);
        it->second->set_output_transform([q](const Tensor& x) { return (*q)(x); });
        acts_.push_back({name + "." + leaf + ":output", q});
      }
    }
    // The last block's output feeds the pooling, not a conv: runtimes quantize it there too.
    std::string last_block;
    for (auto& [name, m] : mods)
      if (m->type() == "BasicBlock") last_block = name;
    if (!last_block.empty() && cfg_.placement == Placement::Producer && cfg_.selects(last_block + ".conv2")) {
      auto q = std::make_shared<TensorQuantizer>(cfg_.act.with_bits(cfg_.a_bits), cfg_.act_obs);
      by_name[last_block]->set_output_transform([q](const Tensor& x) { return (*q)(x); });
      acts_.push_back({last_block + ":output", q});
      // Average pooling keeps its input's qparams in integer runtimes: the head re-rounds the
      // pooled values onto the last block's grid.
      if (cfg_.pool_passthrough)
        for (auto& l : layers_)
          if (l.last && l.input && l.input.get() != q.get()) tied_.emplace_back(l.input, q);
    }
  }
}

QuantLayer& QuantizedModel::layer(const std::string& name) {
  for (auto& l : layers_)
    if (l.name == name) return l;
  fail("quantize: no quantized layer named \"", name, "\"");
}

void QuantizedModel::calibrate(const std::vector<Tensor>& batches) {
  NoGradGuard ng;
  model_->eval();
  const bool static_acts = cfg_.a_bits > 0 && !cfg_.dynamic_acts;
  if (static_acts) {
    DEAREST_CHECK(!batches.empty(), "quantize: calibration needs at least one batch");
    const int64_t in = nn::ModelSpec(spec_).get("input", 32);
    for (auto& b : batches)
      DEAREST_CHECK(b.dim() == 4 && b.size(1) == 3 && b.size(2) == in && b.size(3) == in,
                    "quantize: calibration batches must be [N, 3, ", in, ", ", in, "] for ", spec_.str(), ", got ",
                    b.describe());
    for (auto& l : layers_) l.weight->mode = TensorQuantizer::Mode::Off;
    for (auto& a : acts_) a.q->mode = TensorQuantizer::Mode::Observe;
    for (auto& b : batches) (*model_)(b);
    bool second = false;
    for (auto& a : acts_)
      if (a.q->observer().needs_second_pass()) {
        a.q->observer().begin_second_pass();
        second = true;
      }
    if (second)
      for (auto& b : batches) (*model_)(b);
    for (auto& a : acts_) a.q->freeze();
    for (auto& [q, from] : tied_) q->set_qparams(from->qparams());
  }
  for (auto& l : layers_) {
    if (cfg_.dynamic_weights) continue;
    Tensor w = l.float_weight().detach();
    if (l.ocs) {
      // The scale comes from the plain split (OCS's weight_clip_threshold = 1: no clipping); the
      // grid-aware halves are then placed on that grid.
      OcsSplit plain = ocs_split(w, l.ocs->ratio, 0);
      Observer probe(l.weight->scheme(), cfg_.weight_obs);
      probe.observe(plain.weight);
      if (probe.needs_second_pass()) {
        probe.begin_second_pass();
        probe.observe(plain.weight);
      }
      QParams qp = probe.qparams();
      if (l.ocs->grid_aware) l.ocs->grid_scale = 1.0 / qp.step(l.weight->scheme(), 0);
      l.weight->set_qparams(qp);
      continue;
    }
    l.weight->observer().observe(w);
    if (l.weight->observer().needs_second_pass()) {
      l.weight->observer().begin_second_pass();
      l.weight->observer().observe(w);
    }
    l.weight->freeze();
  }
  calibrated_ = true;
  set_enabled(true, true);
}

void QuantizedModel::set_enabled(bool weights, bool activations) {
  for (auto& l : layers_)
    l.weight->mode = !weights ? TensorQuantizer::Mode::Off
                              : cfg_.dynamic_weights ? TensorQuantizer::Mode::Dynamic : TensorQuantizer::Mode::Fixed;
  for (auto& a : acts_) a.q->mode = activations ? act_mode(cfg_) : TensorQuantizer::Mode::Off;
  if (weights && !cfg_.dynamic_weights)
    for (auto& l : layers_) DEAREST_CHECK(l.weight->has_qparams(), "quantize: ", l.name, " is not calibrated");
  if (activations && !cfg_.dynamic_acts)
    for (auto& a : acts_) DEAREST_CHECK(a.q->has_qparams(), "quantize: ", a.name, " is not calibrated");
}

Tensor QuantizedModel::quantized_weight(const QuantLayer& l) const {
  NoGradGuard ng;
  auto mode = l.weight->mode;
  l.weight->mode = cfg_.dynamic_weights ? TensorQuantizer::Mode::Dynamic : TensorQuantizer::Mode::Fixed;
  Tensor w = l.float_weight().detach();
  if (l.ocs) {
    OcsSplit sp = ocs_split(w, l.ocs->ratio, l.ocs->grid_aware ? l.ocs->grid_scale : 0);
    w = ocs_fold((*l.weight)(sp.weight), sp);
  } else {
    w = (*l.weight)(w);
  }
  l.weight->mode = mode;
  return w;
}

Tensor QuantizedModel::rounded_up(const QuantLayer& l) const {
  DEAREST_CHECK(!l.ocs, "quantize: ", l.name, " is channel-split (OCS); its rounding lives on the split weight");
  DEAREST_CHECK(l.weight->has_qparams(), "quantize: ", l.name, " has no frozen qparams (dynamic or uncalibrated)");
  const Tensor w = l.float_weight().detach();
  const QuantScheme& s = l.weight->scheme();
  Tensor v = scaled_value(w, s, l.weight->qparams());
  Tensor out = Tensor::empty(w.shape(), DType::U8);
  const float* vd = v.data<float>();
  const uint8_t* up = l.weight->up_mask.defined() ? l.weight->up_mask.contiguous().data<uint8_t>() : nullptr;
  uint8_t* o = out.data<uint8_t>();
  for (int64_t i = 0; i < w.numel(); ++i) o[i] = uint8_t(round_element(s.rounding, vd[i], up ? up[i] : 0) > vd[i]);
  return out;
}

Tensor QuantizedModel::integer_weight(const QuantLayer& l) const {
  DEAREST_CHECK(!l.ocs, "quantize: ", l.name, " is channel-split (OCS); its integers live on the split weight");
  DEAREST_CHECK(l.weight->has_qparams(), "quantize: ", l.name, " has no frozen qparams (dynamic or uncalibrated)");
  return fake_quantize_raw(l.float_weight().detach(), l.weight->scheme(), l.weight->qparams(), l.weight->up_mask, true).q;
}

}  // namespace dearest::quant
