#include "tensor/ops/loss.h"

#include <cmath>

namespace dearest::raw {

namespace {
void check(const Tensor& logp, const Tensor& target) {
  DEAREST_CHECK(logp.dim() == 2, "nll_loss: input must be [N, C], got ", shape_str(logp.shape()));
  DEAREST_CHECK(is_floating(logp.dtype()), "nll_loss: input must be floating, got ", logp.describe());
  DEAREST_CHECK(target.dtype() == DType::I32, "nll_loss: labels must be i32, got ", target.describe());
  DEAREST_CHECK(target.dim() == 1 && target.size(0) == logp.size(0), "nll_loss: labels ", shape_str(target.shape()),
                " do not match input ", shape_str(logp.shape()));
  Tensor t = target.contiguous();
  const int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    DEAREST_CHECK(p[i] >= 0 && p[i] < logp.size(1), "nll_loss: label ", p[i], " at position ", i,
                  " out of range for ", logp.size(1), " classes");
}
}  // namespace

Tensor nll_loss(const Tensor& logp_in, const Tensor& target_in, Reduction reduction) {
  check(logp_in, target_in);
  Tensor logp = logp_in.contiguous(), target = target_in.contiguous();
  const int64_t N = logp.size(0), C = logp.size(1);
  Tensor out = reduction == Reduction::None ? Tensor::empty({N}, logp.dtype()) : Tensor::empty({}, logp.dtype());
  const int32_t* t = target.data<int32_t>();
  dispatch_dtype(logp.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* lp = logp.data<T>();
    T* po = out.data<T>();
    double acc = 0;
    for (int64_t i = 0; i < N; ++i) {
      const double v = -double(lp[i * C + t[i]]);
      if (reduction == Reduction::None) po[i] = T(v);
      acc += v;
    }
    if (reduction == Reduction::Sum) po[0] = T(acc);
    if (reduction == Reduction::Mean) po[0] = T(N ? acc / double(N) : std::nan(""));
  });
  return out;
}

Tensor nll_loss_backward(const Tensor& gloss_in, const Tensor& logp, const Tensor& target_in, Reduction reduction) {
  check(logp, target_in);
  Tensor target = target_in.contiguous(), gloss = gloss_in.contiguous();
  const int64_t N = logp.size(0), C = logp.size(1);
  Tensor gx = Tensor::zeros(logp.shape(), logp.dtype());
  const int32_t* t = target.data<int32_t>();
  dispatch_dtype(logp.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* g = gloss.data<T>();
    T* px = gx.data<T>();
    for (int64_t i = 0; i < N; ++i) {
      const double gi = reduction == Reduction::None ? double(g[i]) : double(g[0]);
      px[i * C + t[i]] = T(-gi / (reduction == Reduction::Mean ? double(N) : 1.0));
    }
  });
  return gx;
}

}  // namespace dearest::raw
