#include "autograd/engine.h"

#include "autograd/ops.h"
#include "tests/test_util.h"

namespace dearest {
namespace {

TEST(Engine, ChainRuleAndAccumulation) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad();
  Tensor y = sum(x * x + 3.0 * x);  // dy/dx = 2x + 3
  backward(y);
  EXPECT_EQ(x.grad().to_vector(), std::vector<double>({5, 7, 9}));
  backward(sum(x));  // a second graph: gradients add up
  EXPECT_EQ(x.grad().to_vector(), std::vector<double>({6, 8, 10}));
  x.set_grad(Tensor());
  backward(sum(mul(x, x)));  // x used twice by one op
  EXPECT_EQ(x.grad().to_vector(), std::vector<double>({2, 4, 6}));
}

TEST(Engine, DiamondGraphAndRetainGrad) {
  Tensor x = Tensor::from_vector<double>({2}, {1}).set_requires_grad();
  Tensor a = exp(x);
  retain_grad(a);
  Tensor y = sum(a * a + a);  // dy/da = 2a + 1
  backward(y);
  const double e2 = std::exp(2.0);
  EXPECT_NEAR(a.grad().item(), 2 * e2 + 1, 1e-9);
  EXPECT_NEAR(x.grad().item(), (2 * e2 + 1) * e2, 1e-9);
}

TEST(Engine, NoGradDetachAndRequiresGrad) {
  Tensor x = Tensor::ones({2}, DType::F64).set_requires_grad();
  {
    NoGradGuard g;
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_TRUE((x * 2.0).requires_grad());
  EXPECT_FALSE((x * 2.0).is_leaf());
  Tensor d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_ERROR_CONTAINS(backward(sum(d)), "backward", "does not require grad");
  EXPECT_ERROR_CONTAINS(backward(x * 2.0), "backward", "non-scalar");
  EXPECT_ERROR_CONTAINS((x * 2.0).set_requires_grad(), "leaf");
  EXPECT_ERROR_CONTAINS(Tensor::zeros({2}, DType::I32).set_requires_grad(), "floating");
}

TEST(Engine, GraphFreedAfterBackwardUnlessRetained) {
  Tensor x = Tensor::ones({2}, DType::F64).set_requires_grad();
  Tensor y = sum(exp(x));
  backward(y, Tensor(), true);
  backward(y);  // retained: fine
  EXPECT_NEAR(x.grad().at({0}), 2 * std::exp(1.0), 1e-12);
  EXPECT_ERROR_CONTAINS(backward(y), "already freed", "retain_graph");
}

TEST(Engine, InPlaceChangeOfSavedTensorIsCaught) {
  Tensor x = Tensor::ones({2}, DType::F64).set_requires_grad();
  Tensor w = Tensor::full({2}, 3.0, DType::F64);
  Tensor y = sum(x * w);
  w.fill_(5);  // mul saved w for x's gradient
  EXPECT_ERROR_CONTAINS(backward(y), "modified in place");
}

TEST(Engine, HooksSeeGradients) {
  Tensor x = Tensor::ones({3}, DType::F64).set_requires_grad();
  Tensor h = x * 4.0;
  Tensor seen;
  register_grad_hook(h, [&](const Tensor& g) { seen = g; });
  backward(sum(h * 2.0));
  ASSERT_TRUE(seen.defined());
  EXPECT_EQ(seen.to_vector(), std::vector<double>({2, 2, 2}));
}

TEST(Engine, OpReturningItsInputKeepsTheInputALeaf) {
  Tensor x = Tensor::ones({2, 3}, DType::F64).set_requires_grad();
  Tensor c = contiguous(x);  // x is already contiguous
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(c.is_leaf());
  backward(sum(c));
  EXPECT_EQ(x.grad().to_vector(), std::vector<double>(6, 1));
}

TEST(Engine, BroadcastGradientsReduceToInputShape) {
  Tensor a = Tensor::ones({2, 3}, DType::F64).set_requires_grad();
  Tensor b = Tensor::ones({3}, DType::F64).set_requires_grad();
  backward(sum(a * b + b));
  EXPECT_EQ(b.grad().shape(), Shape({3}));
  EXPECT_EQ(b.grad().to_vector(), std::vector<double>({4, 4, 4}));  // 2 rows of a, plus b broadcast over 2 rows
}

}  // namespace
}  // namespace dearest
