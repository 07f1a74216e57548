#include "data/dataset.h"

namespace dearest::data {

Sample Dataset::get(int64_t i) const {
  check_index(i);
  return {image(i), label(i), i};
}

void Dataset::check_index(int64_t i) const {
  DEAREST_CHECK(i >= 0 && i < size(), describe(), ": index ", i, " out of range [0, ", size(), ")");
}

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> c(size_t(num_classes()), 0);
  for (int64_t i = 0; i < size(); ++i) {
    const int32_t l = label(i);
    if (l >= 0 && l < num_classes()) ++c[size_t(l)];
  }
  return c;
}

}  // namespace dearest::data
