// A contact sheet: a grid image with one row per class and a few samples per row, for looking at
// a dataset and at what its augmentation does.
#pragma once
#include <string>

#include "data/dataset.h"
#include "data/transforms.h"

namespace dearest::data {

// Takes the first `per_class` samples of each class (in dataset order), applies `transform`
// (which must yield f32 [3, H, W] in [0, 1], e.g. a pipeline without Normalize) with
// sample_rng(seed, epoch, index), scales each to `tile` x `tile`, and writes a PNG.
// Only the first `max_classes` classes get a row.
void write_contact_sheet(const Dataset& ds, const Transform& transform, int64_t per_class, int64_t tile,
                         const std::string& path, int64_t max_classes = 20, uint64_t seed = 0, int64_t epoch = 0);

}  // namespace dearest::data
