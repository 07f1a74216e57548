// Neural Cleanse (ALGORITHMS.md §6.1; bolunwang/backdoor): for each label, the smallest mask and
// pattern that send clean images there,
//   x' = (1 - m) x + m p,   m = tanh(m_raw) / (2 - eps) + 0.5  [H, W],  p likewise  [3, H, W],
// minimising CE(f(x'), label) + cost |m|_1 with Adam (lr 0.1, betas 0.5, 0.9), the cost doubled
// after `patience` steps of attack success >= threshold and divided by 2^1.5 after as many below,
// the best mask the smallest |m|_1 reached with success >= threshold, and an early stop once the
// cost has moved both ways and the best has not improved for `early_stop_patience` steps. A step
// is one pass over the clean images. Then the outlier test on the per-label norms: MAD with the
// 1.4826 constant, a label flagged when its anomaly index exceeds 2 on the small side.
#pragma once
#include <string>
#include <vector>

#include "data/registry.h"
#include "nn/module.h"

namespace dearest::defenses {

struct NeuralCleanseOptions {
  int64_t steps = 1000;            // the reference's STEPS
  int64_t images = 1000;           // clean images per step (the reference: 31 batches of 32)
  int64_t batch = 32;
  double lr = 0.1;
  double init_cost = 1e-3;
  double threshold = 0.99;         // attack success that counts
  int64_t patience = 5;            // steps before the cost moves
  double cost_up = 2, cost_down = 2.8284271247461903;  // 2^1.5
  int64_t early_stop_patience = 25;
  std::vector<int32_t> labels;     // empty: every label
  uint64_t seed = 0;
  bool progress = true;
};

struct ReversedTrigger {
  int32_t label = 0;
  double l1 = 0;         // |m|_1 of the best mask (of the last one when success never reached the threshold)
  double success = 0;    // its attack success on the clean images
  bool reached = false;  // success reached the threshold at some step
  int64_t steps = 0;     // steps run (early stop)
  Tensor mask;           // f32 [H, W] in [0, 1]
  Tensor pattern;        // f32 [3, H, W] in [0, 1]
};

// Reverse-engineers one label's trigger on `clean` (images un-normalised, then normalised for the
// model as `kind` normalises them).
ReversedTrigger reverse_engineer(nn::Module& model, const data::DatasetPtr& clean, const std::string& kind, int32_t label,
                                 const NeuralCleanseOptions& o);

struct MadResult {
  double median = 0, mad = 0;      // mad already scaled by 1.4826
  std::vector<double> index;       // |l - median| / mad, 0 for labels above the median
  std::vector<size_t> flagged;     // positions with index > 2 and l < median
  size_t min_position = 0;         // the smallest norm
  double model_index = 0;          // the anomaly index of the smallest norm
};
MadResult mad_outliers(const std::vector<double>& l1);

}  // namespace dearest::defenses
