#include "data/synthetic.h"

#include "data/image.h"
#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

TEST(Synthetic, DeterministicFromSeed) {
  SyntheticOptions o;
  o.size = 50;
  o.seed = 7;
  DatasetPtr a = open_synthetic("train", o), b = open_synthetic("train", o);
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_TRUE(dearest::test::bitwise_equal(a->image(i), b->image(i)));
    EXPECT_EQ(a->label(i), b->label(i));
  }
  o.seed = 8;
  EXPECT_FALSE(dearest::test::bitwise_equal(a->image(3), open_synthetic("train", o)->image(3)));
  o.seed = 7;
  EXPECT_FALSE(dearest::test::bitwise_equal(a->image(3), open_synthetic("test", o)->image(3)));
  EXPECT_EQ(a->image(0).shape(), Shape({3, 32, 32}));
  EXPECT_EQ(a->image(0).dtype(), DType::U8);
}

TEST(Synthetic, BalancedClasses) {
  SyntheticOptions o;
  o.size = 5000;
  DatasetPtr ds = open_synthetic("train", o);
  EXPECT_EQ(ds->num_classes(), 10);
  for (int64_t c : ds->class_counts()) EXPECT_NEAR(double(c), 500.0, 80.0);
}

// Not trivial: a nearest-class-mean classifier on raw pixels, fitted on 4000 images, stays far
// from solving 1000 others (colours and positions are random; the class is in shape and texture).
TEST(Synthetic, NotSolvableByPixelMeans) {
  SyntheticOptions o;
  o.size = 5000;
  DatasetPtr ds = open_synthetic("train", o);
  const int64_t D = 3 * 32 * 32;
  std::vector<std::vector<double>> mean(10, std::vector<double>(size_t(D), 0.0));
  std::vector<int> count(10, 0);
  for (int64_t i = 0; i < 4000; ++i) {
    auto v = ds->image(i).to_vector();
    for (int64_t k = 0; k < D; ++k) mean[size_t(ds->label(i))][size_t(k)] += v[size_t(k)];
    ++count[size_t(ds->label(i))];
  }
  for (int c = 0; c < 10; ++c)
    for (double& m : mean[size_t(c)]) m /= std::max(1, count[size_t(c)]);
  int correct = 0;
  for (int64_t i = 4000; i < 5000; ++i) {
    auto v = ds->image(i).to_vector();
    int best = 0;
    double bd = 1e300;
    for (int c = 0; c < 10; ++c) {
      double d = 0;
      for (int64_t k = 0; k < D; ++k) d += (v[size_t(k)] - mean[size_t(c)][size_t(k)]) * (v[size_t(k)] - mean[size_t(c)][size_t(k)]);
      if (d < bd) {
        bd = d;
        best = c;
      }
    }
    correct += best == ds->label(i);
  }
  EXPECT_LT(correct, 400) << "nearest-mean accuracy " << correct / 10.0 << "%";
  EXPECT_GT(correct, 50);  // ... yet there is signal (chance is 100)
}

}  // namespace
}  // namespace dearest::data
