#include "quant/ocs.h"

#include <cmath>

#include "autograd/ops.h"

namespace dearest::quant {

namespace {

int64_t split_count(int64_t in, double ratio) {
  DEAREST_CHECK(ratio >= 0 && ratio <= 1, "ocs: expand ratio must be in [0, 1], got ", ratio);
  return int64_t(std::ceil(ratio * double(in)));
}

// max |w[:, j]| over the other dims for a [O, C, ...] tensor, as doubles.
std::vector<double> channel_max_abs(const Tensor& w) {
  Tensor c = w.detach().plain().contiguous().to(DType::F64);
  const int64_t O = c.size(0), C = c.size(1), inner = c.numel() / (O * C);
  std::vector<double> m(static_cast<size_t>(C), 0.0);
  const double* d = c.data<double>();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t j = 0; j < C; ++j)
      for (int64_t i = 0; i < inner; ++i) m[size_t(j)] = std::max(m[size_t(j)], std::fabs(d[(o * C + j) * inner + i]));
  return m;
}

}  // namespace

std::vector<int64_t> ocs_pick_order(const Tensor& w, double ratio) {
  DEAREST_CHECK(w.dim() >= 2, "ocs: expected a weight [O, I, ...], got ", w.describe());
  const int64_t I = w.size(1), n = split_count(I, ratio);
  std::vector<double> m = channel_max_abs(w);
  std::vector<int64_t> picks;
  for (int64_t k = 0; k < n; ++k) {
    int64_t j = 0;
    for (int64_t c = 1; c < int64_t(m.size()); ++c)
      if (m[size_t(c)] > m[size_t(j)]) j = c;  // the first largest, as torch.argmax
    picks.push_back(j);
    m[size_t(j)] /= 2;
    m.push_back(m[size_t(j)]);
  }
  return picks;
}

OcsSplit ocs_split(const Tensor& w, double ratio, double grid_scale) {
  const int64_t I = w.size(1);
  std::vector<int64_t> picks = ocs_pick_order(w, ratio);
  OcsSplit s;
  s.in_channels = I;
  // Track every channel of the growing tensor as (original source, factor): channel = w[:, src] * f.
  std::vector<int64_t> src(static_cast<size_t>(I));
  std::vector<double> factor(static_cast<size_t>(I), 1.0);
  for (int64_t j = 0; j < I; ++j) src[size_t(j)] = j;
  for (int64_t j : picks) {
    factor[size_t(j)] /= 2;
    src.push_back(src[size_t(j)]);
    factor.push_back(factor[size_t(j)]);
  }
  const int64_t total = int64_t(src.size());
  for (int64_t k = I; k < total; ++k) s.source.push_back(src[size_t(k)]);
  // W_split = W gathered along dim 1 and scaled per channel (a linear map of W).
  Tensor idx = Tensor::empty({total}, DType::I32);
  Tensor f = Tensor::empty({total}, w.dtype());
  for (int64_t k = 0; k < total; ++k) {
    idx.data<int32_t>()[k] = int32_t(src[size_t(k)]);
    if (w.dtype() == DType::F64) f.data<double>()[k] = factor[size_t(k)];
    else f.data<float>()[k] = float(factor[size_t(k)]);
  }
  Shape fs(size_t(w.dim()), 1);
  fs[1] = total;
  Tensor split = mul(index_select(w, 1, idx), f.reshape(fs));
  if (grid_scale > 0 && total > I) {
    // Grid-aware: splitting a channel of value v makes (v*S/2 - 0.25)/S and (v*S/2 + 0.25)/S; with
    // v = f*w + o that is offsets o/2 - 0.25/S and o/2 + 0.25/S, applied in split order.
    std::vector<double> o2(static_cast<size_t>(I), 0.0);
    for (int64_t j : picks) {
      o2[size_t(j)] = o2[size_t(j)] / 2 - 0.25 / grid_scale;
      o2.push_back(o2[size_t(j)] + 0.5 / grid_scale);
    }
    Tensor ot = Tensor::empty({total}, w.dtype());
    for (int64_t k = 0; k < total; ++k) {
      if (w.dtype() == DType::F64) ot.data<double>()[k] = o2[size_t(k)];
      else ot.data<float>()[k] = float(o2[size_t(k)]);
    }
    split = add(split, ot.reshape(fs));
  }
  s.weight = split;
  return s;
}

Tensor ocs_fold(const Tensor& sw, const OcsSplit& s) {
  const int64_t total = sw.size(1), I = s.in_channels;
  DEAREST_CHECK(total == I + int64_t(s.source.size()), "ocs_fold: ", total, " channels, expected ", I + int64_t(s.source.size()));
  if (total == I) return sw;
  // Fold matrix F [total, I]: channel k adds onto its source. W = (W_split moved to the last dim) @ F.
  Tensor F = Tensor::zeros({total, I}, sw.dtype());
  for (int64_t k = 0; k < total; ++k) {
    const int64_t j = k < I ? k : s.source[size_t(k - I)];
    if (sw.dtype() == DType::F64) F.data<double>()[k * I + j] = 1;
    else F.data<float>()[k * I + j] = 1;
  }
  std::vector<int64_t> to_last, back;
  const int64_t d = sw.dim();
  to_last.push_back(0);
  for (int64_t i = 2; i < d; ++i) to_last.push_back(i);
  to_last.push_back(1);
  // inverse permutation
  back.assign(size_t(d), 0);
  for (int64_t i = 0; i < d; ++i) back[size_t(to_last[size_t(i)])] = i;
  Tensor moved = permute(sw, to_last);
  return contiguous(permute(matmul(moved, F), back));
}

}  // namespace dearest::quant
