// Softmax and log-softmax along one dim (oneDNN forward for f32, reference loops otherwise; the
// backward is the reference loop, which is memory-bound and tiny next to a network's convs).
#pragma once
#include "tensor/tensor.h"

namespace dearest::raw {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// gx from the forward output y: softmax y*(gy - sum(gy*y)); log-softmax gy - exp(y)*sum(gy).
Tensor softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log);

}  // namespace dearest::raw
