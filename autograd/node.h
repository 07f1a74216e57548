// The recorded graph. Each differentiable op that sees an input requiring grad creates one Node
// for its (single) differentiable output: the node holds the op's backward, the edges to the
// nodes of its inputs (in input order) and a sequence number. Leaves end in AccumulateGrad sinks.
// Parents are kept in vectors, never in pointer-keyed sets, so the backward order (by decreasing
// sequence number) and the order gradients are summed in are the same in every run.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/tensor.h"

namespace dearest {

struct Node {
  virtual ~Node() = default;
  // Gradients for each input (undefined = no gradient) given the gradient of the output.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  virtual void release() {}  // frees what the backward saved

  std::string name;
  uint64_t seq_nr = 0;
  std::vector<std::shared_ptr<Node>> next;  // per input; null where that input needs no gradient
  std::vector<Shape> input_shapes;          // to check every gradient's shape
  std::vector<std::weak_ptr<TensorImpl>> retained;        // outputs that asked for retain_grad()
  std::vector<std::function<void(const Tensor&)>> hooks;  // called with the output's gradient
  bool released = false;
};

// The sink of a leaf tensor: adds the incoming gradient into leaf.grad (out of place).
struct AccumulateGrad : Node {
  std::weak_ptr<TensorImpl> leaf;
  std::vector<Tensor> apply(const Tensor& grad_output) override;
};

// A tensor kept for the backward. It is stored detached (no reference back into the graph) with
// its storage version, and using it after an in-place change raises an error naming the op.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t);  // NOLINT: implicit, so lambdas can capture saved tensors directly
  const Tensor& get() const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Makes `out` the result of op `name` over `inputs`: when grad mode is on and an input requires
// grad, a node with `backward` is recorded. Returns the tensor to hand to the caller (a fresh
// handle, so an op that returns an input unchanged never rewrites that input's history).
Tensor record(const char* name, const Tensor& out, const std::vector<Tensor>& inputs, BackwardFn backward);
bool any_requires_grad(const std::vector<Tensor>& inputs);

}  // namespace dearest
