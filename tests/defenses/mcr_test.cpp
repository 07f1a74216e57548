// MCR: the curve passes through its end points and is the quadratic Bezier in between; the bend
// is what training moves; BN statistics are recomputed as the cumulative average over the data.
#include "defenses/mcr.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "tensor/rng.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "nn/layers.h"
#include "tests/model_test_util.h"
#include "tests/defenses/removal_test_util.h"
#include "tests/test_util.h"

namespace dearest::defenses {
namespace {

const data::DataSpec kData = data::parse_data_spec("synthetic:512");

Tensor param(nn::Module& m, const std::string& name) {
  for (auto& [k, t] : m.named_parameters())
    if (k == name) return t;
  return Tensor();
}

TEST(Mcr, TheCurvePassesThroughItsEndPointsAndBendsAtTheMiddle) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  const auto clean = clean_subset(kData, 0.2, 1);
  McrOptions o;
  o.endpoint = test::quick_fine_tune(3);
  o.curve = o.endpoint;
  McrCurve c = mcr(*m, spec, clean, "synthetic", o);
  ASSERT_EQ(c.curve_history.size(), 1u);
  auto at0 = curve_point(spec, c, 0), at1 = curve_point(spec, c, 1), mid = curve_point(spec, c, 0.5);
  int64_t checked = 0;
  for (auto& [k, t] : m->named_parameters()) {
    EXPECT_TRUE(test::bitwise_equal(param(*at0, k), t)) << k;  // theta0 is the model itself
    EXPECT_TRUE(test::bitwise_equal(param(*at1, k), param(*c.end, k))) << k;
    NoGradGuard ng;
    const Tensor want = add(add(mul(t, 0.25), mul(param(*c.bend, k), 0.5)), mul(param(*c.end, k), 0.25));
    EXPECT_LT(test::max_abs_diff(param(*mid, k), want), 1e-6) << k;
    ++checked;
  }
  EXPECT_GT(checked, 40);
  // The bend was trained away from the midpoint it started at; the end point is the fine-tuned copy.
  {
    NoGradGuard ng;
    const Tensor start_mid = add(mul(param(*m, "fc.weight"), 0.5), mul(param(*c.end, "fc.weight"), 0.5));
    EXPECT_GT(test::max_abs_diff(param(*c.bend, "fc.weight"), start_mid), 1e-6);
    EXPECT_GT(test::max_abs_diff(param(*c.end, "fc.weight"), param(*m, "fc.weight")), 1e-6);
  }
  EXPECT_ERROR_CONTAINS(curve_point(spec, c, 1.5), "t must be in [0, 1]");
}

// One plain SGD step moves the bend by -lr * 2t(1-t) * grad CE(theta(t)): the chain rule through
// the curve, computed here from scratch on the same batch and the same t.
TEST(Mcr, TheBendStepIsTheCurveGradientScaled) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  const auto clean = clean_subset(kData, 0.2, 1);
  McrOptions o;
  o.endpoint = test::quick_fine_tune(2);
  o.endpoint.seed = 5;
  o.curve = o.endpoint;
  o.curve.optimizer = "sgd";
  o.curve.momentum = 0;
  o.curve.max_steps = 1;
  o.curve.lr = 0.1;
  o.l2 = 0;
  McrCurve c = mcr(*m, spec, clean, "synthetic", o);
  const double t = Rng(5, 1000003).next_double(), wb = 2 * t * (1 - t);
  // theta(t) with the bend at its start, the midpoint.
  nn::ModulePtr at = test::warmed_model("resnet18:width=2", spec, 5, 20);
  std::vector<Tensor> mid;
  {
    NoGradGuard ng;
    for (auto& [k, p] : at->named_parameters()) {
      const Tensor a = param(*m, k), z = param(*c.end, k);
      const Tensor b = add(mul(a, 0.5), mul(z, 0.5));
      mid.push_back(b);
      p.copy_(add(add(mul(a, (1 - t) * (1 - t)), mul(b, wb)), mul(z, t * t)));
    }
  }
  data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.shuffle = true;
  lo.drop_last = true;
  lo.seed = 5;
  data::DataLoader loader(clean, data::train_transform("synthetic"), lo);
  const data::Batch b = loader.batch(0, 0, loader.order(0));
  at->train();
  backward(cross_entropy((*at)(b.images), b.labels));
  size_t i = 0;
  double worst = 0;
  for (auto& [k, p] : at->named_parameters()) {
    NoGradGuard ng;
    const Tensor want = sub(mid[i++], mul(p.grad(), 0.1 * wb));
    worst = std::max(worst, test::max_abs_diff(param(*c.bend, k), want) / (1e-3 + test::max_abs_diff(want, Tensor::zeros(want.shape()))));
  }
  EXPECT_LT(worst, 1e-4);
}

TEST(Mcr, BatchNormStatisticsAreTheCumulativeAverageOverTheData) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  const auto clean = clean_subset(kData, 0.2, 1);  // 102 images: batches of 51
  update_batchnorm(*m, clean, "synthetic", 51, 7);
  // The first BN sees conv1's output: its running mean is the mean of the per-batch means.
  data::LoaderOptions lo;
  lo.batch_size = 51;
  lo.shuffle = true;
  lo.seed = 7;
  data::DataLoader loader(clean, data::train_transform("synthetic"), lo);
  ASSERT_EQ(loader.num_batches(), 2);
  const auto order = loader.order(0);
  NoGradGuard ng;
  nn::Module* conv1 = m->find("conv1");
  std::vector<double> want(2, 0.0);
  for (int64_t b = 0; b < 2; ++b) {
    const Tensor y = (*conv1)(loader.batch(0, b, order).images).contiguous();
    const int64_t N = y.size(0), C = y.size(1), HW = y.size(2) * y.size(3);
    for (int64_t i = 0; i < y.numel(); ++i)
      if ((i / HW) % C < 2) want[size_t((i / HW) % C)] += y.data<float>()[i] / double(N * HW) / 2.0;
  }
  Tensor rm;
  for (auto& [k, t] : m->find("bn1")->named_buffers())
    if (k == "running_mean") rm = t.contiguous();
  EXPECT_NEAR(rm.data<float>()[0], want[0], 1e-4 * (1 + std::fabs(want[0])));
  EXPECT_NEAR(rm.data<float>()[1], want[1], 1e-4 * (1 + std::fabs(want[1])));
  EXPECT_DOUBLE_EQ(static_cast<nn::BatchNorm2d*>(m->find("bn1"))->momentum, 0.1);  // restored
}

}  // namespace
}  // namespace dearest::defenses
