#include "quant/observer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "quant/channels.h"
#include "quant/element.h"
#include "quant/qparams.h"

namespace dearest::quant {

namespace {

// Sum of squared fake-quantization errors of n values under (sc, z). The common case (torch's
// x*(1/s), half-even) runs in 16 independent lanes so the compiler vectorizes it; lanes are added
// in a fixed order, so the result does not depend on threads.
double squared_error(const QuantScheme& s, const float* x, int64_t n, float sc, int32_t z) {
  const float inv = 1.0f / sc;
  double total = 0;
  if (s.form == ScaleForm::MulInverse && s.rounding == Rounding::HalfEven) {
    const float zf = float(z), lo = float(s.qmin), hi = float(s.qmax);
    constexpr int L = 16;
    int64_t i = 0;
    for (; i + 1024 <= n; i += 1024) {
      float acc[L] = {};
      for (int64_t b = i; b < i + 1024; b += L)
        for (int j = 0; j < L; ++j) {
          const float v = x[b + j];
          const float q = std::min(std::max(std::nearbyint(v * inv) + zf, lo), hi);
          const float d = (q - zf) * sc - v;
          acc[j] += d * d;
        }
      float blk = 0;
      for (float a : acc) blk += a;
      total += blk;
    }
    for (; i < n; ++i) {
      const float d = fake_quantize_element(s, x[i], sc, inv, z) - x[i];
      total += double(d * d);
    }
    return total;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float d = fake_quantize_element(s, x[i], sc, inv, z) - x[i];
    total += double(d * d);
  }
  return total;
}

// The values of channel c, contiguous (a copy unless they already are).
std::vector<float> channel_values(const float* d, const ChannelView& v, int64_t c) {
  std::vector<float> out(static_cast<size_t>(v.outer * v.inner));
  for (int64_t o = 0; o < v.outer; ++o)
    std::copy(d + (o * v.C + c) * v.inner, d + (o * v.C + c + 1) * v.inner, out.begin() + o * v.inner);
  return out;
}

// Squared errors of every shrink candidate for one channel's values.
std::vector<double> candidate_errors(const QuantScheme& s, const std::vector<float>& vals, float mn, float mx,
                                     int candidates) {
  std::vector<double> err(static_cast<size_t>(candidates));
#pragma omp parallel for schedule(static) if (int64_t(vals.size()) * candidates > 200000)
  for (int i = 0; i < candidates; ++i) {
    const float f = 1.0f - 0.01f * float(i);
    auto [sc, z] = qparams_scalar(s, mn * f, mx * f);
    err[size_t(i)] = squared_error(s, vals.data(), int64_t(vals.size()), sc, z);
  }
  return err;
}

int first_min(const std::vector<double>& e) {
  int best = 0;
  for (int i = 1; i < int(e.size()); ++i)
    if (e[size_t(i)] < e[size_t(best)]) best = i;  // strict: the earliest (widest) range wins ties
  return best;
}

double quantile_linear(std::vector<float>& v, double p) {  // numpy/torch "linear" interpolation
  const double pos = p / 100.0 * double(v.size() - 1);
  const size_t k = size_t(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  const double a = v[k];
  if (k + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + long(k) + 1, v.end());
  return a + (b - a) * (pos - double(k));
}

}  // namespace

const char* observer_name(ObserverKind k) {
  switch (k) {
    case ObserverKind::MinMax: return "minmax";
    case ObserverKind::EmaMinMax: return "ema-minmax";
    case ObserverKind::Percentile: return "percentile";
    case ObserverKind::Mse: return "mse";
    case ObserverKind::EmaMse: return "ema-mse";
    case ObserverKind::Omse: return "omse";
    case ObserverKind::Aciq: return "aciq";
    case ObserverKind::Histogram: return "histogram";
  }
  return "?";
}

ObserverKind parse_observer(const std::string& s) {
  for (ObserverKind k : {ObserverKind::MinMax, ObserverKind::EmaMinMax, ObserverKind::Percentile, ObserverKind::Mse,
                         ObserverKind::EmaMse, ObserverKind::Omse, ObserverKind::Aciq, ObserverKind::Histogram})
    if (s == observer_name(k)) return k;
  fail("observer: expected minmax, ema-minmax, percentile, mse, ema-mse, omse, aciq or histogram, got \"", s, "\"");
}

double aciq_alpha_multiplier(AciqPrior prior, bool one_sided, int bits) {
  // submission2019/cnn-quantization int_quantizer.py, indexed by bits (ALGORITHMS.md §5.3).
  static const double lap2[] = {1.05, 1.86, 2.83, 3.89, 5.03, 6.2, 7.41, 8.64, 9.89};
  static const double lap1[] = {1.86, 2.83, 3.89, 5.02, 6.2, 7.41, 8.64, 9.89, 11.16};
  static const double gau2[] = {0, 1.24, 1.71, 2.15, 2.55, 2.93, 3.28, 3.61, 3.92};
  static const double gau1[] = {0, 1.71, 2.15, 2.55, 2.93, 3.28, 3.61, 3.92, 4.2};
  DEAREST_CHECK(bits >= 1 && bits <= 8, "aciq: bits must be in 1..8, got ", bits);
  if (prior == AciqPrior::Laplace) return one_sided ? lap1[bits] : lap2[bits];
  return one_sided ? gau1[bits] : gau2[bits];
}

std::pair<Tensor, Tensor> mse_range_search(const QuantScheme& s, const Tensor& x_in, const Tensor& mn_in,
                                           const Tensor& mx_in, int candidates) {
  DEAREST_CHECK(candidates >= 1 && candidates <= 100, "mse search: candidates must be in 1..100, got ", candidates);
  DEAREST_CHECK(s.form != ScaleForm::DivideFloatZero, "mse search: not defined for the x/s+zf form");
  Tensor x = x_in.plain().contiguous().to(DType::F32);
  const ChannelView v = channel_view(s, x.shape());
  Tensor mn = mn_in.to(DType::F32).contiguous(), mx = mx_in.to(DType::F32).contiguous();
  DEAREST_CHECK(mn.numel() == v.C && mx.numel() == v.C, "mse search: ", v.C, " channels but ranges for ", mn.numel());
  Tensor lo = Tensor::empty({v.C}, DType::F32), hi = Tensor::empty({v.C}, DType::F32);
  for (int64_t c = 0; c < v.C; ++c) {
    const float a = mn.data<float>()[c], b = mx.data<float>()[c];
    const int best = first_min(candidate_errors(s, channel_values(x.data<float>(), v, c), a, b, candidates));
    const float f = 1.0f - 0.01f * float(best);
    lo.data<float>()[c] = a * f;
    hi.data<float>()[c] = b * f;
  }
  return {lo, hi};
}

Observer::Observer(QuantScheme scheme, ObserverOptions opts) : scheme_(scheme), opts_(opts) {
  scheme_.validate();
  DEAREST_CHECK(opts_.ema >= 0 && opts_.ema < 1, "observer: ema must be in [0, 1), got ", opts_.ema);
  DEAREST_CHECK(opts_.percentile > 50 && opts_.percentile <= 100, "observer: percentile must be in (50, 100], got ",
                opts_.percentile);
  DEAREST_CHECK(opts_.candidates >= 1 && opts_.candidates <= 100, "observer: candidates must be in 1..100, got ",
                opts_.candidates);
  DEAREST_CHECK(opts_.bins >= 2 && opts_.upsample_rate >= 1 && opts_.dst_bits >= 1 && opts_.dst_bits <= 16,
                "observer: histogram bins, upsample rate or destination bits out of range");
}

void Observer::begin_second_pass() {
  DEAREST_CHECK(needs_second_pass(), "observer: ", observer_name(opts_.kind), " has no second pass");
  DEAREST_CHECK(batches_ > 0, "observer: the first pass saw no data");
  pass_ = 2;
  err_.assign(size_t(opts_.candidates) * mn_.size(), 0.0);
}

void Observer::observe(const Tensor& x_in) {
  Tensor x = x_in.plain().contiguous().to(DType::F32);
  const ChannelView v = channel_view(scheme_, x.shape());
  DEAREST_CHECK(v.outer * v.inner > 0, "observer: empty tensor ", x.describe());
  if (!mn_.empty())
    DEAREST_CHECK(int64_t(mn_.size()) == v.C, "observer: saw ", mn_.size(), " channels before, now ", v.C, " (",
                  x.describe(), ")");
  const float* d = x.data<float>();
  const int64_t C = v.C;
  if (opts_.kind == ObserverKind::Histogram) {
    DEAREST_CHECK(C == 1, "observer: the histogram observer is per tensor");
    observe_histogram(d, x.numel());
    mn_.assign(1, hmin_);
    mx_.assign(1, hmax_);
    ++batches_;
    return;
  }
  if (opts_.kind == ObserverKind::Omse && pass_ == 2) {
    for (int64_t c = 0; c < C; ++c) {
      auto e = candidate_errors(scheme_, channel_values(d, v, c), float(mn_[size_t(c)]), float(mx_[size_t(c)]),
                                opts_.candidates);
      for (int i = 0; i < opts_.candidates; ++i) err_[size_t(i) * size_t(C) + size_t(c)] += e[size_t(i)];
    }
    return;
  }
  auto [bmn_t, bmx_t] = tensor_range(scheme_, x);
  std::vector<double> bmn(static_cast<size_t>(C)), bmx(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    bmn[size_t(c)] = bmn_t.data<float>()[c];
    bmx[size_t(c)] = bmx_t.data<float>()[c];
  }
  switch (opts_.kind) {
    case ObserverKind::MinMax:
    case ObserverKind::Omse:
    case ObserverKind::EmaMinMax:
    case ObserverKind::Histogram:  // handled above
      break;
    case ObserverKind::Mse:
    case ObserverKind::EmaMse: {
      auto [lo, hi] = mse_range_search(scheme_, x, bmn_t, bmx_t, opts_.candidates);
      for (int64_t c = 0; c < C; ++c) {
        bmn[size_t(c)] = lo.data<float>()[c];
        bmx[size_t(c)] = hi.data<float>()[c];
      }
      break;
    }
    case ObserverKind::Percentile:
      for (int64_t c = 0; c < C; ++c) {
        std::vector<float> vals = channel_values(d, v, c);
        bmx[size_t(c)] = quantile_linear(vals, opts_.percentile);
        bmn[size_t(c)] = quantile_linear(vals, 100.0 - opts_.percentile);
      }
      break;
    case ObserverKind::Aciq:
      for (int64_t c = 0; c < C; ++c) {
        std::vector<float> vals = channel_values(d, v, c);
        double mean = 0;
        for (float f : vals) mean += f;
        mean /= double(vals.size());
        double b = 0, var = 0;
        for (float f : vals) {
          b += std::fabs(f - mean);
          var += (f - mean) * (f - mean);
        }
        b /= double(vals.size());
        const double sigma = std::sqrt(var / double(vals.size()));
        const bool one = opts_.aciq_sided == 1 || (opts_.aciq_sided == 0 && bmn[size_t(c)] >= 0);
        const double alpha = aciq_alpha_multiplier(opts_.prior, one, scheme_.bits) *
                             (opts_.prior == AciqPrior::Laplace ? b : sigma);
        double offset, width;
        if (one) {
          offset = 0;
          width = std::max(mean, 0.0) + alpha;
        } else {
          offset = std::max(bmn[size_t(c)], mean - alpha);
          width = 2 * alpha;
        }
        if (opts_.aciq_cap) width = std::min(width, bmx[size_t(c)] - bmn[size_t(c)]);
        bmn[size_t(c)] = offset;
        bmx[size_t(c)] = offset + width;
      }
      break;
  }
  const bool first = mn_.empty();
  if (first) {
    mn_ = bmn;
    mx_ = bmx;
  } else {
    for (int64_t c = 0; c < C; ++c) {
      double& a = mn_[size_t(c)];
      double& b = mx_[size_t(c)];
      switch (opts_.kind) {
        case ObserverKind::MinMax:
        case ObserverKind::Omse:
        case ObserverKind::Histogram:
          a = std::min(a, bmn[size_t(c)]);
          b = std::max(b, bmx[size_t(c)]);
          break;
        case ObserverKind::EmaMinMax:
        case ObserverKind::EmaMse:
          // float32 as torch/MQBench keep the running values
          a = double(float(opts_.ema) * float(a) + float(1 - opts_.ema) * float(bmn[size_t(c)]));
          b = double(float(opts_.ema) * float(b) + float(1 - opts_.ema) * float(bmx[size_t(c)]));
          break;
        case ObserverKind::Mse:
        case ObserverKind::Percentile:
        case ObserverKind::Aciq:  // running average of the per-batch estimates
          a += (bmn[size_t(c)] - a) / double(batches_ + 1);
          b += (bmx[size_t(c)] - b) / double(batches_ + 1);
          break;
      }
    }
  }
  ++batches_;
}

std::pair<Tensor, Tensor> Observer::range() const {
  DEAREST_CHECK(batches_ > 0, "observer: no data observed (calibrate before asking for a range)");
  DEAREST_CHECK(!(opts_.kind == ObserverKind::Omse && pass_ == 1), "observer: omse needs its second pass");
  if (opts_.kind == ObserverKind::Histogram) {
    auto [lo, hi] = histogram_range();
    return {Tensor::full({1}, lo, DType::F32), Tensor::full({1}, hi, DType::F32)};
  }
  const int64_t C = int64_t(mn_.size());
  Tensor lo = Tensor::empty({C}, DType::F32), hi = Tensor::empty({C}, DType::F32);
  for (int64_t c = 0; c < C; ++c) {
    float a = float(mn_[size_t(c)]), b = float(mx_[size_t(c)]);
    if (opts_.kind == ObserverKind::Omse) {
      std::vector<double> e(static_cast<size_t>(opts_.candidates));
      for (int i = 0; i < opts_.candidates; ++i) e[size_t(i)] = err_[size_t(i) * size_t(C) + size_t(c)];
      const float f = 1.0f - 0.01f * float(first_min(e));
      a *= f;
      b *= f;
    }
    lo.data<float>()[c] = a;
    hi.data<float>()[c] = b;
  }
  return {lo, hi};
}

QParams Observer::qparams() const {
  auto [lo, hi] = range();
  return qparams_from_range(scheme_, lo, hi);
}

}  // namespace dearest::quant
