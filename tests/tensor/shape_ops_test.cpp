#include "tensor/ops/shape_ops.h"

#include "tests/test_util.h"

namespace dearest::raw {
namespace {

TEST(ShapeOps, CatPadIndexGather) {
  Tensor a = Tensor::arange(0, 6).reshape({2, 3}), b = Tensor::arange(6, 8).reshape({2, 1});
  Tensor c = cat({a, b}, 1);
  EXPECT_EQ(c.to_vector(), std::vector<double>({0, 1, 2, 6, 3, 4, 5, 7}));
  EXPECT_EQ(cat({a, a}, 0).shape(), Shape({4, 3}));
  EXPECT_ERROR_CONTAINS(cat({a, b}, 0), "cat", "[2, 1]", "[2, 3]");
  Tensor p = pad(Tensor::ones({1, 1, 2, 2}), {1, 2, 0, 1}, -1);
  EXPECT_EQ(p.shape(), Shape({1, 1, 3, 5}));
  EXPECT_EQ(p.at({0, 0, 0, 0}), -1);
  EXPECT_EQ(p.at({0, 0, 1, 2}), 1);
  EXPECT_EQ(p.at({0, 0, 2, 2}), -1);
  Tensor idx = Tensor::from_vector<int32_t>({2, 0, 2}, {3});
  EXPECT_EQ(index_select(a, 1, idx).to_vector(), std::vector<double>({2, 0, 2, 5, 3, 5}));
  EXPECT_ERROR_CONTAINS(index_select(a, 1, Tensor::from_vector<int32_t>({3}, {1})), "index_select", "index 3",
                        "[2, 3]");
  Tensor acc = index_add({2, 4}, 1, idx, Tensor::ones({2, 3}));
  EXPECT_EQ(acc.to_vector(), std::vector<double>({1, 0, 2, 0, 1, 0, 2, 0}));
  Tensor gi = Tensor::from_vector<int32_t>({1, 1, 0, 2}, {2, 2});
  EXPECT_EQ(gather(a, 1, gi).to_vector(), std::vector<double>({1, 1, 3, 5}));
  EXPECT_EQ(scatter_add({2, 3}, 1, gi, Tensor::ones({2, 2})).to_vector(), std::vector<double>({0, 2, 0, 1, 0, 1}));
  EXPECT_ERROR_CONTAINS(gather(a, 1, Tensor::from_vector<int32_t>({5}, {1, 1})), "gather", "index 5");
  EXPECT_ERROR_CONTAINS(gather(a, 1, Tensor::zeros({2, 2})), "gather", "i32");
}

}  // namespace
}  // namespace dearest::raw
