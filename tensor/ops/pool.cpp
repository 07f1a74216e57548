#include "tensor/ops/pool.h"

#include "tensor/kernels/dnnl/pool_dnnl.h"
#include "tensor/kernels/ref/ref_kernels.h"
#include "tensor/runtime.h"

namespace dearest::raw {

namespace {

ref::PoolGeom geometry(const Tensor& x, const Pool2dParams& p, const char* op) {
  DEAREST_CHECK(x.dim() == 4, op, ": input must be 4-d NCHW, got ", shape_str(x.shape()));
  DEAREST_CHECK(is_floating(x.dtype()), op, ": needs a floating tensor, got ", x.describe());
  DEAREST_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1, op, ": invalid ", p.str());
  DEAREST_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, op,
                ": padding must be at most half the kernel, got ", p.str());
  const int64_t oh = pool_out_size(x.size(2), p.kernel_h, p.stride_h, p.pad_h, p.ceil_mode);
  const int64_t ow = pool_out_size(x.size(3), p.kernel_w, p.stride_w, p.pad_w, p.ceil_mode);
  DEAREST_CHECK(oh >= 1 && ow >= 1, op, ": window ", p.str(), " does not fit input ", shape_str(x.shape()));
  return {x.size(0), x.size(1), x.size(2), x.size(3), oh, ow};
}

bool use_fast(const Tensor& x) { return backend() == Backend::Fast && x.dtype() == DType::F32 && x.numel() > 0; }

void check_grad(const Tensor& gy, const ref::PoolGeom& g, const char* op) {
  DEAREST_CHECK(gy.shape() == Shape({g.N, g.C, g.OH, g.OW}), op, ": gradient ", shape_str(gy.shape()),
                " does not match the output shape ", shape_str({g.N, g.C, g.OH, g.OW}));
}

// Runs the reference kernel `f(T*...)` over contiguous copies for f32 or f64.
template <typename F> void on_float(DType t, F&& f) {
  dispatch_dtype(t, [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) f(T{});
  });
}

}  // namespace

MaxPoolResult max_pool2d(const Tensor& x, const Pool2dParams& p) {
  ref::PoolGeom g = geometry(x, p, "max_pool2d");
  MaxPoolResult r;
  if (use_fast(x) && dnnlk::pool_supported(p, true)) {
    r.y = dnnlk::pool2d_forward(x, p, true, &r.indices);
    return r;
  }
  Tensor xc = x.contiguous();
  r.y = Tensor::empty({g.N, g.C, g.OH, g.OW}, x.dtype());
  r.indices = Tensor::empty({g.N, g.C, g.OH, g.OW}, DType::I32);
  on_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    ref::max_pool2d_forward<T>(xc.data<T>(), r.y.data<T>(), r.indices.data<int32_t>(), g, p);
  });
  return r;
}

Tensor max_pool2d_backward(const Tensor& gy, const Tensor& x, const Tensor& indices, const Pool2dParams& p) {
  ref::PoolGeom g = geometry(x, p, "max_pool2d_backward");
  check_grad(gy, g, "max_pool2d_backward");
  if (indices.is_blocked()) return dnnlk::pool2d_backward(gy, x, indices, p, true);
  DEAREST_CHECK(indices.dtype() == DType::I32 && indices.shape() == gy.shape(),
                "max_pool2d_backward: indices ", indices.describe(), " do not match gradient ", gy.describe());
  Tensor gyc = gy.contiguous(), ic = indices.contiguous();
  Tensor gx = Tensor::empty(x.shape(), x.dtype());
  on_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    ref::max_pool2d_backward<T>(gyc.data<T>(), ic.data<int32_t>(), gx.data<T>(), g);
  });
  return gx;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  ref::PoolGeom g = geometry(x, p, "avg_pool2d");
  if (use_fast(x) && dnnlk::pool_supported(p, false)) return dnnlk::pool2d_forward(x, p, false, nullptr);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({g.N, g.C, g.OH, g.OW}, x.dtype());
  on_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    ref::avg_pool2d_forward<T>(xc.data<T>(), y.data<T>(), g, p);
  });
  return y;
}

Tensor avg_pool2d_backward(const Tensor& gy, const Tensor& x, const Pool2dParams& p) {
  ref::PoolGeom g = geometry(x, p, "avg_pool2d_backward");
  check_grad(gy, g, "avg_pool2d_backward");
  if (use_fast(x) && dnnlk::pool_supported(p, false)) return dnnlk::pool2d_backward(gy, x, Tensor(), p, false);
  Tensor gyc = gy.contiguous();
  Tensor gx = Tensor::empty(x.shape(), x.dtype());
  on_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    ref::avg_pool2d_backward<T>(gyc.data<T>(), gx.data<T>(), g, p);
  });
  return gx;
}

namespace {
// Adaptive pooling with output sizes dividing the input is a plain average pool (and so oneDNN's).
bool divisible(const Tensor& x, int64_t oh, int64_t ow) { return x.size(2) % oh == 0 && x.size(3) % ow == 0; }
Pool2dParams as_pool(const Tensor& x, int64_t oh, int64_t ow) {
  Pool2dParams p;
  p.kernel_h = p.stride_h = x.size(2) / oh;
  p.kernel_w = p.stride_w = x.size(3) / ow;
  return p;
}
ref::PoolGeom adaptive_geometry(const Tensor& x, int64_t oh, int64_t ow, const char* op) {
  DEAREST_CHECK(x.dim() == 4, op, ": input must be 4-d NCHW, got ", shape_str(x.shape()));
  DEAREST_CHECK(is_floating(x.dtype()), op, ": needs a floating tensor, got ", x.describe());
  DEAREST_CHECK(oh >= 1 && ow >= 1 && x.size(2) >= 1 && x.size(3) >= 1, op, ": output ", oh, "x", ow,
                " for input ", shape_str(x.shape()));
  return {x.size(0), x.size(1), x.size(2), x.size(3), oh, ow};
}
}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t oh, int64_t ow) {
  ref::PoolGeom g = adaptive_geometry(x, oh, ow, "adaptive_avg_pool2d");
  if (use_fast(x) && divisible(x, oh, ow)) return dnnlk::pool2d_forward(x, as_pool(x, oh, ow), false, nullptr);
  Tensor xc = x.contiguous();
  Tensor y = Tensor::empty({g.N, g.C, oh, ow}, x.dtype());
  on_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    ref::adaptive_avg_pool2d_forward<T>(xc.data<T>(), y.data<T>(), g);
  });
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& gy, const Tensor& x) {
  DEAREST_CHECK(gy.dim() == 4, "adaptive_avg_pool2d_backward: gradient must be 4-d, got ", shape_str(gy.shape()));
  const int64_t oh = gy.size(2), ow = gy.size(3);
  ref::PoolGeom g = adaptive_geometry(x, oh, ow, "adaptive_avg_pool2d_backward");
  check_grad(gy, g, "adaptive_avg_pool2d_backward");
  if (use_fast(x) && divisible(x, oh, ow)) return dnnlk::pool2d_backward(gy, x, Tensor(), as_pool(x, oh, ow), false);
  Tensor gyc = gy.contiguous();
  Tensor gx = Tensor::empty(x.shape(), x.dtype());
  on_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    ref::adaptive_avg_pool2d_backward<T>(gyc.data<T>(), gx.data<T>(), g);
  });
  return gx;
}

}  // namespace dearest::raw
