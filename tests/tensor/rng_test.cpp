#include "tensor/rng.h"

#include <omp.h>

#include "tests/test_util.h"

namespace dearest {
namespace {

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(Rng, PhiloxKnownAnswers) {
  auto a = philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(a, (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  auto b = philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff});
  EXPECT_EQ(b, (std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  auto c = philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0});
  EXPECT_EQ(c, (std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Rng, IndependentOfThreadCount) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor u1 = Rng(42, 3).uniform({300001}), n1 = Rng(42, 3).normal({300001}), i1 = Rng(42, 3).integers({300001}, -5, 9);
  omp_set_num_threads(2);
  Tensor u2 = Rng(42, 3).uniform({300001}), n2 = Rng(42, 3).normal({300001}), i2 = Rng(42, 3).integers({300001}, -5, 9);
  omp_set_num_threads(saved);
  EXPECT_TRUE(test::bitwise_equal(u1, u2));
  EXPECT_TRUE(test::bitwise_equal(n1, n2));
  EXPECT_TRUE(test::bitwise_equal(i1, i2));
}

TEST(Rng, StreamsAndSeedsDiffer) {
  EXPECT_FALSE(test::bitwise_equal(Rng(1, 0).uniform({16}), Rng(1, 1).uniform({16})));
  EXPECT_FALSE(test::bitwise_equal(Rng(1, 0).uniform({16}), Rng(2, 0).uniform({16})));
  Rng r(5);
  Tensor a = r.uniform({10});
  Tensor b = r.uniform({10});  // the counter moved on
  EXPECT_FALSE(test::bitwise_equal(a, b));
  Rng again(5);
  again.set_counter(3);  // 10 floats consumed ceil(10/4) = 3 blocks
  EXPECT_TRUE(test::bitwise_equal(again.uniform({10}), b));
}

TEST(Rng, DistributionMoments) {
  const int64_t n = 200000;
  auto moments = [](const Tensor& t) {
    auto v = t.to_vector();
    double m = 0, q = 0;
    for (double x : v) m += x;
    m /= v.size();
    for (double x : v) q += (x - m) * (x - m);
    return std::pair<double, double>(m, q / (v.size() - 1));
  };
  auto [um, uv] = moments(Rng(11).uniform({n}, 2, 4, DType::F64));
  EXPECT_NEAR(um, 3.0, 0.01);
  EXPECT_NEAR(uv, 4.0 / 12, 0.005);
  auto [nm, nv] = moments(Rng(12).normal({n}, 1, 2));
  EXPECT_NEAR(nm, 1.0, 0.02);
  EXPECT_NEAR(nv, 4.0, 0.05);
  Tensor ints = Rng(13).integers({n}, -3, 4);
  auto iv = ints.to_vector();
  std::vector<int> hist(7, 0);
  for (double x : iv) {
    ASSERT_GE(x, -3);
    ASSERT_LT(x, 4);
    hist[int(x) + 3]++;
  }
  for (int h : hist) EXPECT_NEAR(h, n / 7.0, 5 * std::sqrt(n / 7.0));
  auto [bm, bv] = moments(Rng(14).bernoulli({n}, 0.3));
  EXPECT_NEAR(bm, 0.3, 0.01);
  Tensor u = Rng(15).uniform({n});
  for (double x : u.to_vector()) ASSERT_TRUE(x >= 0 && x < 1);
}

TEST(Rng, PermutationIsAPermutation) {
  Rng r(3);
  auto p = r.permutation(1000);
  std::vector<int> seen(1000, 0);
  for (int64_t i : p) seen[i]++;
  for (int s : seen) EXPECT_EQ(s, 1);
  Rng r2(3);
  EXPECT_EQ(r2.permutation(1000), p);
  EXPECT_NE(Rng(4).permutation(1000), p);
}

}  // namespace
}  // namespace dearest
