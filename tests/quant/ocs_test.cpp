// Outlier channel splitting: the split halves the largest channel, folds back to the weight,
// keeps the layer's function on the duplicated input, shrinks the range; grid-aware halves sum to
// the original; OCS in a quantized model.
#include "quant/ocs.h"

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "quant/quantized_model.h"
#include "tests/test_util.h"

namespace dearest::quant {
namespace {

TEST(Ocs, SplitsTheLargestChannelRepeatedly) {
  Tensor w = Tensor::from_vector(std::vector<float>{1, -8, 2, 3, 0.5f, 1, -1, 2}, {2, 4});  // I = 4
  // max |w[:, j]| = 1, 8, 2, 3: split 1 (8 -> 4 and a copy 4), then the first largest, 1 again.
  auto picks = ocs_pick_order(w, 0.5);  // n = 2
  EXPECT_EQ(picks, (std::vector<int64_t>{1, 1}));
  OcsSplit s = ocs_split(w, 0.5);
  EXPECT_EQ(s.weight.shape(), Shape({2, 6}));
  EXPECT_EQ(s.source, (std::vector<int64_t>{1, 1}));
  auto v = s.weight.to_vector();
  EXPECT_EQ(v[1], -2.0);  // channel 1 halved twice
  EXPECT_EQ(v[4], -4.0);  // the first copy, made at -4 and not split again (channel 1 comes first)
  EXPECT_EQ(v[5], -2.0);  // the second copy, of the halved-again channel 1
  EXPECT_TRUE(test::bitwise_equal(ocs_fold(s.weight, s), w));
}

TEST(Ocs, FoldUndoesTheSplitAndTheConvKeepsItsFunction) {
  Tensor w = test::randn({6, 5, 3, 3}, 1, DType::F64);
  for (double grid : {0.0, 7.3}) {
    OcsSplit s = ocs_split(w, 0.4, grid);
    EXPECT_EQ(s.weight.size(1), 5 + 2);
    EXPECT_LT(test::max_abs_diff(ocs_fold(s.weight, s), w), 1e-12) << grid;
    // conv on the input with the split channels duplicated = conv of the original.
    Tensor x = test::randn({2, 5, 6, 6}, 2, DType::F64);
    Tensor idx = Tensor::empty({7}, DType::I32);
    for (int j = 0; j < 5; ++j) idx.data<int32_t>()[j] = j;
    for (int k = 0; k < 2; ++k) idx.data<int32_t>()[5 + k] = int32_t(s.source[size_t(k)]);
    Tensor xd = index_select(x, 1, idx);
    EXPECT_LT(test::max_abs_diff(conv2d(xd, s.weight), conv2d(x, w)), 1e-10) << grid;
  }
  // The range shrinks (the largest channel was halved).
  double before = 0, after = 0;
  for (double a : w.to_vector()) before = std::max(before, std::fabs(a));
  for (double a : ocs_split(w, 0.4).weight.to_vector()) after = std::max(after, std::fabs(a));
  EXPECT_LT(after, before);
  // Split then fold is a linear map: its gradient is the identity.
  Tensor wl = test::randn({3, 4, 1, 1}, 3, DType::F64).set_requires_grad();
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) {
    OcsSplit s = ocs_split(in[0], 0.5, 3.0);
    return sum(square(ocs_fold(s.weight, s)));
  }, {wl}).ok);
}

TEST(Ocs, GridAwareHalvesSumToTheWeight) {
  Tensor w = Tensor::from_vector(std::vector<double>{0.9, 0.1, -0.3}, {1, 3});
  const double S = 10.0;
  OcsSplit s = ocs_split(w, 0.3, S);  // one split, of channel 0
  auto v = s.weight.to_vector();
  EXPECT_NEAR(v[0], (0.9 * S / 2 - 0.25) / S, 1e-15);
  EXPECT_NEAR(v[3], (0.9 * S / 2 + 0.25) / S, 1e-15);
  EXPECT_NEAR(v[0] + v[3], 0.9, 1e-15);
}

TEST(Ocs, InAQuantizedModel) {
  nn::ModelSpec spec = nn::ModelSpec::parse("resnet18:width=8");
  nn::set_init_seed(3);  // the same weights whatever ran before in this process
  nn::ModulePtr m = nn::build_model(spec);
  m->eval();
  QuantizedModel q(spec, *m, preset("ocs", 8));
  EXPECT_EQ(q.layers().size(), 19u);  // no first conv, no fc
  q.calibrate({test::randn({8, 3, 32, 32}, 1)});
  const QuantLayer& l = q.layer("layer1.0.conv1");
  ASSERT_TRUE(l.ocs);
  EXPECT_GT(l.ocs->grid_scale, 0);
  Tensor qw = q.quantized_weight(l);
  EXPECT_EQ(qw.shape(), l.float_weight().shape());
  // 8-bit split-quantized weights stay close; the split grid is finer than the unsplit one.
  EXPECT_LT(test::rel_err(qw, l.float_weight()), 0.01);
  Tensor x = test::randn({2, 3, 32, 32}, 2);
  NoGradGuard ng;
  EXPECT_LT(test::rel_err(q(x), (*m)(x)), 0.1);
}

}  // namespace
}  // namespace dearest::quant
