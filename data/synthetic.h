// A dataset that needs no files: 10 classes of textured shapes (disk, square, triangle, ring,
// cross; each solid or striped) with random colours, position, size, rotation, a gradient
// background and pixel noise. Learnable but not trivial: colour carries no class information and
// solid/striped must be told apart from texture. Every image is a pure function of
// (seed, split, index), generated on access: nothing is stored.
#pragma once
#include "data/dataset.h"

namespace dearest::data {

struct SyntheticOptions {
  int64_t size = 10000;  // images in this split
  int64_t image_size = 32;
  uint64_t seed = 0;
};

// split: "train" or "test" (independent streams of the same generator).
DatasetPtr open_synthetic(const std::string& split, const SyntheticOptions& opt = {});

}  // namespace dearest::data
