// A DataLoader as the trainer's batch source: batch b of epoch e, exactly as the loader defines
// it (so a resumed run sees the same batches).
#pragma once
#include "data/loader.h"
#include "nn/trainer.h"

namespace dearest::data {

class LoaderSource : public nn::BatchSource {
 public:
  explicit LoaderSource(std::shared_ptr<DataLoader> loader) : loader_(std::move(loader)) {}
  int64_t num_batches() const override { return loader_->num_batches(); }
  int64_t num_samples() const override { return loader_->dataset()->size(); }
  void begin_epoch(int64_t epoch) override {
    epoch_ = epoch;
    order_ = loader_->order(epoch);
  }
  void get(int64_t b, Tensor& images, Tensor& labels) override {
    Batch batch = loader_->batch(epoch_, b, order_);
    images = batch.images;
    labels = batch.labels;
  }
  DataLoader& loader() { return *loader_; }

 private:
  std::shared_ptr<DataLoader> loader_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace dearest::data
