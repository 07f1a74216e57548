// Observers: what a calibration run learns about a tensor's range, and the scale and zero point
// that follow from it. One observer per quantized tensor (a layer's weight or a layer's input).
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "quant/scheme.h"

namespace dearest::quant {

enum class ObserverKind {
  MinMax,     // the min and max over every batch seen
  EmaMinMax,  // first batch sets them, then min <- ema*min + (1-ema)*batch_min (torch's moving average)
  Percentile, // the p-th and (100-p)-th percentiles per batch, averaged over batches
  Mse,        // MQBench MSEObserver: shrink the batch's (min, max) by f = 1 - 0.01 i, keep the lowest MSE;
              // over several batches the chosen ranges are averaged
  EmaMse,     // MQBench EMAMSEObserver: the MSE search per batch, then the EMA across batches
  Omse,       // the MSE search over the whole calibration set (two passes: range, then errors)
  Aciq,       // Banner et al.: clip at alpha = k * b (Laplace) or k * sigma (Gaussian), per-batch stats averaged
  Histogram,  // PyTorch's HistogramObserver (1.13): a 2048-bin running histogram, then its L2 range search
};

enum class AciqPrior { Laplace, Gaussian };

struct ObserverOptions {
  ObserverKind kind = ObserverKind::MinMax;
  double ema = 0.9;          // weight of the old value (MQBench, torch: 0.9)
  double percentile = 99.99; // Percentile: upper percentile (lower = 100 - p)
  int candidates = 80;       // Mse/EmaMse/Omse grid size (MQBench: 80 for weights, 95 for activations)
  AciqPrior prior = AciqPrior::Laplace;
  int aciq_sided = 0;        // 0: one-sided when the data is never negative (post-ReLU), 1: one, 2: two
  bool aciq_cap = true;      // cap the clipped width at max - min
  int bins = 2048;           // Histogram: torch's defaults
  int upsample_rate = 128;
  int dst_bits = 8;          // Histogram: torch searches for 2^8 destination bins whatever the range
};

const char* observer_name(ObserverKind k);
ObserverKind parse_observer(const std::string& s);  // minmax, ema-minmax, percentile, mse, ema-mse, omse, aciq, histogram

class Observer {
 public:
  Observer(QuantScheme scheme, ObserverOptions opts);
  void observe(const Tensor& x);  // one batch, or the weight
  // Omse needs the data twice: after the first pass, begin_second_pass() and observe it all again.
  bool needs_second_pass() const { return opts_.kind == ObserverKind::Omse && pass_ == 1; }
  void begin_second_pass();
  int64_t batches() const { return batches_; }
  std::pair<Tensor, Tensor> range() const;  // f32 [C] each
  QParams qparams() const;
  const QuantScheme& scheme() const { return scheme_; }
  const ObserverOptions& options() const { return opts_; }

 private:
  QuantScheme scheme_;
  ObserverOptions opts_;
  int64_t batches_ = 0;
  int pass_ = 1;
  std::vector<double> mn_, mx_;      // current estimate per channel
  std::vector<double> err_;          // Omse: candidates x channels summed squared errors
  // Histogram (per tensor): torch's buffers, in float32 as torch keeps them.
  std::vector<float> hist_;
  float hmin_ = INFINITY, hmax_ = -INFINITY;
  void observe_histogram(const float* x, int64_t n);
  std::pair<float, float> histogram_range() const;
};

// The MSE range search on one tensor (per channel or per tensor as the scheme says), with
// `candidates` shrink factors f = 1 - 0.01 i of (mn, mx); the first strictly lowest mean squared
// error wins. Returns the chosen (min, max).
std::pair<Tensor, Tensor> mse_range_search(const QuantScheme& s, const Tensor& x, const Tensor& mn, const Tensor& mx,
                                           int candidates);

// ACIQ's optimal clipping multiplier k for `bits` (alpha = k * b or k * sigma).
double aciq_alpha_multiplier(AciqPrior prior, bool one_sided, int bits);

}  // namespace dearest::quant
