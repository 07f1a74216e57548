// Max, average and adaptive-average 2-d pooling over NCHW, forward and backward.
#pragma once
#include "tensor/ops/nn_params.h"
#include "tensor/tensor.h"

namespace dearest::raw {

struct MaxPoolResult {
  Tensor y;
  Tensor indices;  // what the backward needs: oneDNN's workspace, or i32 argmax per output (reference)
};
MaxPoolResult max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d_backward(const Tensor& gy, const Tensor& x, const Tensor& indices, const Pool2dParams& p);

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d_backward(const Tensor& gy, const Tensor& x, const Pool2dParams& p);

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor adaptive_avg_pool2d_backward(const Tensor& gy, const Tensor& x);

}  // namespace dearest::raw
