#include "attacks/poison.h"

#include <algorithm>
#include <cmath>

#include "data/subset.h"
#include "tensor/rng.h"

namespace dearest::attacks {

namespace {

class Stamped : public data::Dataset {
 public:
  // flags: empty (every sample stamped and relabelled), else per sample 0 (untouched), kPoison
  // (stamped, relabelled) or kCover (stamped, true label).
  static constexpr uint8_t kPoison = 1, kCover = 2;
  Stamped(data::DatasetPtr base, TriggerPtr trigger, std::vector<uint8_t> flags, std::optional<int32_t> relabel,
          std::string what)
      : base_(std::move(base)), trigger_(std::move(trigger)), flags_(std::move(flags)), relabel_(relabel),
        what_(std::move(what)) {}
  int64_t size() const override { return base_->size(); }
  Tensor image(int64_t i) const override {
    Tensor img = base_->image(i);
    return stamped(i) ? trigger_->apply(img) : img;
  }
  int32_t label(int64_t i) const override {
    return relabel_ && (flags_.empty() || flags_[size_t(i)] == kPoison) ? *relabel_ : base_->label(i);
  }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  std::string describe() const override { return base_->describe() + " | " + what_; }

 private:
  bool stamped(int64_t i) const { return flags_.empty() || flags_[size_t(i)]; }
  data::DatasetPtr base_;
  TriggerPtr trigger_;
  std::vector<uint8_t> flags_;  // empty: every sample
  std::optional<int32_t> relabel_;
  std::string what_;
};

void check_target(const data::Dataset& ds, int32_t target) {
  DEAREST_CHECK(target >= 0 && target < ds.num_classes(), "poison: target label ", target, " outside the ",
                ds.num_classes(), " classes of ", ds.describe());
}

}  // namespace

PoisonSplit poison_split(const data::Dataset& ds, const PoisonOptions& o) {
  DEAREST_CHECK(o.rate >= 0 && o.rate <= 1, "poison: rate must be in [0, 1], got ", o.rate);
  DEAREST_CHECK(o.cover_rate >= 0 && o.cover_rate <= 1, "poison: cover rate must be in [0, 1], got ", o.cover_rate);
  check_target(ds, o.target);
  for (int32_t c : o.source_classes)
    DEAREST_CHECK(c >= 0 && c < ds.num_classes(), "poison: source class ", c, " outside the ", ds.num_classes(), " classes");
  const bool specific = !o.source_classes.empty();
  std::vector<int64_t> eligible, others;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int32_t y = ds.label(i);
    if (specific && std::find(o.source_classes.begin(), o.source_classes.end(), y) == o.source_classes.end()) {
      others.push_back(i);
      continue;
    }
    if (o.skip_target_class && y == o.target) continue;
    eligible.push_back(i);
  }
  // Fisher-Yates with the project's counter-based generator: the same indices for a seed anywhere.
  auto shuffle = [](std::vector<int64_t>& v, Rng rng) {
    for (int64_t i = int64_t(v.size()) - 1; i > 0; --i) std::swap(v[size_t(i)], v[size_t(rng.next_int(0, i + 1))]);
  };
  shuffle(eligible, Rng(o.seed, 0x9015011));
  PoisonSplit s;
  const int64_t n = std::llround(o.rate * double(eligible.size()));
  s.poison.assign(eligible.begin(), eligible.begin() + n);
  if (specific) {
    shuffle(others, Rng(o.seed, 0xc0fe5));
    s.cover.assign(others.begin(), others.begin() + std::llround(o.cover_rate * double(others.size())));
  } else {
    const int64_t c = std::llround(o.cover_rate * double(eligible.size()));
    DEAREST_CHECK(n + c <= int64_t(eligible.size()), "poison: rate ", o.rate, " + cover rate ", o.cover_rate,
                  " exceed the ", eligible.size(), " eligible samples");
    s.cover.assign(eligible.begin() + n, eligible.begin() + n + c);
  }
  std::sort(s.poison.begin(), s.poison.end());
  std::sort(s.cover.begin(), s.cover.end());
  return s;
}

std::vector<int64_t> poison_indices(const data::Dataset& ds, const PoisonOptions& o) {
  PoisonOptions p = o;
  p.cover_rate = 0;
  return poison_split(ds, p).poison;
}

data::DatasetPtr poisoned_view(data::DatasetPtr base, TriggerPtr trigger, const std::vector<int64_t>& indices,
                               int32_t target) {
  return poisoned_view(std::move(base), std::move(trigger), PoisonSplit{indices, {}}, target);
}

data::DatasetPtr poisoned_view(data::DatasetPtr base, TriggerPtr trigger, const PoisonSplit& split, int32_t target) {
  check_target(*base, target);
  std::vector<uint8_t> flags(static_cast<size_t>(base->size()), 0);
  for (const auto* set : {&split.poison, &split.cover})
    for (int64_t i : *set) {
      base->check_index(i);
      DEAREST_CHECK(flags[size_t(i)] == 0, "poison: sample ", i, " is both poisoned and cover");
      flags[size_t(i)] = set == &split.poison ? Stamped::kPoison : Stamped::kCover;
    }
  if (split.poison.empty() && split.cover.empty()) return base;
  std::string what = std::to_string(split.poison.size()) + " poisoned with " + trigger->describe() + " -> label " +
                     std::to_string(target);
  if (!split.cover.empty()) what += ", " + std::to_string(split.cover.size()) + " cover (true labels)";
  return std::make_shared<Stamped>(std::move(base), std::move(trigger), std::move(flags), target, what);
}

data::DatasetPtr triggered_view(data::DatasetPtr base, TriggerPtr trigger, std::optional<int32_t> relabel) {
  if (relabel) check_target(*base, *relabel);
  const std::string what = "all triggered with " + trigger->describe() +
                           (relabel ? " -> label " + std::to_string(*relabel) : std::string(", true labels"));
  return std::make_shared<Stamped>(std::move(base), std::move(trigger), std::vector<uint8_t>{}, relabel, what);
}

data::DatasetPtr asr_view(data::DatasetPtr test, TriggerPtr trigger, int32_t target, bool include_target,
                          const std::vector<int32_t>& sources) {
  check_target(*test, target);
  for (int32_t c : sources)
    DEAREST_CHECK(c >= 0 && c < int32_t(test->num_classes()), "source class ", c, " is outside the dataset's classes [0, ",
                  test->num_classes(), ")");
  data::DatasetPtr ds = test;
  if (!include_target || !sources.empty()) {
    std::vector<int32_t> kept;
    for (int32_t c = 0; c < int32_t(test->num_classes()); ++c) {
      const bool source = sources.empty() || std::find(sources.begin(), sources.end(), c) != sources.end();
      if (source && (include_target || c != target)) kept.push_back(c);
    }
    DEAREST_CHECK(!kept.empty(), "ASR set: no class left (the only source class is the target)");
    ds = data::filter_classes(test, kept);
  }
  return triggered_view(ds, std::move(trigger), target);
}

data::TransformPtr stamp_transform(TriggerPtr trigger, std::vector<uint8_t> flags) {
  const std::string name = "Stamp(" + trigger->describe() + (flags.empty() ? ", all" : ", flagged samples") + ")";
  return data::lambda(name, [trigger, flags](const Tensor& img, Rng&, const data::SampleInfo& info) {
    if (!flags.empty() && (info.index < 0 || info.index >= int64_t(flags.size()) || !flags[size_t(info.index)])) return img;
    return trigger->apply(img);
  }, false);
}

}  // namespace dearest::attacks
