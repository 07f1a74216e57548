// oneDNN batch normalisation (f32) with scale and shift, optionally fused with the ReLU that
// follows it (legal in training: the ReLU mask goes to a workspace the backward reads). The data
// layout is the input's (blocked activations stay blocked; oneDNN's NCHW kernel is slow).
#pragma once
#include "tensor/tensor.h"

namespace dearest::dnnlk {

struct BatchNormOut {
  Tensor y, mean, var, workspace;  // mean/var: the batch's, biased (training only)
};

// training: normalise with batch statistics; else with the given mean/var.
BatchNormOut batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                const Tensor& var, bool training, double eps, bool relu);
void batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& var, const Tensor& workspace, bool training, double eps,
                         bool relu, Tensor& gx, Tensor& ggamma, Tensor& gbeta);

}  // namespace dearest::dnnlk
