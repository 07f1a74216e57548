// Image transforms as the reference code uses them (torchvision semantics, our own RNG). A
// transform maps an image [C, H, W] (u8 or f32) to an image; randomness comes from an Rng made
// from (seed, epoch, index), so a sample's augmentation is the same whatever the batch order or
// thread count. Attacks hook in with with_stamp(): a transform that edits the image in [0, 1]
// space, placed before normalization as EFRAP, PQBackdoor and CompArtifact do.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/rng.h"
#include "tensor/tensor.h"

namespace dearest::data {

struct SampleInfo {
  int64_t index = 0;  // in the dataset being loaded
  int32_t label = 0;
};

class Transform {
 public:
  virtual ~Transform() = default;
  virtual Tensor apply(const Tensor& image, Rng& rng, const SampleInfo& info) const = 0;
  virtual std::string describe() const = 0;
  virtual bool is_normalize() const { return false; }
};
using TransformPtr = std::shared_ptr<const Transform>;

// The generator a sample's transform draws from.
Rng sample_rng(uint64_t seed, int64_t epoch, int64_t index);

class Compose : public Transform {
 public:
  explicit Compose(std::vector<TransformPtr> steps) : steps_(std::move(steps)) {}
  Tensor apply(const Tensor& image, Rng& rng, const SampleInfo& info) const override;
  std::string describe() const override;
  const std::vector<TransformPtr>& steps() const { return steps_; }
  // A copy with `stamp` inserted just before the first Normalize (at the end if there is none).
  std::shared_ptr<Compose> with_stamp(TransformPtr stamp) const;
  // A copy without its random steps (for showing un-augmented samples).
  std::shared_ptr<Compose> deterministic_only() const;
  // A copy with `step` first.
  std::shared_ptr<Compose> with_front(TransformPtr step) const;
  // A copy without Normalize (images stay in [0, 1], for looking at them).
  std::shared_ptr<Compose> without_normalize() const;

 private:
  std::vector<TransformPtr> steps_;
};

TransformPtr to_float();                                      // u8 -> f32 / 255
TransformPtr normalize(std::array<float, 3> mean, std::array<float, 3> std);
TransformPtr random_crop(int64_t h, int64_t w, int64_t padding, double fill = 0);  // zero padding by default
TransformPtr random_horizontal_flip(double p = 0.5);
TransformPtr resize(int64_t h, int64_t w);                    // bilinear, f32
TransformPtr center_crop(int64_t h, int64_t w);
TransformPtr random_resized_crop(int64_t h, int64_t w, std::array<double, 2> scale = {0.08, 1.0},
                                 std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0});
// With probability p, re-encodes the u8 image as JPEG at a quality drawn uniformly from
// [q_min, q_max] (an f32 image in [0, 1] is rounded to u8 first and returned as f32).
TransformPtr random_jpeg(double p, int q_min, int q_max);
// Always re-encodes at `quality` (for evaluating under JPEG loss).
TransformPtr jpeg(int quality);
// "P:QMIN:QMAX" or "P:Q" (e.g. 0.5:60:90) -> random_jpeg; `what` names the option in errors.
TransformPtr parse_random_jpeg(const std::string& text, const std::string& what = "jpeg augmentation");
// Any function of (image, rng, info): the hook for triggers and custom steps.
TransformPtr lambda(std::string name, std::function<Tensor(const Tensor&, Rng&, const SampleInfo&)> fn,
                    bool random = true);

// Per-dataset statistics and the reference pipelines (ALGORITHMS.md §7).
struct Normalization {
  std::array<float, 3> mean, std;
};
Normalization normalization_of(const std::string& kind);  // cifar10, tiny-imagenet, imagenette, synthetic
std::shared_ptr<Compose> train_transform(const std::string& kind, int64_t image_size = 0);
std::shared_ptr<Compose> test_transform(const std::string& kind, int64_t image_size = 0);

}  // namespace dearest::data
