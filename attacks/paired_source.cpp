#include "attacks/paired_source.h"

#include "attacks/poison.h"
#include "data/transforms.h"

namespace dearest::attacks {

Stamping parse_stamping(const std::string& s) {
  if (s == "before-augment") return Stamping::BeforeAugment;
  if (s == "after-augment") return Stamping::AfterAugment;
  fail("stamping: expected before-augment or after-augment, got \"", s, "\"");
}

PairedSource::PairedSource(data::DatasetPtr train, const std::string& kind, TriggerPtr trigger, PairingOptions o)
    : o_(std::move(o)) {
  DEAREST_CHECK(o_.batch > 0, "paired batches: batch size must be positive, got ", o_.batch);
  DEAREST_CHECK(o_.triggered == -1 || (o_.triggered >= 0 && o_.triggered <= o_.batch),
                "paired batches: triggered copies per batch must be in [0, batch] (or -1 for all), got ", o_.triggered);
  if (o_.relabel) DEAREST_CHECK(*o_.relabel >= 0 && *o_.relabel < int32_t(train->num_classes()), "target label ",
                                *o_.relabel, " is outside the dataset's classes [0, ", train->num_classes(), ")");
  auto tf = data::train_transform(kind);
  if (o_.extra_front) tf = tf->with_front(o_.extra_front);
  data::LoaderOptions lo;
  lo.batch_size = o_.batch;
  lo.shuffle = true;
  lo.seed = o_.seed;
  clean_ = std::make_shared<data::DataLoader>(train, tf, lo);
  if (o_.stamping == Stamping::AfterAugment) {
    // Same seed, same transform up to the stamp: the copy is the clean image plus the trigger.
    triggered_ = std::make_shared<data::DataLoader>(train, tf->with_stamp(stamp_transform(trigger)), lo);
  } else {
    data::LoaderOptions lt = lo;
    lt.seed = o_.seed ^ 0x7219'93e1'5a1c'0bd3ULL;  // independent augmentation of the copy
    triggered_ = std::make_shared<data::DataLoader>(triggered_view(train, trigger, std::nullopt), tf, lt);
  }
}

void PairedSource::begin_epoch(int64_t epoch) {
  epoch_ = epoch;
  order_ = clean_->order(epoch);
}

int64_t PairedSource::clean_count(int64_t n) const {
  if (o_.triggered < 0) return n / 2;
  // n = c + min(c, triggered)
  return n - std::min(o_.triggered, n / 2);
}

void PairedSource::get(int64_t b, Tensor& images, Tensor& labels) {
  data::Batch c = clean_->batch(epoch_, b, order_);
  if (o_.triggered == 0) {
    images = c.images;
    labels = c.labels;
    return;
  }
  data::Batch t = triggered_->batch(epoch_, b, order_);  // the clean batch's order: the same images
  const int64_t n = c.labels.numel(), k = o_.triggered < 0 ? n : std::min(o_.triggered, n);
  Tensor ti = t.images.slice(0, 0, k), tl = t.labels.slice(0, 0, k).contiguous();
  if (o_.relabel) tl = Tensor::full({k}, *o_.relabel, DType::I32);
  images = cat({c.images, ti}, 0);
  labels = cat({c.labels, tl}, 0);
}

}  // namespace dearest::attacks
