// Batches of transformed samples. The order of an epoch is a permutation drawn from
// Rng(seed, epoch) (our own Fisher-Yates, identical on every standard library); a sample's
// augmentation depends only on (seed, epoch, index). So a batch is a pure function of
// (dataset, transform, options, epoch, batch number): reading an epoch twice gives identical
// batches, and resuming mid-epoch needs only those numbers.
//
// Samples of a batch are decoded and transformed in parallel on the OpenMP pool the kernels use,
// each writing its own slot. With `prefetch`, the next batch is built on a background thread
// (serially) while the trainer computes; bench/data measures which is faster on a given machine.
#pragma once
#include <future>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"

namespace dearest::data {

struct Batch {
  Tensor images;                 // f32 [B, C, H, W] (or the transform's dtype)
  Tensor labels;                 // i32 [B]
  std::vector<int64_t> indices;  // dataset indices, in batch order
  int64_t epoch = 0, number = 0;
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  bool prefetch = false;
};

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, TransformPtr transform, LoaderOptions opt);

  int64_t num_batches() const;
  std::vector<int64_t> order(int64_t epoch) const;  // dataset indices in epoch order
  // Batch `b` of an epoch whose order is `order` (from order(epoch)).
  Batch batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order) const;
  // One transformed sample, as it appears in every batch of that epoch.
  Tensor sample(int64_t epoch, int64_t index) const;

  class Epoch {
   public:
    bool next(Batch& out);  // false when the epoch is done
   private:
    friend class DataLoader;
    Epoch(const DataLoader* l, int64_t epoch, int64_t first);
    const DataLoader* loader_;
    int64_t epoch_, next_;
    std::shared_ptr<const std::vector<int64_t>> order_;  // shared with a prefetch in flight
    std::future<Batch> pending_;
  };
  // Iterates an epoch from batch `first` on (for resuming).
  Epoch epoch(int64_t e, int64_t first = 0) const { return Epoch(this, e, first); }

  const DatasetPtr& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return opt_; }

 private:
  DatasetPtr dataset_;
  TransformPtr transform_;
  LoaderOptions opt_;
};

}  // namespace dearest::data
