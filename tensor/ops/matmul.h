// Matrix products: matmul with batch broadcasting and linear (x W^T + b). Fast: OpenBLAS sgemm /
// dgemm. Reference: a triple loop accumulating in double.
#pragma once
#include "tensor/tensor.h"

namespace dearest::raw {

// a[..., m, k] @ b[..., k, n] -> [..., m, n]; batch dims broadcast; a 1-d operand is a row / column.
Tensor matmul(const Tensor& a, const Tensor& b);
// x[..., in] W[out, in]^T + bias[out] (bias may be undefined).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);

}  // namespace dearest::raw
