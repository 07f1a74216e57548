// The removal baselines' mechanics on tiny models in seconds: the clean subset, fine-tuning only
// what it is asked to train, fine-pruning masking exactly the least active channels (and the mask
// surviving a save and a load).
#include "defenses/removal.h"

#include <filesystem>

#include "autograd/grad_mode.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "quant/presets.h"
#include "quant/quantized_model.h"
#include "tests/model_test_util.h"
#include "tests/defenses/removal_test_util.h"
#include "tests/test_util.h"

namespace dearest::defenses {
namespace {

const data::DataSpec kData = data::parse_data_spec("synthetic:512");

TEST(Removal, CleanSubsetIsASeededPortionOfTheTrainingSplit) {
  auto a = clean_subset(kData, 0.1, 3), b = clean_subset(kData, 0.1, 3), c = clean_subset(kData, 0.1, 4);
  auto train = data::open_dataset(kData, data::train_split("synthetic"));
  EXPECT_EQ(a->size(), int64_t(0.1 * double(train->size())));
  int64_t same_ab = 0, same_ac = 0;
  for (int64_t i = 0; i < a->size(); ++i) {
    same_ab += test::bitwise_equal(a->get(i).image, b->get(i).image);
    same_ac += test::bitwise_equal(a->get(i).image, c->get(i).image);
  }
  EXPECT_EQ(same_ab, a->size());
  EXPECT_LT(same_ac, a->size());
  EXPECT_ERROR_CONTAINS(clean_subset(kData, 0, 3), "portion must be in (0, 1]");
}

TEST(Removal, FineTuningTrainsOnlyTheChosenLayers) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  nn::StateDict before;
  for (auto& [k, t] : m->state_dict()) before.emplace_back(k, t.clone());
  FineTuneOptions o = test::quick_fine_tune(3);
  o.trainable = {"fc"};
  fine_tune(*m, spec, clean_subset(kData, 0.2, 1), "synthetic", o);
  for (auto& [k, t] : m->named_parameters()) {
    Tensor old;
    for (auto& [k2, t2] : before)
      if (k2 == k) old = t2;
    EXPECT_EQ(k.rfind("fc", 0) == 0, !test::bitwise_equal(t, old)) << k;
  }
  o.trainable = {"nothing"};
  EXPECT_ERROR_CONTAINS(fine_tune(*m, spec, clean_subset(kData, 0.2, 1), "synthetic", o), "no parameter under \"nothing\"");
}

// --ste: fine-tuning the quantized model itself; its weights move through the straight-through
// quantizers (every conv and linear weight changes) and its qparams stay as calibrated.
TEST(Removal, FineTuningTheQuantizedModelMovesItsWeightsThroughTheQuantizers) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
  q.calibrate({test::randn({8, 3, 32, 32}, 3)});
  nn::StateDict before;
  for (auto& [k, t] : q.model().state_dict()) before.emplace_back(k, t.clone());
  const Tensor scale = q.layers()[3].weight->qparams().scale.clone();
  FineTuneOptions o = test::quick_fine_tune(3);
  fine_tune(q.model(), spec, clean_subset(kData, 0.2, 1), "synthetic", o);
  int64_t moved = 0, weights = 0;
  for (auto& [k, t] : q.model().named_parameters()) {
    if (k.size() < 7 || k.compare(k.size() - 7, 7, ".weight") != 0 || t.dim() < 2) continue;
    ++weights;
    for (auto& [k2, t2] : before)
      if (k2 == k) moved += !test::bitwise_equal(t, t2);
  }
  EXPECT_EQ(moved, weights);
  EXPECT_GT(weights, 15);
  EXPECT_TRUE(test::bitwise_equal(q.layers()[3].weight->qparams().scale, scale));
}

TEST(Removal, FinePruningMasksTheLeastActiveChannels) {
  for (std::string arch : {"resnet18:width=2", "vgg16-bn:width=2"}) {
    nn::ModelSpec spec;
    auto m = test::warmed_model(arch, spec, 5, 20);
    nn::ModelSpec pspec = spec;
    auto pm = with_prune_mask(pspec, *m, prune_point(spec));
    EXPECT_EQ(pspec.get("prune", ""), prune_point(spec));
    auto clean = clean_subset(kData, 0.1, 2);
    data::LoaderOptions lo;
    lo.batch_size = 64;
    lo.shuffle = false;
    data::DataLoader loader(clean, data::test_transform("synthetic"), lo);
    const Tensor x = loader.batch(0, 0, loader.order(0)).images;
    NoGradGuard ng;
    // All channels kept: the masked model computes what the model does.
    EXPECT_TRUE(test::bitwise_equal((*pm)(x), (*m)(x))) << arch;
    // The mean activation per channel at the pruning point, computed here by hand.
    nn::Module* point = m->find(prune_point(spec));
    std::vector<double> mean;
    point->add_forward_hook([&](nn::Module&, const Tensor& y) {
      const Tensor t = y.contiguous();
      const int64_t N = t.size(0), C = t.size(1), HW = t.size(2) * t.size(3);
      mean.assign(size_t(C), 0.0);
      for (int64_t i = 0; i < t.numel(); ++i) mean[size_t((i / HW) % C)] += t.data<float>()[i] / double(N * HW);
    });
    (*m)(loader.batch(0, 0, loader.order(0)).images);
    point->clear_forward_hooks();
    ASSERT_EQ(loader.num_batches(), 1) << "the hand computation takes one batch";
    PruneResult r = prune_least_active(*pm, clean, "synthetic", 0.4, 64);
    ASSERT_EQ(int64_t(mean.size()), r.channels);
    EXPECT_EQ(int64_t(r.pruned.size()), int64_t(0.4 * double(r.channels)));
    double kept_min = 1e30, pruned_max = -1e30;
    std::vector<bool> is_pruned(mean.size(), false);
    for (int64_t c : r.pruned) is_pruned[size_t(c)] = true;
    for (size_t c = 0; c < mean.size(); ++c) {
      EXPECT_NEAR(r.mean_activation[c], mean[c], 1e-5 * (1 + std::fabs(mean[c])));
      (is_pruned[c] ? pruned_max : kept_min) = is_pruned[c] ? std::max(pruned_max, mean[c]) : std::min(kept_min, mean[c]);
    }
    EXPECT_LE(pruned_max, kept_min) << arch;
    auto* mask = static_cast<nn::ChannelMask*>(pm->find("prune"));
    EXPECT_EQ(mask->pruned(), int64_t(r.pruned.size()));
    EXPECT_GT(test::max_abs_diff((*pm)(x), (*m)(x)), 0.0);
    // Saved and loaded, the model stays pruned.
    const std::string f = (std::filesystem::temp_directory_path() / "dearest-pruned.safetensors").string();
    nn::save_model(f, *pm, pspec);
    auto back = nn::load_model(f);
    back.model->eval();
    EXPECT_EQ(back.spec.get("prune", ""), prune_point(spec));
    EXPECT_TRUE(test::bitwise_equal((*back.model)(x), (*pm)(x))) << arch;
    EXPECT_ERROR_CONTAINS(prune_least_active(*m, clean, "synthetic", 0.4), "no channel mask");
    EXPECT_ERROR_CONTAINS(prune_least_active(*pm, clean, "synthetic", 1.0), "rate must be in [0, 1)");
  }
}

}  // namespace
}  // namespace dearest::defenses
