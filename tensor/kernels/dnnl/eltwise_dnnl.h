// oneDNN eltwise and binary primitives behind raw::unary / raw::binary (f32, plain or blocked).
#pragma once
#include "tensor/ops/elementwise.h"

namespace dearest::dnnlk {

bool eltwise_supported(raw::Unary op);
Tensor eltwise_forward(raw::Unary op, const Tensor& x);       // output keeps x's layout
Tensor relu_backward(const Tensor& gy, const Tensor& y);       // layout of y
Tensor binary_forward(raw::Binary op, const Tensor& a, const Tensor& b);  // same shapes; layout of a

}  // namespace dearest::dnnlk
