// Batch normalisation over dim 1 of [N, C, ...], training (batch statistics, running statistics
// updated in place as PyTorch does: momentum, unbiased variance) and inference (running
// statistics), optionally fused with the ReLU that follows.
#pragma once
#include "tensor/tensor.h"

namespace dearest::raw {

struct BatchNormResult {
  Tensor y;
  Tensor mean, var;   // the statistics used to normalise (the batch's biased variance in training)
  Tensor workspace;   // oneDNN's fused-ReLU mask, when relu and the fast kernel ran
};
// gamma/beta may be undefined (1 and 0); running_mean/var may be undefined in training.
BatchNormResult batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                           const Tensor& running_var, bool training, double momentum, double eps, bool relu = false);

struct BatchNormGrads {
  Tensor x, gamma, beta;
};
// y is the forward output (the ReLU mask for the reference kernel); workspace the oneDNN one.
BatchNormGrads batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const BatchNormResult& fwd, bool training, double eps, bool relu);

}  // namespace dearest::raw
