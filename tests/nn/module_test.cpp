#include "nn/module.h"

#include "nn/layers.h"
#include "tensor/ops/reduce.h"
#include "nn/models.h"
#include "tests/test_util.h"

namespace dearest::nn {
namespace {

ModulePtr small_resnet() { return build_model(ModelSpec::parse("resnet18:width=4,classes=3")); }

TEST(Module, StateDictNamesOrderAndLoadReport) {
  ModulePtr m = small_resnet();
  StateDict sd = m->state_dict();
  EXPECT_EQ(sd[0].first, "conv1.weight");
  EXPECT_EQ(sd[1].first, "bn1.weight");
  EXPECT_EQ(sd[3].first, "bn1.running_mean");  // parameters, then buffers, per module
  ModulePtr other = small_resnet();
  LoadReport ok = other->load_state_dict(sd, true);
  EXPECT_TRUE(ok.ok()) << ok.str();
  EXPECT_TRUE(test::bitwise_equal(other->state_dict()[0].second, sd[0].second));
  // Other code bases' names: shortcut -> downsample, linear -> fc.
  StateDict renamed;
  for (auto [n, t] : sd) {
    size_t at = n.find("downsample.");
    if (at != std::string::npos) n = n.substr(0, at) + "shortcut." + n.substr(at + 11);
    if (n.rfind("fc.", 0) == 0) n = "linear." + n.substr(3);
    renamed.emplace_back(n, t);
  }
  LoadReport r = other->load_state_dict(renamed, true, import_aliases(ModelSpec::parse("resnet18")));
  EXPECT_TRUE(r.ok()) << r.str();
  EXPECT_FALSE(r.renamed.empty());
  // Non-strict: a report, not an error; strict: the same report as an error.
  StateDict partial(sd.begin() + 1, sd.end());
  partial.emplace_back("extra.weight", Tensor::zeros({1}));
  partial[0].second = Tensor::zeros({5});  // bn1.weight with the wrong shape
  LoadReport pr = other->load_state_dict(partial, false);
  EXPECT_EQ(pr.missing, std::vector<std::string>({"conv1.weight"}));
  EXPECT_EQ(pr.unexpected, std::vector<std::string>({"extra.weight"}));
  ASSERT_EQ(pr.mismatched.size(), 1u);
  EXPECT_NE(pr.mismatched[0].find("bn1.weight"), std::string::npos);
  EXPECT_ERROR_CONTAINS(other->load_state_dict(partial, true), "load_state_dict", "missing", "conv1.weight",
                        "extra.weight", "bn1.weight");
}

TEST(Module, FreezingTrainEvalAndFind) {
  ModulePtr m = small_resnet();
  m->set_trainable(false);
  m->set_trainable(true, "fc.");
  EXPECT_EQ(m->named_parameters(true).size(), 2u);  // fc.weight, fc.bias
  m->eval();
  EXPECT_FALSE(m->find("layer1.0.bn1")->is_training());
  m->train();
  EXPECT_TRUE(m->find("layer2.0.downsample.1")->is_training());
  EXPECT_EQ(m->find("layer9"), nullptr);
  // A frozen parameter gets no gradient.
  Tensor x = Rng(1).normal({2, 3, 32, 32});
  backward(sum((*m)(x)));
  EXPECT_FALSE(m->named_parameters()[0].second.grad().defined());
  EXPECT_TRUE(m->find("fc")->named_parameters()[0].second.grad().defined());
}

TEST(Module, CaptureOutputAndGradientOfANamedModule) {
  ModulePtr m = small_resnet();
  auto cap = capture(*m, "layer3", true);
  auto bn = capture(*m, "layer1.0.bn1", false);  // a hooked BN is not fused: its own output is seen
  Tensor x = Rng(2).normal({2, 3, 32, 32});
  Tensor y = (*m)(x);
  ASSERT_TRUE(cap->output.defined());
  EXPECT_EQ(cap->output.shape(), Shape({2, 16, 8, 8}));
  ASSERT_TRUE(bn->output.defined());
  EXPECT_LT(raw::reduce(raw::Reduce::Min, bn->output.plain()).item(), 0);  // before the ReLU
  backward(sum(y));
  ASSERT_TRUE(cap->grad.defined());
  EXPECT_EQ(cap->grad.shape(), cap->output.shape());
  EXPECT_ERROR_CONTAINS(capture(*m, "nope", false), "no module named \"nope\"");
}

TEST(Module, FusedBatchNormReluEqualsUnfused) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<Conv2d>(3, 8, 3, 1, 1, false));
  seq->push_back(std::make_shared<BatchNorm2d>(8));
  seq->push_back(std::make_shared<ReLU>());
  Tensor x = Rng(3).normal({4, 3, 8, 8});
  Tensor fused = (*seq)(x).plain();
  seq->at(2).add_forward_hook([](Module&, const Tensor&) {});  // forces the unfused path
  Tensor unfused = (*seq)(x).plain();
  EXPECT_LT(test::rel_err(fused, unfused), 1e-6);
}

}  // namespace
}  // namespace dearest::nn
