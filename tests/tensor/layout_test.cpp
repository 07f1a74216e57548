// Activations stay in oneDNN's blocked layout through a chain of oneDNN ops (no reorder between
// them), become plain wherever a non-oneDNN op needs them, and are plain everywhere under the
// plain layout policy, with the same values up to float rounding (the policy changes bits: oneDNN
// runs a different batch-norm implementation on NCHW than on blocked data).
#include "tensor/ops/batchnorm.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/reduce.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

std::vector<Tensor> chain(const Tensor& x) {
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  Tensor w = test::randn({16, 16, 3, 3}, 2), g = Tensor::ones({16}), b = Tensor::zeros({16});
  Tensor c = conv2d(x, w, Tensor(), p);
  Tensor n = batch_norm(c, g, b, Tensor(), Tensor(), true, 0.1, 1e-5).y;
  Tensor r = unary(Unary::Relu, n);
  Tensor a = binary(Binary::Add, r, c);
  Tensor m = max_pool2d(a, Pool2dParams{}).y;
  return {c, n, r, a, m};
}

TEST(Layout, OneDnnChainsStayBlockedAndAgreeWithPlain) {
  Tensor x = test::randn({4, 16, 8, 8}, 1);
  std::vector<Tensor> blocked = chain(x);
  for (size_t i = 0; i < blocked.size(); ++i) EXPECT_TRUE(blocked[i].is_blocked()) << "step " << i;
  std::vector<Tensor> plain;
  {
    LayoutPolicyScope lp(LayoutPolicy::Plain);
    plain = chain(x);
  }
  EXPECT_TRUE(test::bitwise_equal(blocked[0].plain(), plain[0]));  // the same conv kernel, then a reorder
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_FALSE(plain[i].is_blocked()) << "step " << i;
    EXPECT_LT(test::rel_err(blocked[i].plain(), plain[i]), 1e-5) << "step " << i;
  }
  // A non-oneDNN op reads a blocked tensor through plain().
  EXPECT_NEAR(sum(blocked[4]).item(), sum(plain[4]).item(), 1e-3);
  EXPECT_ERROR_CONTAINS(blocked[0].data<float>(), "blocked", "plain()");
}

}  // namespace
}  // namespace dearest::raw
