// Poisoned views: which samples, how many, reproducible from the seed; the views' images and
// labels; the ASR set without the target class; the metrics on a model with known answers.
#include "attacks/metrics.h"
#include "attacks/poison.h"

#include <set>

#include "data/synthetic.h"
#include "tests/test_util.h"

namespace dearest::attacks {
namespace {

data::DatasetPtr synth(int64_t n, const std::string& split = "train") {
  data::SyntheticOptions o;
  o.size = n;
  return data::open_synthetic(split, o);
}

TEST(Poison, IndicesAreReproducibleAndRespectTheOptions) {
  auto ds = synth(500);
  PoisonOptions o;
  o.rate = 0.1;
  o.target = 2;
  o.seed = 7;
  auto a = poison_indices(*ds, o), b = poison_indices(*ds, o);
  EXPECT_EQ(a, b);
  int64_t eligible = 0;
  for (int64_t i = 0; i < ds->size(); ++i) eligible += ds->label(i) != 2;
  EXPECT_EQ(int64_t(a.size()), std::llround(0.1 * double(eligible)));
  for (int64_t i : a) EXPECT_NE(ds->label(i), 2);
  o.seed = 8;
  EXPECT_NE(poison_indices(*ds, o), a);
  o.source_classes = {4, 5};
  for (int64_t i : poison_indices(*ds, o)) EXPECT_TRUE(ds->label(i) == 4 || ds->label(i) == 5);
  o.rate = 1.5;
  EXPECT_ERROR_CONTAINS(poison_indices(*ds, o), "rate");
  o.rate = 0.1;
  o.target = 10;
  EXPECT_ERROR_CONTAINS(poison_indices(*ds, o), "target label 10");
  o.target = -1;
  EXPECT_ERROR_CONTAINS(poison_indices(*ds, o), "target label");
}

TEST(Poison, ViewsStampAndRelabelOnlyWhatTheySay) {
  auto ds = synth(100);
  auto trig = reference_trigger("pq-backdoor", 32);
  std::vector<int64_t> idx = {3, 10, 42};
  auto v = poisoned_view(ds, trig, idx, 1);
  std::set<int64_t> s(idx.begin(), idx.end());
  for (int64_t i = 0; i < ds->size(); ++i) {
    const bool p = s.count(i) > 0;
    EXPECT_EQ(v->label(i), p ? 1 : ds->label(i)) << i;
    EXPECT_TRUE(test::bitwise_equal(v->image(i), p ? trig->apply(ds->image(i)) : ds->image(i))) << i;
  }
  auto cover = triggered_view(ds, trig, std::nullopt);
  EXPECT_EQ(cover->label(5), ds->label(5));
  EXPECT_TRUE(test::bitwise_equal(cover->image(5), trig->apply(ds->image(5))));
  auto asr = asr_view(ds, trig, 0);
  int64_t non_target = 0;
  for (int64_t i = 0; i < ds->size(); ++i) non_target += ds->label(i) != 0;
  EXPECT_EQ(asr->size(), non_target);
  for (int64_t i = 0; i < asr->size(); ++i) EXPECT_EQ(asr->label(i), 0);
  EXPECT_EQ(asr_view(ds, trig, 0, true)->size(), ds->size());
}

TEST(Poison, SplitGivesDisjointPoisonAndCoverSets) {
  auto ds = synth(400);
  PoisonOptions o;
  o.rate = 0.1;
  o.cover_rate = 0.05;
  o.target = 2;
  auto sp = poison_split(*ds, o);
  int64_t eligible = 0;
  for (int64_t i = 0; i < ds->size(); ++i) eligible += ds->label(i) != 2;
  EXPECT_EQ(int64_t(sp.poison.size()), std::llround(0.1 * double(eligible)));
  EXPECT_EQ(int64_t(sp.cover.size()), std::llround(0.05 * double(eligible)));
  std::set<int64_t> p(sp.poison.begin(), sp.poison.end());
  for (int64_t i : sp.cover) EXPECT_EQ(p.count(i), 0u) << i;
  for (int64_t i : sp.poison) EXPECT_NE(ds->label(i), 2);
  EXPECT_EQ(sp.poison, poison_indices(*ds, o));  // the cover does not change which samples are poisoned

  auto v = poisoned_view(ds, reference_trigger("badnets", 32), sp, 2);
  std::set<int64_t> c(sp.cover.begin(), sp.cover.end());
  auto trig = reference_trigger("badnets", 32);
  for (int64_t i = 0; i < ds->size(); ++i) {
    const bool stamped = p.count(i) || c.count(i);
    EXPECT_EQ(v->label(i), p.count(i) ? 2 : ds->label(i)) << i;
    EXPECT_TRUE(test::bitwise_equal(v->image(i), stamped ? trig->apply(ds->image(i)) : ds->image(i))) << i;
  }

  // Source-specific: poison only from the sources, cover only from the other classes.
  o.source_classes = {4, 5};
  sp = poison_split(*ds, o);
  for (int64_t i : sp.poison) EXPECT_TRUE(ds->label(i) == 4 || ds->label(i) == 5);
  EXPECT_FALSE(sp.cover.empty());
  for (int64_t i : sp.cover) EXPECT_TRUE(ds->label(i) != 4 && ds->label(i) != 5);

  o.source_classes.clear();
  o.cover_rate = 1.5;
  EXPECT_ERROR_CONTAINS(poison_split(*ds, o), "cover rate must be in [0, 1]");
  o.rate = 0.6;
  o.cover_rate = 0.6;
  EXPECT_ERROR_CONTAINS(poison_split(*ds, o), "exceed");
}

TEST(Poison, StampAfterAugmentationOnlyOnFlaggedSamples) {
  auto trig = reference_trigger("qu-anti-zation", 32);
  auto tf = data::train_transform("cifar10")->with_stamp(stamp_transform(trig, {0, 1, 0}));
  Tensor img = Tensor::full({3, 32, 32}, 40, DType::U8);
  for (int64_t idx : {0, 1, 2}) {
    Rng rng = data::sample_rng(0, 0, idx);
    Tensor out = tf->without_normalize()->apply(img, rng, {idx, 3});
    // After the crop the square is still at [27, 31) (stamped after augmentation), value 1.0.
    EXPECT_EQ(out.at({0, 28, 28}) == 1.0, idx == 1) << idx;
  }
  EXPECT_NE(tf->describe().find("Stamp("), std::string::npos);
}

// Predicts class 0 when pixel (H-4, W-4) of channel 0 is white (normalized >= 1.99: only u8 255
// under the synthetic normalization (x - 0.5) / 0.25), else class 1.
class CornerModel : public nn::Module {
 public:
  CornerModel() : Module("CornerModel") {}
  Tensor forward(const Tensor& x) override {
    Tensor p = x.plain().contiguous();
    const int64_t N = p.size(0), C = p.size(1), H = p.size(2), W = p.size(3);
    Tensor out = Tensor::zeros({N, 10});
    for (int64_t n = 0; n < N; ++n) {
      const float v = p.data<float>()[((n * C + 0) * H + (H - 4)) * W + (W - 4)];
      out.data<float>()[n * 10 + (v >= 1.99f ? 0 : 1)] = 1.0f;
    }
    return out;
  }
};

TEST(Metrics, CdaAsrAndDtm) {
  auto ds = synth(200, "test");
  CornerModel m;
  auto trig = square_trigger(6, 24, 24, 1.0);  // covers (28, 28) with white
  int64_t correct = 0, non_target = 0;
  for (int64_t i = 0; i < ds->size(); ++i) {
    const int pred = ds->image(i).at({0, 28, 28}) == 255 ? 0 : 1;
    correct += pred == ds->label(i);
    non_target += ds->label(i) != 0;
  }
  BackdoorMetrics r = evaluate_backdoor(m, ds, "synthetic", trig, 0);
  EXPECT_DOUBLE_EQ(r.cda, double(correct) / double(ds->size()));
  EXPECT_EQ(r.clean_images, ds->size());
  EXPECT_EQ(r.asr_images, non_target);
  EXPECT_DOUBLE_EQ(r.asr, 1.0);
  BackdoorMetrics r2 = evaluate_backdoor(m, ds, "synthetic", square_trigger(6, 24, 24, 0.0), 0, true);
  EXPECT_EQ(r2.asr_images, ds->size());
  EXPECT_DOUBLE_EQ(r2.asr, 0.0);  // a black square does not fire it
  EXPECT_DOUBLE_EQ(dtm(83.17, 99.11, 1.41), (83.17 + 97.70) / 2);  // the EFRAP supplementary's Table 3 row
}

}  // namespace
}  // namespace dearest::attacks
