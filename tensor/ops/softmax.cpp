#include "tensor/ops/softmax.h"

#include "tensor/kernels/dnnl/softmax_dnnl.h"
#include "tensor/kernels/ref/ref_kernels.h"
#include "tensor/runtime.h"

namespace dearest::raw {

namespace {

struct Split3 {
  int64_t outer = 1, n = 1, inner = 1;
};
Split3 split_at(const Shape& s, int64_t dim) {
  Split3 r;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (i < dim) r.outer *= s[i];
    else if (i == dim) r.n = s[i];
    else r.inner *= s[i];
  }
  return r;
}

Tensor forward(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  DEAREST_CHECK(is_floating(x.dtype()), op, ": needs a floating tensor, got ", x.describe());
  DEAREST_CHECK(x.dim() >= 1, op, ": needs at least 1 dim");
  dim = normalize_dim(dim, x.dim(), op);
  if (backend() == Backend::Fast && x.dtype() == DType::F32 && x.numel() > 0) return dnnlk::softmax_forward(x, dim, log);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Split3 s = split_at(x.shape(), dim);
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) ref::softmax_forward<T>(xc.data<T>(), y.data<T>(), s.outer, s.n, s.inner, log);
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return forward(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return forward(x, dim, true); }

Tensor softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log) {
  DEAREST_CHECK(y.shape() == gy.shape() && y.dtype() == gy.dtype(), "softmax_backward: gradient ", gy.describe(),
                " does not match output ", y.describe());
  dim = normalize_dim(dim, y.dim(), "softmax_backward");
  Tensor yc = y.contiguous(), gc = gy.contiguous();
  Tensor gx = Tensor::empty(y.shape(), y.dtype());
  Split3 s = split_at(y.shape(), dim);
  dispatch_dtype(y.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>)
      ref::softmax_backward<T>(yc.data<T>(), gc.data<T>(), gx.data<T>(), s.outer, s.n, s.inner, log);
  });
  return gx;
}

}  // namespace dearest::raw
