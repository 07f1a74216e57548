// Outlier channel splitting (Zhao et al., ICML'19; cornell-zhang/dnn-quant-ocs ocs_impl.py):
// the input channel with the largest |w| is halved and duplicated, n = ceil(ratio * I) times, so
// the weight range shrinks; the layer's input channel is duplicated at run time to match. Since a
// conv is linear in its weight, running the split layer on the duplicated input equals running the
// original layer with the duplicated columns folded back (added onto their source), which is how
// dearest evaluates it: split, quantize, fold.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace dearest::quant {

struct OcsSplit {
  Tensor weight;               // [O, I + n, ...]
  std::vector<int64_t> source; // for each appended channel, the original input channel it copies
  int64_t in_channels = 0;     // I
};

// Plain OCS: halve-and-duplicate n = ceil(ratio * I) times (a channel split before may be split
// again). grid_scale > 0 gives the grid-aware variant: the halves become (w*S/2 - 0.25)/S and
// (w*S/2 + 0.25)/S for the multiplicative scale S, so their sum stays w and their quantized sum
// lands on the grid. Differentiable in `w` (the split is linear).
OcsSplit ocs_split(const Tensor& w, double expand_ratio, double grid_scale = 0);
// Adds each appended channel back onto its source: [O, I + n, ...] -> [O, I, ...]. Differentiable.
Tensor ocs_fold(const Tensor& split_weight, const OcsSplit& s);
// The channel order OCS picks: the indices (into the growing tensor) split at each step.
std::vector<int64_t> ocs_pick_order(const Tensor& w, double expand_ratio);

}  // namespace dearest::quant
