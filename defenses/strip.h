// STRIP (ALGORITHMS.md §6.2; Gao et al.): an input is superimposed on N random held-out clean
// images, x'_j = clip(x + x_j, 0, 1), and its entropy H(x) = (1/N) sum_j sum_c -p_c log2 p_c of the
// model's predictions on them measured. Triggered inputs keep predicting the target, so their
// entropy is low: with the threshold at the FRR-quantile of clean inputs' entropies, FAR is the
// fraction of triggered inputs at or above it (missed).
#pragma once
#include <string>
#include <vector>

#include <functional>

#include "data/registry.h"
#include "nn/module.h"

namespace dearest::defenses {

struct StripOptions {
  int64_t overlays = 100;  // N
  int64_t inputs = 500;    // clean test inputs, and as many triggered ones
  double frr = 0.01;       // false rejection rate that sets the threshold
  int64_t batch = 100;
  uint64_t seed = 0;
  bool progress = true;
};

// Entropies of `images` (f32 [B, 3, H, W] in [0, 1]) each superimposed on `overlays` images from
// `pool` (in [0, 1]); the model sees them normalised as `kind` normalises.
std::vector<double> strip_entropies(nn::Module& model, const Tensor& images, const Tensor& pool, const std::string& kind,
                                    int64_t batch);

struct StripResult {
  std::vector<double> clean, triggered;  // entropies
  double threshold = 0;  // the FRR-quantile of the clean entropies
  double frr = 0;        // measured: clean inputs below the threshold
  double far = 0;        // triggered inputs at or above the threshold (not detected)
  double detection = 0;  // 1 - far
};

// Clean inputs: the first non-target test images; triggered: the same stamped; overlays:
// random images of the training split.
// `stamp` puts the trigger on an f32 [3, H, W] image in [0, 1] (attacks::Trigger::apply).
using Stamp = std::function<Tensor(const Tensor&)>;
StripResult strip(nn::Module& model, const data::DataSpec& data, const Stamp& stamp, int32_t target, const StripOptions& o);

// The q-quantile of v (linear interpolation between order statistics, as numpy's default).
double quantile(std::vector<double> v, double q);

}  // namespace dearest::defenses
