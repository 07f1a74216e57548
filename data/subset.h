// Views of a dataset: index lists, ranges (e.g. EFRAP's calibration set, the first 5% of train),
// seeded random splits and per-class filters. A subset keeps the base's class names and labels;
// base_index() maps back, so anything derived stays traceable to the original file and record.
#pragma once
#include <vector>

#include "data/dataset.h"

namespace dearest::data {

class Subset : public Dataset {
 public:
  Subset(DatasetPtr base, std::vector<int64_t> indices, std::string what);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Tensor image(int64_t i) const override { return base_->image(indices_[size_t(i)]); }
  int32_t label(int64_t i) const override { return base_->label(indices_[size_t(i)]); }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  std::string describe() const override;
  int64_t base_index(int64_t i) const { return indices_[size_t(i)]; }
  const DatasetPtr& base() const { return base_; }

 private:
  DatasetPtr base_;
  std::vector<int64_t> indices_;
  std::string what_;
};

// Indices [begin, end) of the base.
DatasetPtr index_range(const DatasetPtr& ds, int64_t begin, int64_t end);
// The fraction [from, to) of the base by position: floor(from * n) .. floor(to * n).
DatasetPtr fraction_range(const DatasetPtr& ds, double from, double to);
// A seeded random partition into parts of the given sizes (which must sum to at most the size).
std::vector<DatasetPtr> random_split(const DatasetPtr& ds, const std::vector<int64_t>& sizes, uint64_t seed);
// Only the samples whose label is in `classes`, in base order (labels are not renumbered).
DatasetPtr filter_classes(const DatasetPtr& ds, const std::vector<int32_t>& classes);

}  // namespace dearest::data
