#include "tensor/ops/matmul.h"

#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

TEST(Matmul, SmallExact) {
  Tensor a = Tensor::arange(1, 7).reshape({2, 3});
  Tensor b = Tensor::arange(1, 7).reshape({3, 2});
  EXPECT_EQ(matmul(a, b).to_vector(), std::vector<double>({22, 28, 49, 64}));
  EXPECT_EQ(matmul(a, Tensor::arange(1, 4)).to_vector(), std::vector<double>({14, 32}));
  EXPECT_EQ(matmul(a.transpose(0, 1), a).at({2, 2}), 45);
  EXPECT_ERROR_CONTAINS(matmul(a, a), "matmul", "[2, 3]");
}

TEST(Matmul, FastMatchesReferenceOnOddShapes) {
  for (auto [m, k, n] : {std::tuple{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {128, 300, 10}}) {
    for (DType dt : {DType::F32, DType::F64}) {
      Tensor a = test::randn({m, k}, m * 7 + k, dt), b = test::randn({k, n}, n, dt);
      Tensor fast = matmul(a, b);
      Tensor ref;
      {
        BackendScope s(Backend::Reference);
        ref = matmul(a, b);
      }
      EXPECT_LT(test::rel_err(fast, ref), dt == DType::F32 ? 1e-5 : 1e-13) << m << "x" << k << "x" << n;
      // Transposed operands go to GEMM as transpose flags.
      Tensor at = a.transpose(0, 1).contiguous().transpose(0, 1);
      EXPECT_LT(test::rel_err(matmul(at, b), ref), dt == DType::F32 ? 1e-5 : 1e-13);
    }
  }
}

TEST(Matmul, BatchedAndLinear) {
  Tensor a = test::randn({4, 3, 5}, 1, DType::F64), b = test::randn({5, 2}, 2, DType::F64);
  Tensor y = matmul(a, b);
  EXPECT_EQ(y.shape(), Shape({4, 3, 2}));
  EXPECT_LT(test::rel_err(y.select(0, 2), matmul(a.select(0, 2), b)), 1e-15);
  Tensor x = test::randn({6, 5}, 3), w = test::randn({4, 5}, 4), bias = test::randn({4}, 5);
  Tensor l = linear(x, w, bias);
  EXPECT_EQ(l.shape(), Shape({6, 4}));
  double expect = bias.at({1});
  for (int j = 0; j < 5; ++j) expect += x.at({2, j}) * w.at({1, j});
  EXPECT_NEAR(l.at({2, 1}), expect, 1e-5);
  EXPECT_ERROR_CONTAINS(linear(x, Tensor::zeros({4, 6}), Tensor()), "linear", "[6, 5]", "[4, 6]");
}

}  // namespace
}  // namespace dearest::raw
