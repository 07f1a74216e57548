#include "tensor/ops/batchnorm.h"

#include "tensor/kernels/dnnl/batchnorm_dnnl.h"
#include "tensor/kernels/ref/ref_kernels.h"
#include "tensor/runtime.h"

namespace dearest::raw {

namespace {

void check_vec(const Tensor& t, int64_t C, DType dt, const char* what) {
  if (!t.defined()) return;
  DEAREST_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " has shape ", shape_str(t.shape()),
                ", expected [", C, "]");
  DEAREST_CHECK(t.dtype() == dt, "batch_norm: ", what, " is ", dtype_name(t.dtype()), ", input is ", dtype_name(dt));
}

const void* ptr_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

bool use_fast(const Tensor& x) {
  return backend() == Backend::Fast && x.dtype() == DType::F32 && x.dim() == 4 && x.numel() > 0;
}

}  // namespace

BatchNormResult batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                           const Tensor& running_var, bool training, double momentum, double eps, bool relu) {
  DEAREST_CHECK(x.dim() >= 2, "batch_norm: input must be [N, C, ...], got ", shape_str(x.shape()));
  DEAREST_CHECK(is_floating(x.dtype()), "batch_norm: needs a floating tensor, got ", x.describe());
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / std::max<int64_t>(1, N * C);
  check_vec(gamma, C, x.dtype(), "weight");
  check_vec(beta, C, x.dtype(), "bias");
  check_vec(running_mean, C, x.dtype(), "running_mean");
  check_vec(running_var, C, x.dtype(), "running_var");
  DEAREST_CHECK(training || (running_mean.defined() && running_var.defined()),
                "batch_norm: inference needs running_mean and running_var");
  DEAREST_CHECK(!training || N * HW > 1, "batch_norm: training needs more than one value per channel, got input ",
                shape_str(x.shape()));
  BatchNormResult r;
  if (use_fast(x)) {
    dnnlk::BatchNormOut o = dnnlk::batch_norm_forward(x, gamma, beta, running_mean, running_var, training, eps, relu);
    r = {o.y, o.mean, o.var, o.workspace};
  } else {
    Tensor xc = x.contiguous();
    Tensor g = gamma.defined() ? gamma.contiguous() : Tensor(), b = beta.defined() ? beta.contiguous() : Tensor();
    r.y = Tensor::empty(x.shape(), x.dtype());
    r.mean = training ? Tensor::empty({C}, x.dtype()) : running_mean.contiguous();
    r.var = training ? Tensor::empty({C}, x.dtype()) : running_var.contiguous();
    dispatch_dtype(x.dtype(), [&](auto z) {
      using T = decltype(z);
      if constexpr (std::is_floating_point_v<T>)
        ref::batch_norm_forward<T>(xc.data<T>(), static_cast<const T*>(ptr_or_null(g)),
                                   static_cast<const T*>(ptr_or_null(b)), r.y.data<T>(), r.mean.data<T>(),
                                   r.var.data<T>(), N, C, HW, eps, training, relu);
    });
  }
  if (training && running_mean.defined() && running_var.defined()) {
    // PyTorch: running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
    const double m = double(N * HW), unbias = m / (m - 1);
    Tensor rm = running_mean, rv = running_var;
    dispatch_dtype(x.dtype(), [&](auto z) {
      using T = decltype(z);
      if constexpr (std::is_floating_point_v<T>) {
        DEAREST_CHECK(rm.is_contiguous() && rv.is_contiguous(), "batch_norm: running statistics must be contiguous");
        T* pm = rm.data<T>();
        T* pv = rv.data<T>();
        const T* bm = r.mean.data<T>();
        const T* bv = r.var.data<T>();
        for (int64_t c = 0; c < C; ++c) {
          pm[c] = T((1 - momentum) * double(pm[c]) + momentum * double(bm[c]));
          pv[c] = T((1 - momentum) * double(pv[c]) + momentum * double(bv[c]) * unbias);
        }
      }
    });
    rm.bump_version();
    rv.bump_version();
  }
  return r;
}

BatchNormGrads batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const BatchNormResult& fwd, bool training, double eps, bool relu) {
  DEAREST_CHECK(gy.shape() == x.shape(), "batch_norm_backward: gradient ", shape_str(gy.shape()),
                " does not match input ", shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / std::max<int64_t>(1, N * C);
  BatchNormGrads gr;
  if (use_fast(x) && (!relu || fwd.workspace.defined())) {
    dnnlk::batch_norm_backward(gy, x, gamma, beta, fwd.mean, fwd.var, fwd.workspace, training, eps, relu, gr.x,
                               gr.gamma, gr.beta);
    return gr;
  }
  DEAREST_CHECK(!relu || fwd.y.defined(), "batch_norm_backward: fused ReLU needs the forward output");
  Tensor gyc = gy.contiguous(), xc = x.contiguous(), yc = relu ? fwd.y.contiguous() : Tensor();
  Tensor g = gamma.defined() ? gamma.contiguous() : Tensor();
  Tensor mc = fwd.mean.contiguous(), vc = fwd.var.contiguous();
  gr.x = Tensor::empty(x.shape(), x.dtype());
  gr.gamma = Tensor::empty({C}, x.dtype());
  gr.beta = Tensor::empty({C}, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>)
      ref::batch_norm_backward<T>(gyc.data<T>(), xc.data<T>(), static_cast<const T*>(ptr_or_null(g)), mc.data<T>(),
                                  vc.data<T>(), relu ? yc.data<T>() : nullptr, gr.x.data<T>(), gr.gamma.data<T>(),
                                  gr.beta.data<T>(), N, C, HW, eps, training, relu);
  });
  return gr;
}

}  // namespace dearest::raw
