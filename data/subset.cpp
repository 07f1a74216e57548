#include "data/subset.h"

#include <cmath>

#include "tensor/rng.h"

namespace dearest::data {

Subset::Subset(DatasetPtr base, std::vector<int64_t> indices, std::string what)
    : base_(std::move(base)), indices_(std::move(indices)), what_(std::move(what)) {
  for (int64_t i : indices_) base_->check_index(i);
}

std::string Subset::describe() const {
  return base_->describe() + " | " + what_ + " (" + std::to_string(size()) + " images)";
}

DatasetPtr index_range(const DatasetPtr& ds, int64_t begin, int64_t end) {
  DEAREST_CHECK(0 <= begin && begin <= end && end <= ds->size(), ds->describe(), ": index range [", begin, ", ", end,
                ") outside [0, ", ds->size(), "]");
  std::vector<int64_t> idx(size_t(end - begin));
  for (int64_t i = begin; i < end; ++i) idx[size_t(i - begin)] = i;
  return std::make_shared<Subset>(ds, std::move(idx), "indices [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
}

DatasetPtr fraction_range(const DatasetPtr& ds, double from, double to) {
  DEAREST_CHECK(0 <= from && from <= to && to <= 1, ds->describe(), ": fraction range [", from, ", ", to,
                ") outside [0, 1]");
  const auto n = static_cast<double>(ds->size());
  return index_range(ds, static_cast<int64_t>(std::floor(from * n)), static_cast<int64_t>(std::floor(to * n)));
}

std::vector<DatasetPtr> random_split(const DatasetPtr& ds, const std::vector<int64_t>& sizes, uint64_t seed) {
  int64_t total = 0;
  for (int64_t s : sizes) {
    DEAREST_CHECK(s >= 0, "random_split: negative part size ", s);
    total += s;
  }
  DEAREST_CHECK(total <= ds->size(), ds->describe(), ": random_split parts sum to ", total, " > ", ds->size());
  Rng rng(seed, 0x5e11);
  std::vector<int64_t> perm = rng.permutation(ds->size());
  std::vector<DatasetPtr> parts;
  int64_t at = 0;
  for (size_t p = 0; p < sizes.size(); ++p) {
    std::vector<int64_t> idx(perm.begin() + at, perm.begin() + at + sizes[p]);
    at += sizes[p];
    parts.push_back(std::make_shared<Subset>(ds, std::move(idx),
                                             "random split part " + std::to_string(p) + " (seed " + std::to_string(seed) + ")"));
  }
  return parts;
}

DatasetPtr filter_classes(const DatasetPtr& ds, const std::vector<int32_t>& classes) {
  std::vector<bool> keep(size_t(ds->num_classes()), false);
  std::string names;
  for (int32_t c : classes) {
    DEAREST_CHECK(c >= 0 && c < ds->num_classes(), ds->describe(), ": class ", c, " out of range [0, ",
                  ds->num_classes(), ")");
    keep[size_t(c)] = true;
    if (!names.empty()) names += ',';
    names += std::to_string(c);
  }
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < ds->size(); ++i)
    if (keep[size_t(ds->label(i))]) idx.push_back(i);
  return std::make_shared<Subset>(ds, std::move(idx), "classes {" + names + "}");
}

}  // namespace dearest::data
