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

// channel_blocks addresses every element of a blocked convolution output where plain() finds it,
// with channel counts that fill the block and that leave padding; to_layout_of puts a plain tensor
// into those bytes.
TEST(Layout, ChannelBlocksAddressBlockedAndPlainBytes) {
  for (int64_t C : {16, 32, 24, 3}) {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor x = test::randn({3, 16, 5, 7}, 4), w = test::randn({C, 16, 3, 3}, 5);
    Tensor z = conv2d(x, w, Tensor(), p);
    const ChannelBlocks cb = channel_blocks(z);
    ASSERT_GT(cb.block, 0) << "C = " << C;
    EXPECT_EQ(cb.channels % cb.block, 0);
    EXPECT_GE(cb.channels, C);
    const Tensor zp = z.plain().contiguous();
    const float* bytes = layout_floats(z);
    const int64_t S = 35;
    int64_t mismatches = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t at = n * cb.n_stride + (c / cb.block) * cb.block_stride + s * cb.block + c % cb.block;
          mismatches += bytes[at] != zp.data<float>()[(n * C + c) * S + s];
        }
    EXPECT_EQ(mismatches, 0) << "C = " << C;
    const Tensor t = test::randn(z.shape(), 6);
    const Tensor laid = to_layout_of(t, z);
    EXPECT_TRUE(channel_blocks(laid) == cb);
    EXPECT_TRUE(test::bitwise_equal(laid.plain(), t));
  }
  const Tensor plain = test::randn({2, 5, 3}, 7);
  const ChannelBlocks pb = channel_blocks(plain);
  EXPECT_EQ(pb.block, 1);
  EXPECT_EQ(pb.n_stride, 15);
  EXPECT_EQ(pb.block_stride, 3);
  EXPECT_EQ(channel_blocks(plain.permute({0, 2, 1})).block, 0);  // a strided view: no addressing
  EXPECT_ERROR_CONTAINS(to_layout_of(plain, test::randn({2, 5}, 8)), "cannot take the layout");
}

}  // namespace
}  // namespace dearest::raw
