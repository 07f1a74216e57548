#include "tensor/ops/elementwise.h"

#include <cmath>

#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

TEST(Elementwise, BroadcastingArithmetic) {
  Tensor a = Tensor::arange(0, 6).reshape({2, 3});
  Tensor b = Tensor::from_vector<float>({10, 20, 30}, {3});
  EXPECT_EQ(binary(Binary::Add, a, b).to_vector(), std::vector<double>({10, 21, 32, 13, 24, 35}));
  Tensor c = Tensor::from_vector<float>({1, 2}, {2, 1});
  EXPECT_EQ(binary(Binary::Mul, a, c).to_vector(), std::vector<double>({0, 1, 2, 6, 8, 10}));
  EXPECT_EQ(binary(Binary::Sub, 1.0, a).to_vector(), std::vector<double>({1, 0, -1, -2, -3, -4}));
  EXPECT_EQ(binary(Binary::Div, a, 2.0).at({1, 2}), 2.5);
  EXPECT_EQ(binary(Binary::Pow, a, 2.0).at({1, 1}), 16);
  // Non-contiguous operands.
  EXPECT_EQ(binary(Binary::Add, a.transpose(0, 1), a.transpose(0, 1)).to_vector(),
            std::vector<double>({0, 6, 2, 8, 4, 10}));
}

TEST(Elementwise, RoundingModesDiffer) {
  Tensor x = Tensor::from_vector<float>({0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, -2.6f}, {8});
  EXPECT_EQ(unary(Unary::RoundHalfEven, x).to_vector(), std::vector<double>({0, 2, 2, -0.0, -2, -2, 2, -3}));
  EXPECT_EQ(unary(Unary::RoundHalfAway, x).to_vector(), std::vector<double>({1, 2, 3, -1, -2, -3, 2, -3}));
  EXPECT_EQ(unary(Unary::Floor, x).to_vector(), std::vector<double>({0, 1, 2, -1, -2, -3, 2, -3}));
  EXPECT_EQ(unary(Unary::Ceil, x).to_vector(), std::vector<double>({1, 2, 3, -0.0, -1, -2, 3, -2}));
  EXPECT_EQ(unary(Unary::Sign, x).to_vector(), std::vector<double>({1, 1, 1, -1, -1, -1, 1, -1}));
}

TEST(Elementwise, FastMatchesReference) {
  Tensor x = test::randn({3, 5, 7, 9}, 1);
  Tensor pos = test::randu({3, 5, 7, 9}, 2, 0.01, 5);
  for (Unary op : {Unary::Exp, Unary::Log, Unary::Sqrt, Unary::Abs, Unary::Sigmoid, Unary::Tanh, Unary::Relu,
                   Unary::Square, Unary::Neg}) {
    const Tensor& in = (op == Unary::Log || op == Unary::Sqrt) ? pos : x;
    Tensor fast = unary(op, in);
    Tensor ref;
    {
      BackendScope s(Backend::Reference);
      ref = unary(op, in);
    }
    EXPECT_LT(test::rel_err(fast, ref), 1e-6) << unary_name(op);
  }
}

TEST(Elementwise, ComparisonsClampWhere) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3});
  Tensor b = Tensor::from_vector<float>({3, 2, 1}, {3});
  EXPECT_EQ(compare(Compare::Lt, a, b).to_vector(), std::vector<double>({1, 0, 0}));
  EXPECT_EQ(compare(Compare::Ge, a, b).to_vector(), std::vector<double>({0, 1, 1}));
  EXPECT_EQ(compare(Compare::Eq, a, 2.0).dtype(), DType::U8);
  EXPECT_EQ(clamp(a, 1.5, 2.5).to_vector(), std::vector<double>({1.5, 2, 2.5}));
  EXPECT_EQ(clamp(a, -INFINITY, 2).to_vector(), std::vector<double>({1, 2, 2}));
  EXPECT_EQ(where(compare(Compare::Gt, a, b), a, b).to_vector(), std::vector<double>({3, 2, 3}));
  EXPECT_EQ(binary(Binary::Maximum, a, b).to_vector(), std::vector<double>({3, 2, 3}));
  EXPECT_TRUE(std::isnan(binary(Binary::Maximum, Tensor::scalar(NAN), Tensor::scalar(1)).item()));
}

TEST(Elementwise, IntegerOps) {
  Tensor a = Tensor::from_vector<int32_t>({-3, 4}, {2});
  EXPECT_EQ(binary(Binary::Add, a, a).to_vector(), std::vector<double>({-6, 8}));
  EXPECT_EQ(unary(Unary::Abs, a).to_vector(), std::vector<double>({3, 4}));
  EXPECT_ERROR_CONTAINS(unary(Unary::Exp, a), "exp", "floating");
  EXPECT_ERROR_CONTAINS(binary(Binary::Div, a, a), "div", "integer");
}

TEST(Elementwise, ErrorsNameOpAndShapes) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 3});
  EXPECT_ERROR_CONTAINS(binary(Binary::Add, a, b), "add", "[2, 3]", "[4, 3]");
  EXPECT_ERROR_CONTAINS(binary(Binary::Mul, a, Tensor::zeros({2, 3}, DType::F64)), "mul", "dtype", "f32[2, 3]",
                        "f64[2, 3]");
  EXPECT_ERROR_CONTAINS(where(a, a, a), "where", "u8");
}

}  // namespace
}  // namespace dearest::raw
