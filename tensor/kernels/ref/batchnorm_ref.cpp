// Batch normalisation per channel of [N, C, HW]: the textbook formulas, PyTorch's conventions
// (biased variance to normalise; the caller turns it unbiased for running statistics).
#include <cmath>

#include "tensor/kernels/ref/ref_kernels.h"

namespace dearest::ref {

template <typename T>
void batch_norm_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, int64_t N, int64_t C,
                        int64_t HW, double eps, bool training, bool relu) {
  const double m = double(N * HW);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double mu, v;
    if (training) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) s += double(x[(n * C + c) * HW + i]);
      mu = s / m;
      double q = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          const double d = double(x[(n * C + c) * HW + i]) - mu;
          q += d * d;
        }
      v = q / m;
      mean[c] = T(mu);
      var[c] = T(v);
    } else {
      mu = double(mean[c]);
      v = double(var[c]);
    }
    const double invstd = 1.0 / std::sqrt(v + eps);
    const double gm = gamma ? double(gamma[c]) : 1.0, bt = beta ? double(beta[c]) : 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        double out = (double(x[(n * C + c) * HW + i]) - mu) * invstd * gm + bt;
        if (relu && out < 0) out = 0;
        y[(n * C + c) * HW + i] = T(out);
      }
  }
}

template <typename T>
void batch_norm_backward(const T* gy, const T* x, const T* gamma, const T* mean, const T* var, const T* y, T* gx,
                         T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, double eps, bool training, bool relu) {
  const double m = double(N * HW);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const double mu = double(mean[c]), invstd = 1.0 / std::sqrt(double(var[c]) + eps);
    const double gm = gamma ? double(gamma[c]) : 1.0;
    auto g_at = [&](int64_t idx) { return (relu && !(y[idx] > 0)) ? 0.0 : double(gy[idx]); };
    double sum_g = 0, sum_gx = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t idx = (n * C + c) * HW + i;
        const double g = g_at(idx);
        sum_g += g;
        sum_gx += g * (double(x[idx]) - mu) * invstd;
      }
    if (gbeta) gbeta[c] = T(sum_g);
    if (ggamma) ggamma[c] = T(sum_gx);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t idx = (n * C + c) * HW + i;
        const double g = g_at(idx);
        if (training) {
          const double xhat = (double(x[idx]) - mu) * invstd;
          gx[idx] = T(gm * invstd / m * (m * g - sum_g - xhat * sum_gx));
        } else {
          gx[idx] = T(g * gm * invstd);
        }
      }
  }
}

#define INSTANTIATE(T)                                                                                          \
  template void batch_norm_forward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, int64_t, double, \
                                      bool, bool);                                                              \
  template void batch_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                       int64_t, int64_t, int64_t, double, bool, bool);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace dearest::ref
