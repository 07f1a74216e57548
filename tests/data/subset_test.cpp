#include "data/subset.h"

#include <set>

#include "data/synthetic.h"
#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

DatasetPtr base(int64_t n) {
  SyntheticOptions o;
  o.size = n;
  return open_synthetic("train", o);
}

TEST(Subset, RangesSplitsFilters) {
  DatasetPtr ds = base(1000);
  DatasetPtr first5 = fraction_range(ds, 0, 0.05);  // EFRAP's calibration set: the first 5%
  EXPECT_EQ(first5->size(), 50);
  EXPECT_EQ(first5->label(7), ds->label(7));
  EXPECT_TRUE(dearest::test::bitwise_equal(first5->image(7), ds->image(7)));
  DatasetPtr mid = index_range(ds, 100, 150);
  EXPECT_EQ(std::static_pointer_cast<const Subset>(mid)->base_index(0), 100);
  auto parts = random_split(ds, {600, 300}, 42);
  auto parts2 = random_split(ds, {600, 300}, 42);
  EXPECT_EQ(parts[0]->size(), 600);
  std::set<int64_t> seen;
  for (auto& p : parts)
    for (int64_t i = 0; i < p->size(); ++i) seen.insert(std::static_pointer_cast<const Subset>(p)->base_index(i));
  EXPECT_EQ(seen.size(), 900u);  // disjoint
  for (int64_t i = 0; i < 600; ++i)
    EXPECT_EQ(std::static_pointer_cast<const Subset>(parts[0])->base_index(i),
              std::static_pointer_cast<const Subset>(parts2[0])->base_index(i));
  DatasetPtr cats = filter_classes(ds, {3, 5});
  for (int64_t i = 0; i < cats->size(); ++i) EXPECT_TRUE(cats->label(i) == 3 || cats->label(i) == 5);
  EXPECT_EQ(cats->size(), ds->class_counts()[3] + ds->class_counts()[5]);
  EXPECT_ERROR_CONTAINS(index_range(ds, 900, 1100), "index range", "[900, 1100)");
  EXPECT_ERROR_CONTAINS(random_split(ds, {800, 300}, 1), "sum to 1100");
  EXPECT_ERROR_CONTAINS(filter_classes(ds, {10}), "class 10");
  EXPECT_NE(cats->describe().find("classes {3,5}"), std::string::npos);
}

}  // namespace
}  // namespace dearest::data
