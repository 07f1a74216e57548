// Reverse-mode differentiation over the recorded graph.
#pragma once
#include <functional>

#include "autograd/node.h"

namespace dearest {

// Accumulates d(root)/d(leaf) into every leaf's grad. `grad` defaults to 1 for a one-element root.
// The graph's saved tensors are freed afterwards unless retain_graph is set.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

// Asks a non-leaf tensor to keep its gradient in .grad() after backward.
void retain_grad(const Tensor& t);
// Calls `hook` with the gradient of `t` each time a backward passes through it.
void register_grad_hook(const Tensor& t, std::function<void(const Tensor&)> hook);

}  // namespace dearest
