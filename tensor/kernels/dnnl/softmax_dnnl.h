// oneDNN softmax / log-softmax forward (f32, plain contiguous, any axis).
#pragma once
#include "tensor/tensor.h"

namespace dearest::dnnlk {
Tensor softmax_forward(const Tensor& x, int64_t dim, bool log);
}
