// oneDNN pooling (f32): max (training workspace kept for backward) and average. The input's layout
// is kept (a blocked activation stays blocked).
#pragma once
#include "tensor/ops/nn_params.h"
#include "tensor/tensor.h"

namespace dearest::dnnlk {

// Whether oneDNN computes exactly PyTorch's windows and divisors for these parameters.
bool pool_supported(const Pool2dParams& p, bool is_max);
// workspace: an opaque tensor the backward needs (max only).
Tensor pool2d_forward(const Tensor& x, const Pool2dParams& p, bool is_max, Tensor* workspace);
Tensor pool2d_backward(const Tensor& gy, const Tensor& x, const Tensor& workspace, const Pool2dParams& p,
                       bool is_max);

}  // namespace dearest::dnnlk
