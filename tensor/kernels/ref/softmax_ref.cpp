// Softmax and log-softmax over the middle dim of [outer, n, inner], max-subtracted for stability.
#include <cmath>

#include "tensor/kernels/ref/ref_kernels.h"

namespace dearest::ref {

template <typename T> void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner > 64)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* xp = x + o * n * inner + i;
      T* yp = y + o * n * inner + i;
      double mx = -INFINITY;
      for (int64_t k = 0; k < n; ++k) mx = std::max(mx, double(xp[k * inner]));
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += std::exp(double(xp[k * inner]) - mx);
      const double ls = std::log(s);
      for (int64_t k = 0; k < n; ++k) {
        const double z = double(xp[k * inner]) - mx;
        yp[k * inner] = T(log ? z - ls : std::exp(z) / s);
      }
    }
}

template <typename T>
void softmax_backward(const T* y, const T* gy, T* gx, int64_t outer, int64_t n, int64_t inner, bool log) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner > 64)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      double s = 0;
      // softmax: gx = y * (gy - sum(gy*y)); log-softmax: gx = gy - exp(y) * sum(gy)
      for (int64_t k = 0; k < n; ++k) s += log ? double(gy[base + k * inner]) : double(gy[base + k * inner]) * double(y[base + k * inner]);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t idx = base + k * inner;
        gx[idx] = log ? T(double(gy[idx]) - std::exp(double(y[idx])) * s) : T(double(y[idx]) * (double(gy[idx]) - s));
      }
    }
}

#define INSTANTIATE(T)                                                                       \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, int64_t, bool);           \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace dearest::ref
