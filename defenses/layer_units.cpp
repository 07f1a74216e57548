#include "defenses/layer_units.h"

#include "autograd/grad_mode.h"
#include "nn/layers.h"

namespace dearest::defenses {

namespace {

std::string parent_of(const std::string& name) {
  const size_t d = name.rfind('.');
  return d == std::string::npos ? std::string() : name.substr(0, d);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

Tensor bias_of(nn::Module& m) {
  for (auto& [k, t] : m.named_parameters())
    if (k == "bias") return t;
  return Tensor();
}

std::shared_ptr<quant::TensorQuantizer> input_quantizer(quant::QuantizedModel& q, const std::string& layer) {
  for (auto& l : q.layers())
    if (l.name == layer) return l.input;
  return nullptr;
}

UnitStep module_step(nn::Module& model, const std::string& name) {
  nn::Module* m = model.find(name);
  DEAREST_CHECK(m, "efrap: the model has no module ", name);
  UnitStep s;
  s.module = m;
  s.name = name;
  return s;
}

UnitStep quantize_step(quant::QuantizedModel& q, const std::string& consumer) {
  UnitStep s;
  s.kind = UnitStep::Kind::Quantize;
  s.quant = input_quantizer(q, consumer);
  s.name = consumer + ":input";
  return s;
}

// A quantizer the model puts on a module's output (the residual add's inputs of the PyTorch and
// TFLite presets: "layer1.0.bn2:output"); none under MQBench, whose units end at the BN.
void output_quantize_step(quant::QuantizedModel& q, const std::string& module, LayerUnit& u) {
  for (const auto& a : q.activation_quantizers())
    if (a.name == module + ":output") {
      UnitStep s;
      s.kind = UnitStep::Kind::Quantize;
      s.quant = a.q;
      s.name = a.name;
      u.after.push_back(s);
    }
}

void resnet_units(quant::QuantizedModel& q, std::vector<LayerUnit>& units) {
  nn::Module& m = q.model();
  const bool maxpool = m.find("maxpool") != nullptr;
  for (auto& u : units) {
    const std::string& n = u.layer->name;
    const std::string block = parent_of(n);
    if (n == "conv1") {
      u.after.push_back(module_step(m, "bn1"));
      u.after.push_back({UnitStep::Kind::Relu, nullptr, nullptr, "relu"});
      if (maxpool) u.after.push_back(module_step(m, "maxpool"));
      u.after.push_back(quantize_step(q, "layer1.0.conv1"));
    } else if (ends_with(n, ".conv1")) {
      u.after.push_back(module_step(m, block + ".bn1"));
      u.after.push_back({UnitStep::Kind::Relu, nullptr, nullptr, "relu"});
      u.after.push_back(quantize_step(q, block + ".conv2"));
    } else if (ends_with(n, ".conv2")) {
      u.after.push_back(module_step(m, block + ".bn2"));
      output_quantize_step(q, block + ".bn2", u);
    } else if (ends_with(n, ".downsample.0")) {
      u.after.push_back(module_step(m, block + ".1"));
      output_quantize_step(q, block, u);  // the quantizer sits on the downsample Sequential's output
    } else if (n != "fc") {
      fail("efrap: no unit for the ResNet layer ", n);
    }
  }
}

// Leaves in forward order: conv/linear, then BN, activations, pooling, dropout up to the next one.
void sequential_units(quant::QuantizedModel& q, std::vector<LayerUnit>& units) {
  std::vector<std::pair<std::string, nn::Module*>> leaves;
  for (auto& [n, mm] : q.model().named_modules())
    if (mm->children().empty()) leaves.emplace_back(n, mm);
  for (auto& u : units) {
    size_t i = 0;
    while (i < leaves.size() && leaves[i].first != u.layer->name) ++i;
    DEAREST_CHECK(i < leaves.size(), "efrap: layer ", u.layer->name, " is not a leaf of the model");
    for (size_t j = i + 1; j < leaves.size(); ++j) {
      const std::string t = leaves[j].second->type();
      if (t == "Conv2d" || t == "Linear") {
        // The model flattens its features before the classifier.
        if (t == "Linear" && u.layer->is_conv) u.after.push_back({UnitStep::Kind::Flatten, nullptr, nullptr, "flatten"});
        u.after.push_back(quantize_step(q, leaves[j].first));
        break;
      }
      DEAREST_CHECK(t == "BatchNorm2d" || t == "ReLU" || t == "ReLU6" || t == "MaxPool2d" || t == "AvgPool2d" ||
                        t == "AdaptiveAvgPool2d" || t == "Dropout" || t == "Flatten" || t == "Identity" ||
                        t == "ChannelMask",
                    "efrap: no unit rule for a ", t, " (", leaves[j].first, ") after ", u.layer->name);
      u.after.push_back({UnitStep::Kind::Module, leaves[j].second, nullptr, leaves[j].first});
    }
  }
}

// Thrown once the captured layer has its input, to skip the rest of the forward pass.
struct InputCaptured {};

}  // namespace

std::string LayerUnit::describe() const {
  std::string s = layer->name;
  for (auto& st : after) {
    if (st.kind == UnitStep::Kind::Quantize && !st.quant) continue;
    s += " -> " + (st.kind == UnitStep::Kind::Quantize ? "quantize(" + st.name + ")" : st.name);
  }
  return s;
}

Tensor LayerUnit::steps(Tensor y, bool quantize) const {
  for (auto& st : after) {
    switch (st.kind) {
      case UnitStep::Kind::Module: y = st.module->forward(y); break;
      case UnitStep::Kind::Relu: y = relu(y); break;
      case UnitStep::Kind::Flatten: y = flatten(y, 1); break;
      case UnitStep::Kind::Quantize:
        if (quantize && st.quant) y = (*st.quant)(y);
        break;
    }
  }
  return y;
}

Tensor LayerUnit::forward(const Tensor& x, const Tensor& w, bool quantize) const {
  Tensor y;
  if (layer->is_conv) {
    auto* c = static_cast<nn::Conv2d*>(layer->module);
    Tensor b = c->has_bias() ? c->bias() : Tensor();
    if (b.defined() && c->bias_transform) b = c->bias_transform(b);
    y = conv2d(x, w, b, c->params);
  } else {
    auto* l = static_cast<nn::Linear*>(layer->module);
    Tensor b = bias_of(*l);
    if (b.defined() && l->bias_transform) b = l->bias_transform(b);
    y = linear(x, w, b);
  }
  return steps(y, quantize);
}

std::vector<LayerUnit> layer_units(quant::QuantizedModel& q, nn::Module& float_model) {
  std::vector<LayerUnit> units;
  for (auto& l : q.layers()) {
    LayerUnit u;
    u.layer = &l;
    u.float_layer = float_model.find(l.name);
    DEAREST_CHECK(u.float_layer, "efrap: the float model has no layer ", l.name);
    units.push_back(std::move(u));
  }
  const std::string arch = q.spec().arch;
  if (arch == "resnet18") resnet_units(q, units);
  else if (arch == "vgg16") sequential_units(q, units);
  else fail("efrap: no per-layer units for the architecture ", arch, " (resnet18 and vgg16 are known)");
  return units;
}

std::vector<Tensor> layer_inputs(nn::Module& model, nn::Module& layer, const std::vector<Tensor>& batches) {
  NoGradGuard ng;
  std::vector<Tensor> out;
  const nn::Module::TensorTransform own = layer.input_transform();
  Tensor seen;
  layer.set_input_transform([&](const Tensor& x) -> Tensor {
    seen = own ? own(x) : x;
    throw InputCaptured{};
  });
  try {
    for (auto& b : batches) {
      seen = Tensor();
      try {
        model(b);
      } catch (const InputCaptured&) {
      }
      DEAREST_CHECK(seen.defined(), "efrap: the layer was not reached by the forward pass");
      out.push_back(seen.plain().contiguous());
    }
  } catch (...) {
    layer.set_input_transform(own);
    throw;
  }
  layer.set_input_transform(own);
  return out;
}

}  // namespace dearest::defenses
