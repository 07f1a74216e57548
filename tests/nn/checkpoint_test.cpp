#include "nn/checkpoint.h"

#include <filesystem>
#include <fstream>

#include "data/image.h"
#include "tensor/safetensors.h"
#include "tests/data/data_test_util.h"

namespace dearest::nn {
namespace {

using data::test::ScratchDir;

TEST(Checkpoint, RoundTripGivesBitwiseIdenticalLogits) {
  ScratchDir d("ckpt");
  ModelSpec spec = ModelSpec::parse("resnet18:width=4,classes=5");
  ModulePtr m = build_model(spec);
  m->eval();
  Tensor x = Rng(1).normal({2, 3, 32, 32});
  NoGradGuard ng;
  Tensor before = (*m)(x).plain();
  save_model(d.path() + "/m.safetensors", *m, spec, {{"dataset", "synthetic"}});
  EXPECT_FALSE(std::filesystem::exists(d.path() + "/m.safetensors.tmp"));
  LoadedModel lm = load_model(d.path() + "/m.safetensors");
  EXPECT_EQ(lm.spec.str(), spec.str());
  EXPECT_EQ(lm.meta["dataset"], "synthetic");
  EXPECT_EQ(lm.meta["fingerprint"], fingerprint(*m));
  lm.model->eval();
  EXPECT_TRUE(test::bitwise_equal((*lm.model)(x).plain(), before));
}

TEST(Checkpoint, PyTorchSafetensorsLoadAndGiveTheFixtureLogits) {
  const std::string dir = test::shared_dir() + "/fixtures/torch/";
  if (!std::filesystem::exists(dir + "resnet18_cifar_w8.weights.safetensors")) GTEST_SKIP() << "fixtures absent";
  LoadedModel lm = load_model(dir + "resnet18_cifar_w8.weights.safetensors", "resnet18:width=8,classes=10");
  SafetensorsFile e = read_safetensors(dir + "resnet18_cifar_w8.expected.safetensors");
  lm.model->eval();
  NoGradGuard ng;
  EXPECT_LT(test::rel_err((*lm.model)(e.get("input")).plain(), e.get("logits_eval")), 1e-4);
  EXPECT_ERROR_CONTAINS(load_model(dir + "resnet18_cifar_w8.weights.safetensors"), "no dearest \"arch\"");
  EXPECT_ERROR_CONTAINS(load_model(dir + "resnet18_cifar_w8.weights.safetensors", "resnet18:width=16,classes=10"),
                        "does not fit", "conv1.weight");
}

// Every malformation of the file is refused with a message naming the file and the problem.
TEST(Checkpoint, MalformedFilesAreRefused) {
  ScratchDir d("ckpt_bad");
  ModelSpec spec = ModelSpec::parse("resnet18:width=2,classes=3");
  ModulePtr m = build_model(spec);
  const std::string good_path = d.path() + "/good.safetensors";
  save_model(good_path, *m, spec);
  const std::string good = data::read_file(good_path);
  auto refused = [&](const std::string& bytes, std::vector<const char*> want) {
    const std::string p = d.file("bad.safetensors", bytes);
    try {
      load_model(p);
      ADD_FAILURE() << "accepted a malformed file";
    } catch (const Error& e) {
      for (const char* w : want) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "want \"" << w << "\" in: " << e.what();
    }
  };
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[size_t(i)]);
  const std::string header = good.substr(8, n);
  refused(good.substr(0, good.size() - 100), {"bad.safetensors", "outside"});        // truncated data
  refused(good.substr(0, 5), {"bad.safetensors", "truncated"});                        // no header length
  refused(std::string(8, '\xff') + good.substr(8), {"header length"});                 // absurd header length
  refused(good.substr(0, 8) + std::string(n, '{') + good.substr(8 + n), {"invalid JSON"});
  auto with_header = [&](std::string h) {
    while (h.size() < n) h += ' ';
    return good.substr(0, 8) + h.substr(0, n) + good.substr(8 + n);
  };
  std::string h = header;
  const size_t f32 = h.find("\"F32\"");
  refused(with_header(h.replace(f32, 5, "\"C64\"")), {"unsupported dtype C64"});
  h = header;
  const size_t shape = h.find("\"shape\": [");
  h[shape + 10] = '3';  // conv1.weight [2, 3, 3, 3] becomes [3, 3, 3, 3]: the bytes no longer match the shape
  refused(with_header(h), {"does not match"});
  // Overlapping ranges: point the second tensor at the first one's bytes.
  h = header;
  const size_t first_end = h.find("\"data_offsets\": [0, ");
  const size_t second = h.find("\"data_offsets\": [", first_end + 10);
  const size_t close = h.find(']', second);
  std::string overlap = h.substr(0, second) + "\"data_offsets\": [0, " +
                        std::to_string(std::stoll(h.substr(h.find(',', second) + 2, close - h.find(',', second) - 2)) -
                                       std::stoll(h.substr(second + 17, h.find(',', second) - second - 17))) +
                        h.substr(close);
  refused(with_header(overlap), {"overlap"});
  refused("", {"truncated"});
}

}  // namespace
}  // namespace dearest::nn

#include "nn/probe.h"

namespace dearest::nn {
namespace {

// `dearest probe` on the PyTorch fixture: logits in both modes and the loss as PyTorch computed
// them, a gradient for every parameter, and the requested activations.
TEST(Probe, ReproducesTheFixtureThroughTheProbePath) {
  const std::string dir = test::shared_dir() + "/fixtures/torch/";
  for (auto [name, spec] : {std::pair{"resnet18_cifar_w8", "resnet18:width=8,classes=10"},
                            std::pair{"vgg16_bn_cifar_w8", "vgg16-bn:width=8,classes=10"}}) {
    if (!std::filesystem::exists(dir + name + ".weights.safetensors")) GTEST_SKIP() << "fixtures absent";
    SafetensorsFile e = read_safetensors(dir + name + ".expected.safetensors");
    LoadedModel lm = load_model(dir + name + ".weights.safetensors", spec);
    StateDict ev = probe(*lm.model, e.get("input"), Tensor(), false);
    EXPECT_LT(test::rel_err(ev[0].second, e.get("logits_eval")), 1e-4) << name;
    lm = load_model(dir + name + ".weights.safetensors", spec);
    StateDict tr = probe(*lm.model, e.get("input"), e.get("labels"), true,
                         {std::string(name).rfind("resnet", 0) == 0 ? "layer2" : "features.10"});
    EXPECT_LT(test::rel_err(tr[0].second, e.get("logits_train")), 1e-4) << name;
    EXPECT_NEAR(tr[1].second.item(), e.get("loss_train").item(), 1e-5) << name;
    int grads = 0, acts = 0;
    for (auto& [n, t] : tr) {
      grads += n.rfind("grad.", 0) == 0;
      acts += n.rfind("act.", 0) == 0;
    }
    EXPECT_EQ(grads, int(lm.model->named_parameters().size())) << name;
    EXPECT_EQ(acts, 1) << name;
  }
}

}  // namespace
}  // namespace dearest::nn
