// Negative log-likelihood over class log-probabilities [N, C] and i32 labels [N]: the kernel under
// cross-entropy. Labels are range-checked.
#pragma once
#include "tensor/tensor.h"

namespace dearest {
// Outside raw:: so that argument-dependent lookup on it finds only the differentiable losses.
enum class Reduction { None, Mean, Sum };
}  // namespace dearest

namespace dearest::raw {

Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction);
Tensor nll_loss_backward(const Tensor& gloss, const Tensor& logp, const Tensor& target, Reduction reduction);

}  // namespace dearest::raw
