// MCR: the curve passes through its end points and is the quadratic Bezier in between; the bend
// is what training moves; BN statistics are recomputed as the cumulative average over the data;
// through the straight-through estimator all of it runs in a quantized twin.
#include "defenses/mcr.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "tensor/rng.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "nn/layers.h"
#include "quant/presets.h"
#include "quant/quantized_model.h"
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

// A small warmed model, its clean subset, and `steps` steps for the end point and the bend.
struct Setup {
  nn::ModelSpec spec;
  nn::ModulePtr m;
  data::DatasetPtr clean;
  McrOptions o;
};
Setup quick_setup(int64_t steps) {
  Setup u;
  u.m = test::warmed_model("resnet18:width=2", u.spec, 5, 20);
  u.clean = clean_subset(kData, 0.2, 1);
  u.o.endpoint = test::quick_fine_tune(steps);
  u.o.curve = u.o.endpoint;
  return u;
}

TEST(Mcr, TheCurvePassesThroughItsEndPointsAndBendsAtTheMiddle) {
  auto [spec, m, clean, o] = quick_setup(3);
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

// A quantized twin of `m` (MQBench W4A4), calibrated on a fixed batch: the same batch gives the
// same frozen qparams every time.
std::unique_ptr<quant::QuantizedModel> quantized_twin(const nn::ModelSpec& spec, nn::Module& m) {
  auto q = std::make_unique<quant::QuantizedModel>(spec, m, quant::preset("mqbench", 4));
  q->calibrate({test::randn({8, 3, 32, 32}, 3)});
  return q;
}

// One plain SGD step moves the bend by -lr * 2t(1-t) * grad CE(theta(t)): the chain rule through
// the curve, computed here from scratch on the same batch and the same t. With `ste`, theta(t)
// runs through a quantized twin (MCR + STE) and so does the gradient computed here. Returns the
// worst relative error over the parameters.
double bend_step_error(bool ste) {
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
  auto through = ste ? quantized_twin(spec, *m) : nullptr;
  McrCurve c = mcr(*m, spec, clean, "synthetic", o, through ? &through->model() : nullptr);
  const double t = Rng(5, 1000003).next_double(), wb = 2 * t * (1 - t);
  // theta(t) with the bend at its start, the midpoint.
  nn::ModulePtr at = test::warmed_model("resnet18:width=2", spec, 5, 20);
  auto at_q = ste ? quantized_twin(spec, *at) : nullptr;
  nn::Module& run = ste ? at_q->model() : *at;
  std::vector<Tensor> mid;
  {
    NoGradGuard ng;
    for (auto& [k, p] : run.named_parameters()) {
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
  run.train();
  backward(cross_entropy(run(b.images), b.labels));
  size_t i = 0;
  double worst = 0;
  for (auto& [k, p] : run.named_parameters()) {
    NoGradGuard ng;
    const Tensor want = sub(mid[i++], mul(p.grad(), 0.1 * wb));
    worst = std::max(worst, test::max_abs_diff(param(*c.bend, k), want) / (1e-3 + test::max_abs_diff(want, Tensor::zeros(want.shape()))));
  }
  return worst;
}

TEST(Mcr, TheBendStepIsTheCurveGradientScaled) { EXPECT_LT(bend_step_error(false), 1e-4); }

// MCR + STE (EFRAP supplementary Table 5): the end point is the quantized twin fine-tuned through
// its quantizers, bit for bit; the bend's step is the curve gradient through them; the curve set
// into the twin passes through both end points; the frozen qparams do not move.
TEST(Mcr, ThroughTheStraightThroughEstimatorTheCurveTrainsTheQuantizedTwin) {
  EXPECT_LT(bend_step_error(true), 1e-4);

  auto [spec, m, clean, o] = quick_setup(3);
  auto q = quantized_twin(spec, *m);
  const Tensor scale = q->layers()[3].weight->qparams().scale.clone();
  McrCurve c = mcr(*m, spec, clean, "synthetic", o, &q->model());
  auto want_end = quantized_twin(spec, *m);
  fine_tune(want_end->model(), spec, clean, "synthetic", o.endpoint);
  nn::ModulePtr float_end = quant::clone_model(spec, *m);
  fine_tune(*float_end, spec, clean, "synthetic", o.endpoint);
  EXPECT_FALSE(test::bitwise_equal(param(*float_end, "fc.weight"), param(*c.end, "fc.weight")));  // the quantizers mattered
  int64_t checked = 0;
  set_curve_point(q->model(), c, 0);
  for (auto& [k, t] : m->named_parameters()) {
    EXPECT_TRUE(test::bitwise_equal(param(*c.end, k), param(want_end->model(), k))) << k;
    EXPECT_TRUE(test::bitwise_equal(param(q->model(), k), t)) << k;
    ++checked;
  }
  EXPECT_GT(checked, 40);
  set_curve_point(q->model(), c, 1);
  for (auto& [k, t] : c.end->named_parameters()) EXPECT_TRUE(test::bitwise_equal(param(q->model(), k), t)) << k;
  EXPECT_TRUE(test::bitwise_equal(q->layers()[3].weight->qparams().scale, scale));
  EXPECT_ERROR_CONTAINS(set_curve_point(q->model(), c, -0.5), "t must be in [0, 1]");
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
