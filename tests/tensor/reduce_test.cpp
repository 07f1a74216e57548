#include "tensor/ops/reduce.h"

#include <omp.h>

#include <cmath>

#include "tests/test_util.h"

namespace dearest::raw {
namespace {

TEST(Reduce, SumMeanMaxMinOverDims) {
  Tensor t = Tensor::arange(0, 24, 1, DType::F64).reshape({2, 3, 4});
  EXPECT_EQ(sum(t).item(), 276);
  EXPECT_EQ(sum(t, {1}).shape(), Shape({2, 4}));
  EXPECT_EQ(sum(t, {1}).at({1, 2}), 14 + 18 + 22);
  EXPECT_EQ(sum(t, {0, 2}, true).shape(), Shape({1, 3, 1}));
  EXPECT_EQ(sum(t, {0, 2}, true).at({0, 1, 0}), (4 + 5 + 6 + 7) + (16 + 17 + 18 + 19));
  EXPECT_EQ(mean(t, {-1}).at({0, 0}), 1.5);
  EXPECT_EQ(reduce(Reduce::Max, t, {0, 1}).to_vector(), std::vector<double>({20, 21, 22, 23}));
  EXPECT_EQ(reduce(Reduce::Min, t.transpose(0, 2), {2}).at({3, 2}), 11);
  EXPECT_EQ(sum(Tensor::scalar(4)).item(), 4);
  EXPECT_EQ(sum(Tensor::zeros({0, 3}), {0}).to_vector(), std::vector<double>({0, 0, 0}));
  EXPECT_ERROR_CONTAINS(sum(t, {3}), "sum", "dim 3");
  EXPECT_ERROR_CONTAINS(reduce(Reduce::Max, Tensor::zeros({0})), "max", "empty");
}

TEST(Reduce, VarArgmaxSumTo) {
  Tensor t = Tensor::from_vector<double>({1, 2, 3, 4, 10, 0}, {2, 3});
  EXPECT_DOUBLE_EQ(var(t, {1}).at({0}), 1.0);
  EXPECT_DOUBLE_EQ(var(t, {1}, 0).at({0}), 2.0 / 3);
  EXPECT_DOUBLE_EQ(var(t).item(), 38.0 / 3);  // unbiased over all six: sum of squares 190/3, over 5
  EXPECT_EQ(argmax(t, 1).to_vector(), std::vector<double>({2, 1}));
  EXPECT_EQ(argmin(t, 0).to_vector(), std::vector<double>({0, 0, 1}));
  EXPECT_EQ(argmax(Tensor::from_vector<float>({1, 5, 5}, {3}), 0).item(), 1);  // first maximum
  EXPECT_EQ(argmax(Tensor::from_vector<float>({1, NAN, 5}, {3}), 0).item(), 1);
  Tensor g = Tensor::ones({4, 2, 3});
  EXPECT_EQ(sum_to(g, {2, 1}).to_vector(), std::vector<double>({12, 12}));
  EXPECT_EQ(sum_to(g, {3}).to_vector(), std::vector<double>({8, 8, 8}));
}

TEST(Reduce, LongReductionsAreExactAndThreadIndependent) {
  Tensor x = test::randn({1 << 20}, 3);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor s1 = sum(x), m1 = reduce(Reduce::Max, x), v1 = var(x);
  omp_set_num_threads(2);
  Tensor s2 = sum(x), m2 = reduce(Reduce::Max, x), v2 = var(x);
  omp_set_num_threads(saved);
  EXPECT_TRUE(test::bitwise_equal(s1, s2));
  EXPECT_TRUE(test::bitwise_equal(m1, m2));
  EXPECT_TRUE(test::bitwise_equal(v1, v2));
  double ref = 0;
  for (double v : x.to_vector()) ref += v;
  EXPECT_NEAR(s1.item(), ref, 1e-3);
}

}  // namespace
}  // namespace dearest::raw
