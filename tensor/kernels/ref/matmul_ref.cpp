#include "tensor/kernels/ref/ref_kernels.h"

namespace dearest::ref {

template <typename T>
void matmul(const T* a, int64_t sa0, int64_t sa1, const T* b, int64_t sb0, int64_t sb1, T* c, int64_t m, int64_t n,
            int64_t k) {
#pragma omp parallel for schedule(static) if (m * n * k > 65536)
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t q = 0; q < k; ++q) acc += double(a[i * sa0 + q * sa1]) * double(b[q * sb0 + j * sb1]);
      c[i * n + j] = T(acc);
    }
}

template void matmul<float>(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*, int64_t, int64_t,
                            int64_t);
template void matmul<double>(const double*, int64_t, int64_t, const double*, int64_t, int64_t, double*, int64_t,
                             int64_t, int64_t);

}  // namespace dearest::ref
