// PyTorch 1.13's HistogramObserver, step for step in float32 where torch computes in float32:
// torch.histc over the range int(min)..int(max) (torch truncates the float range to integers
// there), the upsample-and-downsample merge of a new batch's histogram, and the L2 search
// (_non_linear_param_search / _compute_quantization_error) that picks the clipped range.
#include <algorithm>
#include <cmath>

#include "quant/observer.h"

namespace dearest::quant {

namespace {

// torch.histc(x, bins, min=lo, max=hi) on CPU: float32 position, elements outside skipped, the
// right edge inclusive; lo == hi means the data's own range (widened by 1 when that is flat too).
std::vector<float> histc(const float* x, int64_t n, int bins, float lo, float hi) {
  if (lo == hi) {
    lo = *std::min_element(x, x + n);
    hi = *std::max_element(x, x + n);
    if (lo == hi) {
      lo -= 1;
      hi += 1;
    }
  }
  std::vector<float> h(static_cast<size_t>(bins), 0.0f);
  const float width = hi - lo, fb = float(bins);
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!(v >= lo && v <= hi)) continue;
    int64_t p = int64_t((v - lo) * fb / width);
    if (p == bins) p = bins - 1;
    h[size_t(p)] += 1.0f;
  }
  return h;
}

// Python's float floor division as torch's div(..., rounding_mode='floor') computes it.
float floor_div(float a, float b) {
  const float mod = std::fmod(a, b);
  float div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
  float fl = std::floor(div);
  if (div - fl > 0.5f) fl += 1;
  return fl;
}

float get_norm(float begin, float end, float density) {
  return density * ((end * end * end - begin * begin * begin) / 3.0f);
}

}  // namespace

void Observer::observe_histogram(const float* x, int64_t n) {
  const int bins = opts_.bins;
  const float new_min = *std::min_element(x, x + n), new_max = *std::max_element(x, x + n);
  const bool uninit = std::isinf(hmin_) && hmin_ > 0 && std::isinf(hmax_) && hmax_ < 0;
  if (uninit || hmin_ == hmax_) {
    hmin_ = new_min;
    hmax_ = new_max;
    hist_ = histc(x, n, bins, float(int64_t(hmin_)), float(int64_t(hmax_)));
    return;
  }
  float cmin = std::min(new_min, hmin_), cmax = std::max(new_max, hmax_);
  // _adjust_min_max
  const int up = opts_.upsample_rate;
  const float hist_bin_width = (hmax_ - hmin_) / float(int64_t(bins) * up);
  const int64_t down = int64_t(std::ceil((cmax - cmin) / (float(bins) * hist_bin_width)));
  const float e = float(down) * (float(bins) * hist_bin_width) - (cmax - cmin);
  cmax = cmax + e;
  const int64_t start_idx = int64_t(std::nearbyint((hmin_ - cmin) / hist_bin_width));
  std::vector<float> combined = histc(x, n, bins, float(int64_t(cmin)), float(int64_t(cmax)));
  if (cmin == hmin_ && cmax == hmax_) {
    for (int i = 0; i < bins; ++i) combined[size_t(i)] += hist_[size_t(i)];
  } else {
    // _combine_histograms: upsample the old histogram, place it, integrate in double, downsample.
    const int64_t total = int64_t(bins) * down;
    std::vector<float> placed(static_cast<size_t>(total), 0.0f);
    for (int64_t k = 0; k < int64_t(bins) * up; ++k) {
      const int64_t at = start_idx + k;
      DEAREST_CHECK(at >= 0 && at < total, "histogram observer: merge out of range");
      placed[size_t(at)] = hist_[size_t(k / up)];
    }
    std::vector<double> integral(static_cast<size_t>(bins));
    double run = 0;
    int64_t j = 0;
    for (int64_t k = 0; k < total; ++k) {
      run += double(placed[size_t(k)]);
      if (k % down == down - 1) integral[size_t(j++)] = run;
    }
    for (int i = 0; i < bins; ++i) {
      const double shifted = i == 0 ? 0.0 : double(float(integral[size_t(i - 1)]));  // a float32 buffer in torch
      combined[size_t(i)] += float((integral[size_t(i)] - shifted) / double(up));
    }
  }
  hist_ = combined;
  hmin_ = cmin;
  hmax_ = cmax;
}

std::pair<float, float> Observer::histogram_range() const {
  const int bins = opts_.bins;
  const int64_t dst_nbins = int64_t(1) << opts_.dst_bits;
  const float bin_width_t = (hmax_ - hmin_) / float(bins);  // a float32 tensor in torch
  double total = 0;
  {
    float s = 0;
    for (float h : hist_) s += h;
    total = double(s);
  }
  std::vector<float> csum(hist_.size());
  float acc = 0;
  for (size_t i = 0; i < hist_.size(); ++i) csum[i] = acc += hist_[i];
  // _compute_quantization_error with python-double bin widths and float32 tensors.
  auto error = [&](int64_t start, int64_t end) -> double {
    const double bin_width = (double(hmax_) - double(hmin_)) / double(bins);
    const double dst_bin_width = bin_width * double(end - start + 1) / double(dst_nbins);
    if (dst_bin_width == 0.0) return 0.0;
    const float bw = float(bin_width), dw = float(dst_bin_width), half = float(dst_bin_width / 2);
    const float mid_norm_unit = (half * half * half - (-half) * (-half) * (-half)) / 3.0f;
    double sum = 0;
    for (int64_t i = 0; i < bins; ++i) {
      const float begin = float(i - start) * bw;
      const float endv = begin + bw;
      const float b_bin = std::clamp(floor_div(begin, dw), 0.0f, float(dst_nbins - 1));
      const float e_bin = std::clamp(floor_div(endv, dw), 0.0f, float(dst_nbins - 1));
      const float b_center = (b_bin + 0.5f) * dw;
      const float density = hist_[size_t(i)] / bw;
      float norm = 0;
      norm += get_norm(begin - b_center, half, density);
      norm += (e_bin - b_bin - 1.0f) * (density * mid_norm_unit);
      const float e_center = e_bin * dw + half;
      norm += get_norm(-half, endv - e_center, density);
      sum += double(norm);
    }
    return double(float(sum));
  };
  const double step = 1e-5;
  double alpha = 0, beta = 1;
  int64_t start_bin = 0, end_bin = bins - 1;
  double norm_min = INFINITY;
  while (alpha < beta) {
    const double next_alpha = alpha + step, next_beta = beta - step;
    int64_t l = start_bin, r = end_bin;
    while (l < end_bin && csum[size_t(l)] < float(next_alpha * total)) ++l;
    while (r > start_bin && csum[size_t(r)] > float(next_beta * total)) --r;
    int64_t ns = start_bin, ne = end_bin;
    if ((l - start_bin) > (end_bin - r)) {
      ns = l;
      alpha = next_alpha;
    } else {
      ne = r;
      beta = next_beta;
    }
    if (ns == start_bin && ne == end_bin) continue;
    const double norm = error(ns, ne);
    if (norm > norm_min) break;
    norm_min = norm;
    start_bin = ns;
    end_bin = ne;
  }
  return {hmin_ + bin_width_t * float(start_bin), hmin_ + bin_width_t * float(end_bin + 1)};
}

}  // namespace dearest::quant
