// The calibration set: EFRAP's recipe by default (ALGORITHMS.md §1.3): the first 5% of the
// training split, with the training augmentation, shuffled once, the first `size` images in
// batches of `batch`. Drawn once and reused, so calibration is deterministic for a seed.
#pragma once
#include <string>
#include <vector>

#include "data/registry.h"
#include "tensor/tensor.h"

namespace dearest::quant {

struct CalibOptions {
  int64_t size = 1024;
  int64_t batch = 32;
  double pool = 0.05;        // fraction of the split (from its start) the images are drawn from
  bool augment = true;       // the training transforms, as the reference keeps them
  std::string split;         // empty: the training split
  uint64_t seed = 1005;      // EFRAP's seed_all(1005)
};

std::vector<Tensor> calibration_batches(const data::DataSpec& spec, const CalibOptions& o);

}  // namespace dearest::quant
