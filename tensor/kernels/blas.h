// The BLAS GEMM used by matmul/linear (OpenBLAS, OpenMP build, same libgomp pool as oneDNN).
#pragma once
#include <cstdint>
#include <string>

namespace dearest {

// Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, with leading dims lda/ldb/ldc.
void blas_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void blas_dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

std::string blas_config_string();    // OpenBLAS's own build description
std::string blas_parallel_string();  // "openmp" expected; "pthread" would fight libgomp for the cores

}  // namespace dearest
