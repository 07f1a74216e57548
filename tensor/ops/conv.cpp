#include "tensor/ops/conv.h"

#include "tensor/kernels/dnnl/conv_dnnl.h"
#include "tensor/kernels/ref/ref_kernels.h"
#include "tensor/runtime.h"

namespace dearest::raw {

namespace {

ref::ConvGeom geometry(const Shape& x, const Shape& w, const Conv2dParams& p, const char* op) {
  DEAREST_CHECK(x.size() == 4, op, ": input must be 4-d NCHW, got ", shape_str(x));
  DEAREST_CHECK(w.size() == 4, op, ": weight must be 4-d OIHW, got ", shape_str(w));
  DEAREST_CHECK(p.groups >= 1 && x[1] % p.groups == 0 && w[0] % p.groups == 0, op, ": groups=", p.groups,
                " must divide input channels ", x[1], " and output channels ", w[0]);
  DEAREST_CHECK(w[1] * p.groups == x[1], op, ": input ", shape_str(x), " has ", x[1], " channels but weight ",
                shape_str(w), " expects ", w[1] * p.groups, " (groups=", p.groups, ")");
  DEAREST_CHECK(p.stride_h >= 1 && p.stride_w >= 1 && p.dil_h >= 1 && p.dil_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0,
                op, ": invalid parameters ", p.str());
  const int64_t oh = conv_out_size(x[2], w[2], p.stride_h, p.pad_h, p.dil_h);
  const int64_t ow = conv_out_size(x[3], w[3], p.stride_w, p.pad_w, p.dil_w);
  DEAREST_CHECK(oh >= 1 && ow >= 1, op, ": kernel ", shape_str(w), " with ", p.str(), " does not fit input ",
                shape_str(x));
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], oh, ow};
}

bool use_fast(DType t) { return backend() == Backend::Fast && t == DType::F32; }

void check_dtypes(const Tensor& a, const Tensor& b, const char* op) {
  DEAREST_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.describe(), " and ", b.describe());
  DEAREST_CHECK(is_floating(a.dtype()), op, ": needs floating tensors, got ", a.describe());
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  ref::ConvGeom g = geometry(x.shape(), w.shape(), p, "conv2d");
  check_dtypes(x, w, "conv2d");
  if (bias.defined()) {
    check_dtypes(x, bias, "conv2d");
    DEAREST_CHECK(bias.dim() == 1 && bias.size(0) == g.O, "conv2d: bias ", shape_str(bias.shape()), " does not match ",
                  g.O, " output channels");
  }
  if (g.N == 0) return Tensor::empty({0, g.O, g.OH, g.OW}, x.dtype());
  if (use_fast(x.dtype())) return dnnlk::conv2d_forward(x, w, bias, p);
  Tensor xc = x.contiguous(), wc = w.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({g.N, g.O, g.OH, g.OW}, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>)
      ref::conv2d_forward<T>(xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr, y.data<T>(), g, p);
  });
  return y;
}

bool conv2d_runs_winograd(const Shape& x_shape, const Shape& w_shape, bool with_bias, const Conv2dParams& p) {
  ref::ConvGeom g = geometry(x_shape, w_shape, p, "conv2d_runs_winograd");
  if (g.N == 0 || backend() != Backend::Fast || conv_algorithm() != ConvAlgorithm::Winograd) return false;
  return dnnlk::conv2d_runs_winograd(x_shape, w_shape, with_bias, p);
}

Tensor conv2d_input_layout(const Tensor& x, const Shape& w_shape, bool with_bias, const Conv2dParams& p) {
  ref::ConvGeom g = geometry(x.shape(), w_shape, p, "conv2d_input_layout");
  if (g.N == 0 || !use_fast(x.dtype())) return x;
  return dnnlk::conv2d_input_layout(x, w_shape, with_bias, p);
}

Tensor conv2d_backward_data(const Tensor& gy, const Tensor& w, const Shape& x_shape, bool with_bias,
                            const Conv2dParams& p) {
  ref::ConvGeom g = geometry(x_shape, w.shape(), p, "conv2d_backward_data");
  check_dtypes(gy, w, "conv2d_backward_data");
  DEAREST_CHECK(gy.shape() == Shape({g.N, g.O, g.OH, g.OW}), "conv2d_backward_data: gradient ", shape_str(gy.shape()),
                " does not match the output shape ", shape_str({g.N, g.O, g.OH, g.OW}));
  if (g.N == 0) return Tensor::zeros(x_shape, gy.dtype());
  if (use_fast(gy.dtype())) return dnnlk::conv2d_backward_data(gy, w, x_shape, with_bias, p);
  Tensor gyc = gy.contiguous(), wc = w.contiguous();
  Tensor gx = Tensor::empty(x_shape, gy.dtype());
  dispatch_dtype(gy.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) ref::conv2d_backward_data<T>(gyc.data<T>(), wc.data<T>(), gx.data<T>(), g, p);
  });
  return gx;
}

ConvWeightGrads conv2d_backward_weights(const Tensor& gy, const Tensor& x, const Shape& w_shape, bool with_bias,
                                        const Conv2dParams& p) {
  ref::ConvGeom g = geometry(x.shape(), w_shape, p, "conv2d_backward_weights");
  check_dtypes(gy, x, "conv2d_backward_weights");
  DEAREST_CHECK(gy.shape() == Shape({g.N, g.O, g.OH, g.OW}), "conv2d_backward_weights: gradient ",
                shape_str(gy.shape()), " does not match the output shape ", shape_str({g.N, g.O, g.OH, g.OW}));
  ConvWeightGrads r;
  if (g.N == 0) {
    r.w = Tensor::zeros(w_shape, x.dtype());
    if (with_bias) r.bias = Tensor::zeros({g.O}, x.dtype());
    return r;
  }
  if (use_fast(x.dtype())) {
    dnnlk::conv2d_backward_weights(gy, x, w_shape, with_bias, p, r.w, r.bias);
    return r;
  }
  Tensor gyc = gy.contiguous(), xc = x.contiguous();
  r.w = Tensor::empty(w_shape, x.dtype());
  if (with_bias) r.bias = Tensor::empty({g.O}, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>)
      ref::conv2d_backward_weights<T>(gyc.data<T>(), xc.data<T>(), r.w.data<T>(),
                                      with_bias ? r.bias.data<T>() : nullptr, g, p);
  });
  return r;
}

}  // namespace dearest::raw
