// Reductions over any set of dims (empty = all), with keepdim. Floating sums accumulate in double
// and integer sums in int64; each output is reduced by one thread in a fixed order (a whole-tensor
// reduction is split in fixed blocks whose partials are added in block order), so results do not
// depend on the thread count.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace dearest::raw {

enum class Reduce { Sum, Mean, Max, Min };

Tensor reduce(Reduce op, const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
inline Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(Reduce::Sum, x, dims, keepdim);
}
inline Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  return reduce(Reduce::Mean, x, dims, keepdim);
}
// Variance with `correction` subtracted from the count (1 = unbiased, 0 = population).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);
// Index (i32) of the first maximum / minimum along `dim`; NaN counts as the maximum.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums a broadcast result back to `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);
// The shape a reduction over `dims` produces (with keepdim), and which dims are reduced.
Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim, const char* op,
                    std::vector<bool>* reduced = nullptr);

}  // namespace dearest::raw
