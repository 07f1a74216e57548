// Ops that move elements without arithmetic: concatenation, constant padding, index selection,
// gather and their scatter-add adjoints. One kernel each (a plain loop is already the fast one).
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace dearest::raw {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
// pads = {last_lo, last_hi, second_last_lo, second_last_hi, ...} as torch.nn.functional.pad;
// non-negative, constant value.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0);
// x.index_select(dim, index), index a 1-d i32 tensor; every index checked against the dim size.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out = zeros(shape); out.index_add_(dim, index, src)
Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);
// out[i][j] = x[i][index[i][j]] along dim (index: i32 of x's rank, sizes <= x's off dim).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// out = zeros(shape); out.scatter_add_(dim, index, src)
Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace dearest::raw
