// The detectors' mechanics: the MAD outlier test on known numbers, quantiles, STRIP's entropy on
// models whose answer is known, Neural Cleanse's reverse engineering producing a mask and a
// pattern in range with the norm it reports, ABS's stimulation margin on known numbers and its
// scan finding a neuron planted to drive one label.
#include "defenses/abs.h"
#include "defenses/neural_cleanse.h"
#include "defenses/strip.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/layers.h"
#include "tests/model_test_util.h"
#include "tests/test_util.h"

namespace dearest::defenses {
namespace {

TEST(NeuralCleanse, MadAnomalyIndexOnKnownNumbers) {
  // median 50; |l - 50| sorted: 0 0 1 1 2 2 3 3 5 40 -> median 2, MAD = 1.4826 * 2.
  const std::vector<double> l1 = {10, 50, 52, 48, 55, 51, 49, 53, 47, 50};
  const MadResult r = mad_outliers(l1);
  EXPECT_DOUBLE_EQ(r.median, 50);
  EXPECT_DOUBLE_EQ(r.mad, 1.4826 * 2);
  EXPECT_NEAR(r.index[0], 40 / (1.4826 * 2), 1e-12);
  EXPECT_DOUBLE_EQ(r.index[4], 0);  // above the median: not counted
  EXPECT_NEAR(r.index[3], 2 / (1.4826 * 2), 1e-12);
  EXPECT_EQ(r.flagged, (std::vector<size_t>{0}));
  EXPECT_EQ(r.min_position, 0u);
  EXPECT_NEAR(r.model_index, 13.4898, 1e-4);
  EXPECT_TRUE(mad_outliers({50, 51, 49, 50}).flagged.empty());
  EXPECT_ERROR_CONTAINS(mad_outliers({1}), "at least two labels");
}

TEST(Strip, QuantileAndEntropyOnKnownModels) {
  EXPECT_DOUBLE_EQ(quantile({5, 1, 3, 2, 4}, 0.25), 2.0);
  EXPECT_NEAR(quantile({5, 1, 3, 2, 4}, 0.1), 1.4, 1e-12);
  auto model = [](bool confident) {
    auto seq = std::make_shared<nn::Sequential>();
    seq->push_back(std::make_shared<nn::Flatten>());
    seq->push_back(std::make_shared<nn::Linear>(3 * 8 * 8, 10, true));
    NoGradGuard ng;
    for (auto& [n, p] : seq->named_parameters()) {
      p.zero_();
      if (confident && n == "1.bias") p.data<float>()[3] = 100;
    }
    return seq;
  };
  const Tensor images = test::randn({2, 3, 8, 8}, 1), pool = test::randn({5, 3, 8, 8}, 2);
  for (double h : strip_entropies(*model(true), images, pool, "synthetic", 2)) EXPECT_NEAR(h, 0.0, 1e-9);
  for (double h : strip_entropies(*model(false), images, pool, "synthetic", 2)) EXPECT_NEAR(h, std::log2(10.0), 1e-5);
}

TEST(NeuralCleanse, ReverseEngineeringGivesAMaskAndPatternInRange) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  auto clean = data::open_dataset(data::parse_data_spec("synthetic:512:1"), "test");
  NeuralCleanseOptions o;
  o.steps = 3;
  o.images = 64;
  o.progress = false;
  const ReversedTrigger t = reverse_engineer(*m, clean, "synthetic", 2, o);
  EXPECT_EQ(t.label, 2);
  EXPECT_EQ(t.steps, 3);
  ASSERT_EQ(t.mask.shape(), (Shape{32, 32}));
  ASSERT_EQ(t.pattern.shape(), (Shape{3, 32, 32}));
  double sum = 0, lo = 1, hi = 0;
  for (int64_t i = 0; i < t.mask.numel(); ++i) {
    const double v = t.mask.data<float>()[i];
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_GE(lo, 0.0);
  EXPECT_LE(hi, 1.0);
  if (!t.reached) {
    EXPECT_NEAR(t.l1, sum, 1e-3 * sum);
  }
  EXPECT_GE(t.success, 0.0);
  EXPECT_ERROR_CONTAINS(reverse_engineer(*m, clean, "synthetic", 10, o), "label 10 outside [0, 10)");
}

TEST(Abs, StimulationMarginOnKnownNumbers) {
  // Rows: the unstimulated logits, then two stimulated. Rises: label 0 by 2, label 1 by 5, label 2 by -1.
  const auto [label, margin] = stimulation_margin({{0, 0, 1}, {1, 5, 0}, {2, 3, 0}});
  EXPECT_EQ(label, 1);
  EXPECT_DOUBLE_EQ(margin, 3);
  EXPECT_ERROR_CONTAINS(stimulation_margin({{0, 1}}), "two values");
}

TEST(Abs, ScanFindsANeuronPlantedToDriveALabel) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  // Channel 7 of layer4 (16 channels at width 2) now adds 50 per unit to label 3's logit.
  {
    NoGradGuard ng;
    for (auto& [n, p] : m->named_parameters())
      if (n == "fc.weight") p.data<float>()[3 * p.size(1) + 7] = 50;
  }
  AbsOptions o;
  o.seeds_per_class = 2;
  o.epochs = 3;
  o.test_images = 40;
  o.progress = false;
  const AbsResult r = abs_scan(*m, spec, data::parse_data_spec("synthetic:512"), o);
  ASSERT_FALSE(r.candidates.empty());
  bool found = false;
  for (const auto& s : r.selected) found |= s.layer == "layer4" && s.neuron == 7 && s.label == 3;
  for (const auto& c : r.candidates) {
    EXPECT_TRUE(c.layer == "layer3" || c.layer == "layer4") << c.layer;
    ASSERT_EQ(c.mask.shape(), (Shape{32, 32}));
    ASSERT_EQ(c.pattern.shape(), (Shape{3, 32, 32}));
    int64_t on = 0;
    for (int64_t i = 0; i < c.mask.numel(); ++i) {
      const double v = c.mask.data<float>()[i];
      EXPECT_TRUE(v >= 0 && v <= 1);
      on += v * v > o.mask_epsilon;
    }
    EXPECT_EQ(on, c.mask_pixels);
    EXPECT_TRUE(c.reasr >= 0 && c.reasr <= 1);
  }
  EXPECT_TRUE(found) << "the planted neuron is not among the candidates";
  EXPECT_LE(r.selected.size(), 10u);
  EXPECT_LE(r.candidates.size(), r.selected.size());
  EXPECT_EQ(r.flagged, r.max_reasr >= o.flag);
  AbsOptions bad = o;
  bad.layers = {"layer9"};
  EXPECT_ERROR_CONTAINS(abs_scan(*m, spec, data::parse_data_spec("synthetic:512"), bad), "no layer \"layer9\"");
}

}  // namespace
}  // namespace dearest::defenses
