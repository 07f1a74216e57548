#include "nn/module.h"

#include <sstream>

namespace dearest::nn {

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << what << " (" << v.size() << "):";
    for (size_t i = 0; i < v.size() && i < 12; ++i) os << " " << v[i];
    if (v.size() > 12) os << " ...";
    os << "; ";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("shape mismatch", mismatched);
  list("renamed", renamed);
  std::string s = os.str();
  return s.empty() ? "all keys matched" : s.substr(0, s.size() - 2);
}

Tensor Module::operator()(const Tensor& x) {
  Tensor y = forward(input_tf_ ? input_tf_(x) : x);
  if (output_tf_) y = output_tf_(y);
  for (auto& h : hooks_) h(*this, y);
  return y;
}

void Module::clear_transforms() {
  input_tf_ = nullptr;
  output_tf_ = nullptr;
  for (auto& [n, c] : children_) c->clear_transforms();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  if (t.defined() && is_floating(t.dtype()) && t.is_leaf()) t.set_requires_grad(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

Tensor& Module::param(const std::string& name) {
  for (auto& [n, t] : params_)
    if (n == name) return t;
  fail(type_, ": no parameter \"", name, "\"");
}

Tensor& Module::buffer(const std::string& name) {
  for (auto& [n, t] : buffers_)
    if (n == name) return t;
  fail(type_, ": no buffer \"", name, "\"");
}

void Module::collect(const std::string& prefix, StateDict& out, bool params, bool buffers, bool trainable_only) const {
  if (params)
    for (const auto& [n, t] : params_)
      if (t.defined() && (!trainable_only || t.requires_grad())) out.emplace_back(prefix + n, t);
  if (buffers)
    for (const auto& [n, t] : buffers_)
      if (t.defined()) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out, params, buffers, trainable_only);
}

StateDict Module::named_parameters(bool trainable_only) const {
  StateDict out;
  collect("", out, true, false, trainable_only);
  return out;
}

StateDict Module::named_buffers() const {
  StateDict out;
  collect("", out, false, true, false);
  return out;
}

StateDict Module::state_dict() const {
  StateDict out;
  collect("", out, true, true, false);
  return out;
}

std::vector<Tensor> Module::parameters(bool trainable_only) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(trainable_only)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out{{prefix, this}};
  for (auto& [n, c] : children_) {
    auto sub = c->named_modules(prefix.empty() ? n : prefix + "." + n);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

Module* Module::find(const std::string& name) {
  if (name.empty()) return this;
  const size_t dot = name.find('.');
  const std::string head = name.substr(0, dot);
  for (auto& [n, c] : children_)
    if (n == head) return dot == std::string::npos ? c.get() : c->find(name.substr(dot + 1));
  return nullptr;
}

LoadReport Module::load_state_dict(const StateDict& sd_in, bool strict,
                                   const std::vector<std::pair<std::string, std::string>>& aliases) {
  LoadReport rep;
  StateDict mine = state_dict();
  auto lookup = [&](const std::string& name) -> int64_t {
    for (size_t i = 0; i < mine.size(); ++i)
      if (mine[i].first == name) return int64_t(i);
    return -1;
  };
  std::vector<bool> seen(mine.size(), false);
  std::vector<std::pair<size_t, Tensor>> copies;
  for (const auto& [name_in, value] : sd_in) {
    std::string name = name_in;
    if (lookup(name) < 0)
      for (const auto& [from, to] : aliases) {
        const size_t at = name.find(from);
        if (at == std::string::npos) continue;
        std::string alt = name.substr(0, at) + to + name.substr(at + from.size());
        if (lookup(alt) >= 0) {
          rep.renamed.push_back(name + " -> " + alt);
          name = alt;
          break;
        }
      }
    const int64_t idx = lookup(name);
    if (idx < 0) {
      rep.unexpected.push_back(name_in);
      continue;
    }
    seen[size_t(idx)] = true;
    const Tensor& t = mine[size_t(idx)].second;
    if (t.shape() != value.shape()) {
      rep.mismatched.push_back(name + ": file " + shape_str(value.shape()) + " vs module " + shape_str(t.shape()));
      continue;
    }
    copies.emplace_back(size_t(idx), value);
  }
  for (size_t i = 0; i < mine.size(); ++i)
    if (!seen[i]) rep.missing.push_back(mine[i].first);
  DEAREST_CHECK(!strict || rep.ok(), "load_state_dict: ", rep.str());
  NoGradGuard ng;
  for (auto& [i, v] : copies) mine[i].second.copy_(v);
  return rep;
}

void Module::set_trainable(bool on, const std::string& prefix) {
  for (auto& [n, t] : named_parameters())
    if (n.rfind(prefix, 0) == 0 && is_floating(t.dtype())) {
      Tensor h = t;
      h.set_requires_grad(on);
    }
}

void Module::to(DType dtype) {
  DEAREST_CHECK(is_floating(dtype), "Module::to: only floating dtypes, got ", dtype_name(dtype));
  for (auto& [n, t] : params_)
    if (t.defined() && is_floating(t.dtype()) && t.dtype() != dtype) {
      const bool rg = t.requires_grad();
      t = t.detach().to(dtype);
      t.set_requires_grad(rg);
    }
  for (auto& [n, t] : buffers_)
    if (t.defined() && is_floating(t.dtype())) t = t.to(dtype);
  for (auto& [n, c] : children_) c->to(dtype);
}

std::shared_ptr<Capture> capture(Module& model, const std::string& name, bool with_grad) {
  Module* m = model.find(name);
  DEAREST_CHECK(m != nullptr, "capture: the model has no module named \"", name, "\"");
  auto cap = std::make_shared<Capture>();
  m->add_forward_hook([cap, with_grad](Module&, const Tensor& out) {
    cap->output = out;
    if (with_grad && out.requires_grad()) register_grad_hook(out, [cap](const Tensor& g) { cap->grad = g.plain(); });
  });
  return cap;
}

}  // namespace dearest::nn
