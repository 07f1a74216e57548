// CIFAR-10, binary version, read in place: the batch files' bytes are kept as they are (one
// buffer, no per-image objects) and an image is a zero-copy u8 view of its record.
#pragma once
#include "data/dataset.h"

namespace dearest::data {

// dir: the cifar-10-batches-bin folder or the folder holding it. split: "train" (whichever of
// data_batch_1..5.bin exist, in order) or "test" (test_batch.bin). Class names from
// batches.meta.txt when present.
DatasetPtr open_cifar10(const std::string& dir, const std::string& split);

}  // namespace dearest::data
