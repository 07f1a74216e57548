// Training batches for the attacks: each batch is a clean half followed by triggered copies of
// (some of) the same images. The triggered copies are either the very same augmented images with
// the trigger stamped just before normalization (CompArtifact, PQBackdoor), or the stored image
// stamped first and augmented on its own (Qu-ANTI-zation's _blend_backdoor: the trigger may move
// or flip). Batches are a pure function of (seed, epoch, batch number), so runs resume exactly.
#pragma once
#include <optional>

#include "attacks/trigger.h"
#include "data/loader.h"
#include "nn/trainer.h"

namespace dearest::attacks {

enum class Stamping { AfterAugment, BeforeAugment };
Stamping parse_stamping(const std::string& s);  // after-augment | before-augment

struct PairingOptions {
  int64_t batch = 128;                 // clean images per batch
  int64_t triggered = -1;              // triggered copies per batch (the first ones); -1: all
  Stamping stamping = Stamping::AfterAugment;
  std::optional<int32_t> relabel;      // the triggered copies' label; none: their true label
  uint64_t seed = 0;
  data::TransformPtr extra_front;      // e.g. the JPEG augmentation, first in the training transform
};

class PairedSource : public nn::BatchSource {
 public:
  PairedSource(data::DatasetPtr train, const std::string& kind, TriggerPtr trigger, PairingOptions o);
  int64_t num_batches() const override { return clean_->num_batches(); }
  int64_t num_samples() const override { return clean_->dataset()->size(); }
  void begin_epoch(int64_t epoch) override;
  // images: [clean; triggered], labels: [true labels; relabel or true labels].
  void get(int64_t b, Tensor& images, Tensor& labels) override;
  // The number of clean images at the front of a batch of n images from get().
  int64_t clean_count(int64_t n) const;

 private:
  PairingOptions o_;
  std::shared_ptr<data::DataLoader> clean_, triggered_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace dearest::attacks
