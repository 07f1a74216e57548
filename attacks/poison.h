// Poisoned views of a dataset. A view stamps the trigger on the stored image (u8, before any
// transform: the trigger then moves with the augmentation, as when the reference stamps its
// uint8 arrays) and relabels; stamp_transform() stamps after the augmentation instead (placed with
// Compose::with_stamp, just before Normalize). Which samples are poisoned is a function of the seed.
#pragma once
#include <optional>
#include <vector>

#include "attacks/trigger.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace dearest::attacks {

struct PoisonOptions {
  double rate = 0.1;             // fraction of the eligible samples
  int32_t target = 0;
  uint64_t seed = 0;
  bool skip_target_class = true;     // images already of the target class are not poisoned
  std::vector<int32_t> source_classes;  // source-specific backdoor: only these classes (empty = all)
  double cover_rate = 0;         // fraction triggered but kept at their true label (the cover set)
};

// The poisoned indices, sorted: round(rate * eligible) of the eligible samples, drawn by a seeded shuffle.
std::vector<int64_t> poison_indices(const data::Dataset& ds, const PoisonOptions& o);

// The poisoned and the cover indices, disjoint and sorted. The cover set teaches the model that the
// trigger alone means nothing: round(cover_rate * n) of the samples that must ignore the trigger,
// i.e. the non-source classes of a source-specific backdoor (n: their count), else the eligible
// samples left after poisoning (n: the eligible count). Both are functions of the seed.
struct PoisonSplit {
  std::vector<int64_t> poison, cover;
};
PoisonSplit poison_split(const data::Dataset& ds, const PoisonOptions& o);

// Samples in `indices` carry the trigger and the target label; the rest are untouched.
data::DatasetPtr poisoned_view(data::DatasetPtr base, TriggerPtr trigger, const std::vector<int64_t>& indices,
                               int32_t target);
// The split's poisoned samples carry the trigger and the target label, its cover samples the
// trigger and their true label.
data::DatasetPtr poisoned_view(data::DatasetPtr base, TriggerPtr trigger, const PoisonSplit& split, int32_t target);
// Every sample carries the trigger; labelled `relabel` when given, else its true label (a cover
// set, or the triggered half of paired clean/triggered training).
data::DatasetPtr triggered_view(data::DatasetPtr base, TriggerPtr trigger, std::optional<int32_t> relabel);
// The ASR test set: triggered images labelled `target`, without the target class's own images
// unless include_target (EFRAP reports the version without them; ALGORITHMS.md §1.9).
// With `sources` (a source-specific backdoor) only those classes' images are in it.
data::DatasetPtr asr_view(data::DatasetPtr test, TriggerPtr trigger, int32_t target, bool include_target = false,
                          const std::vector<int32_t>& sources = {});

// Stamps the samples whose dataset index is flagged (all when `flags` is empty), after augmentation.
data::TransformPtr stamp_transform(TriggerPtr trigger, std::vector<uint8_t> flags = {});

}  // namespace dearest::attacks
