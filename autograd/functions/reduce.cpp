// Reductions: forward (raw kernel) and backward, side by side. A reduced gradient is broadcast
// back over the reduced dims.
#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace dearest {

namespace {
using raw::Binary;

// The gradient of a reduction, reshaped to keepdim form and broadcast to the input's shape.
Tensor spread(const Tensor& g, const Shape& x_shape, const std::vector<int64_t>& dims) {
  Shape keep = raw::reduced_shape(x_shape, dims, true, "backward");
  return g.plain().reshape(keep).expand(x_shape);
}

int64_t reduced_count(const Shape& s, const std::vector<int64_t>& dims) {
  std::vector<bool> red;
  raw::reduced_shape(s, dims, false, "reduce", &red);
  int64_t n = 1;
  for (size_t i = 0; i < s.size(); ++i)
    if (red[i]) n *= s[i];
  return n;
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return record("sum", raw::sum(x, dims, keepdim), {x}, [xs = x.shape(), dims](const Tensor& g) {
    return std::vector<Tensor>{spread(g, xs, dims)};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return record("mean", raw::mean(x, dims, keepdim), {x}, [xs = x.shape(), dims](const Tensor& g) {
    const double n = double(reduced_count(xs, dims));
    return std::vector<Tensor>{raw::binary(Binary::Div, spread(g, xs, dims), n)};
  });
}

namespace {
Tensor extreme(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max) {
  Tensor y = raw::reduce(is_max ? raw::Reduce::Max : raw::Reduce::Min, x, dims, keepdim);
  return record(is_max ? "amax" : "amin", y, {x}, [sx = SavedTensor(x), sy = SavedTensor(y), dims](const Tensor& g) {
    const Tensor& xv = sx.get();
    Tensor yk = spread(sy.get(), xv.shape(), dims);
    Tensor mask = raw::compare(raw::Compare::Eq, xv, yk).to(xv.dtype());
    Tensor count = raw::sum(mask, dims, true);
    return std::vector<Tensor>{
        raw::binary(Binary::Div, raw::binary(Binary::Mul, spread(g, xv.shape(), dims), mask), count)};
  });
}
}  // namespace

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return extreme(x, dims, keepdim, true); }
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return extreme(x, dims, keepdim, false); }

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  return record("var", raw::var(x, dims, correction, keepdim), {x},
                [sx = SavedTensor(x), dims, correction](const Tensor& g) {
                  const Tensor& xv = sx.get();
                  const double n = double(reduced_count(xv.shape(), dims) - correction);
                  Tensor centered = raw::binary(Binary::Sub, xv, raw::mean(xv, dims, true));
                  Tensor d = raw::binary(Binary::Mul, centered, 2.0 / n);
                  return std::vector<Tensor>{raw::binary(Binary::Mul, spread(g, xv.shape(), dims), d)};
                });
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return raw::argmax(x, dim, keepdim); }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return raw::argmin(x, dim, keepdim); }

}  // namespace dearest
