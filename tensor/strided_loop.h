// Walks K strided operands of one shape together: the loop under every element-wise kernel.
//
// Dims of size 1 are dropped and adjacent dims that are contiguous in every operand are merged,
// so a contiguous tensor becomes one flat row. The rows (all but the innermost dim) are split over
// OpenMP threads in fixed, index-determined chunks; each output element is written by exactly one
// thread, so results never depend on the thread count.
#pragma once
#include <omp.h>

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/shape.h"

namespace dearest {

template <int K> struct StridedLayout {
  Shape shape;                          // merged shape (at least 1-d)
  std::array<Shape, K> strides;         // merged strides per operand
};

template <int K>
StridedLayout<K> merge_dims(const Shape& shape, const std::array<Shape, K>& strides) {
  StridedLayout<K> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out.shape.empty();
    for (int k = 0; k < K && merge; ++k) merge = out.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out.shape.back() *= shape[d];
      for (int k = 0; k < K; ++k) out.strides[k].back() = strides[k][d];
    } else {
      out.shape.push_back(shape[d]);
      for (int k = 0; k < K; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.shape.empty()) {
    out.shape.push_back(1);
    for (int k = 0; k < K; ++k) out.strides[k].push_back(1);
  }
  return out;
}

// f(const std::array<int64_t,K>& offsets, int64_t n, const std::array<int64_t,K>& inner_strides)
// is called once per row. `parallel` allows OpenMP over rows (and over chunks of one long row).
template <int K, typename F>
void strided_loop(const Shape& shape, const std::array<Shape, K>& strides, F&& f, bool parallel = true) {
  if (shape_numel(shape) == 0) return;
  StridedLayout<K> L = merge_dims<K>(shape, strides);
  const int64_t nd = static_cast<int64_t>(L.shape.size());
  const int64_t inner = L.shape[nd - 1];
  std::array<int64_t, K> inner_st;
  for (int k = 0; k < K; ++k) inner_st[k] = L.strides[k][nd - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d < nd - 1; ++d) rows *= L.shape[d];

  // A single long row (the contiguous case) is cut into fixed chunks so both cores work.
  constexpr int64_t kChunk = 16384;
  if (rows == 1) {
    int64_t nchunks = (inner + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (parallel && nchunks > 1)
    for (int64_t c = 0; c < nchunks; ++c) {
      int64_t b = c * kChunk, n = std::min(kChunk, inner - b);
      std::array<int64_t, K> off;
      for (int k = 0; k < K; ++k) off[k] = b * inner_st[k];
      f(off, n, inner_st);
    }
    return;
  }
  const bool par = parallel && rows * inner >= 32768;
#pragma omp parallel if (par)
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t begin = rows * t / nt, end = rows * (t + 1) / nt;
    if (begin < end) {
      std::vector<int64_t> idx(nd - 1);
      int64_t r = begin;
      for (int64_t d = nd - 2; d >= 0; --d) {
        idx[d] = r % L.shape[d];
        r /= L.shape[d];
      }
      std::array<int64_t, K> off{};
      for (int k = 0; k < K; ++k)
        for (int64_t d = 0; d < nd - 1; ++d) off[k] += idx[d] * L.strides[k][d];
      for (int64_t row = begin; row < end; ++row) {
        f(off, inner, inner_st);
        for (int64_t d = nd - 2; d >= 0; --d) {  // odometer increment
          ++idx[d];
          for (int k = 0; k < K; ++k) off[k] += L.strides[k][d];
          if (idx[d] < L.shape[d]) break;
          for (int k = 0; k < K; ++k) off[k] -= L.strides[k][d] * L.shape[d];
          idx[d] = 0;
        }
      }
    }
  }
}

}  // namespace dearest
