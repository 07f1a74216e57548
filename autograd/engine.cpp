#include "autograd/engine.h"

#include <atomic>
#include <queue>
#include <unordered_map>

#include "tensor/ops/elementwise.h"

namespace dearest {

namespace {
std::atomic<uint64_t> g_seq{0};

// Sum of two gradients; either may be blocked (oneDNN layouts), the result is in a's layout.
Tensor add_grads(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return raw::binary(raw::Binary::Add, a, b);
}

std::shared_ptr<Node> edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  AutogradMeta& m = t.autograd_meta();
  if (m.grad_fn) return m.grad_fn;
  auto acc = m.grad_accumulator.lock();
  if (!acc) {
    auto a = std::make_shared<AccumulateGrad>();
    a->name = "AccumulateGrad";
    a->leaf = t.impl_ptr();
    a->input_shapes = {};
    acc = a;
    m.grad_accumulator = acc;
  }
  return acc;
}

struct FunctionNode : Node {
  BackwardFn fn;
  std::vector<Tensor> apply(const Tensor& g) override { return fn(g); }
  void release() override { fn = nullptr; }
};
}  // namespace

std::vector<Tensor> AccumulateGrad::apply(const Tensor& g_in) {
  auto impl = leaf.lock();
  if (!impl) return {};  // the leaf is gone: nobody can read its gradient
  Tensor t(impl);
  Tensor g = g_in.plain();
  DEAREST_CHECK(g.shape() == t.shape(), "backward: gradient ", shape_str(g.shape()), " for a leaf of shape ",
                shape_str(t.shape()));
  DEAREST_CHECK(g.dtype() == t.dtype(), "backward: gradient ", g.describe(), " for a leaf ", t.describe());
  Tensor cur = t.grad();
  t.set_grad(cur.defined() ? raw::binary(raw::Binary::Add, cur, g) : g.clone());
  return {};
}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  t_ = t.detach();
  version_ = t.version();
}

const Tensor& SavedTensor::get() const {
  DEAREST_CHECK(!t_.defined() || t_.version() == version_,
                "backward: a tensor saved for the backward (", t_.describe(),
                ") was modified in place after it was saved (version ", version_, " -> ", t_.version(), ")");
  return t_;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(const char* name, const Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward) {
  Tensor result = out.detach();  // a fresh handle over the same bytes
  if (!grad_enabled() || !any_requires_grad(inputs)) return result;
  auto node = std::make_shared<FunctionNode>();
  node->name = name;
  node->seq_nr = g_seq++;
  node->fn = std::move(backward);
  for (const Tensor& t : inputs) {
    node->next.push_back(edge_of(t));
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  result.autograd_meta().grad_fn = node;
  return result;
}

void retain_grad(const Tensor& t) {
  DEAREST_CHECK(t.requires_grad(), "retain_grad: tensor does not require grad");
  if (t.is_leaf()) return;  // leaves keep their gradient anyway
  t.autograd_meta().retains_grad = true;
  t.grad_fn()->retained.push_back(t.impl_ptr());
}

void register_grad_hook(const Tensor& t, std::function<void(const Tensor&)> hook) {
  DEAREST_CHECK(t.requires_grad(), "register_grad_hook: tensor does not require grad");
  std::shared_ptr<Node> n = t.is_leaf() ? edge_of(t) : t.grad_fn();
  n->hooks.push_back(std::move(hook));
}

void backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  DEAREST_CHECK(root.defined() && root.requires_grad(),
                "backward: the tensor does not require grad (no input of the computation had requires_grad set)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    DEAREST_CHECK(root.numel() == 1, "backward: a gradient must be given for a non-scalar output of shape ",
                  shape_str(root.shape()));
    grad = Tensor::ones(root.shape(), root.dtype());
  }
  DEAREST_CHECK(grad.shape() == root.shape(), "backward: gradient ", shape_str(grad.shape()), " for an output of shape ",
                shape_str(root.shape()));
  std::shared_ptr<Node> start = edge_of(root);

  // Count, for every node reachable from the root, how many edges point at it.
  std::unordered_map<Node*, int> deps;  // looked up only, never iterated
  std::vector<Node*> stack{start.get()};
  deps[start.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& c : n->next) {
      if (!c) continue;
      auto it = deps.find(c.get());
      if (it == deps.end()) {
        deps[c.get()] = 1;
        stack.push_back(c.get());
      } else {
        ++it->second;
      }
    }
  }

  auto later_first = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) { return a->seq_nr < b->seq_nr; };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(later_first)> ready(later_first);
  std::unordered_map<Node*, Tensor> buffer;
  buffer[start.get()] = grad;
  ready.push(start);
  while (!ready.empty()) {
    std::shared_ptr<Node> n = ready.top();
    ready.pop();
    Tensor g;
    if (auto it = buffer.find(n.get()); it != buffer.end()) {
      g = it->second;
      buffer.erase(it);
    }
    std::vector<Tensor> grads;
    if (g.defined()) {
      for (auto& h : n->hooks) h(g);
      for (auto& w : n->retained)
        if (auto impl = w.lock()) Tensor(impl).set_grad(g.plain());
      DEAREST_CHECK(!n->released, "backward: the graph through ", n->name,
                    " was already freed by an earlier backward; pass retain_graph=true to backward twice");
      grads = n->apply(g);
      DEAREST_CHECK(grads.empty() || grads.size() == n->next.size(), "backward: ", n->name, " returned ", grads.size(),
                    " gradients for ", n->next.size(), " inputs");
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      const auto& c = n->next[i];
      if (!c) continue;
      if (i < grads.size() && grads[i].defined()) {
        DEAREST_CHECK(grads[i].shape() == n->input_shapes[i], "backward: ", n->name, " produced a gradient of shape ",
                      shape_str(grads[i].shape()), " for input ", i, " of shape ", shape_str(n->input_shapes[i]));
        Tensor& slot = buffer[c.get()];
        slot = add_grads(slot, grads[i]);
      }
      if (--deps[c.get()] == 0) ready.push(c);
    }
    if (!retain_graph && !dynamic_cast<AccumulateGrad*>(n.get())) {
      n->release();
      n->released = true;
    }
  }
}

}  // namespace dearest
