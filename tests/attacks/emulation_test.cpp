// Training-time emulation: off is the float model; on, it is exactly the quantized model of the
// same preset (Qu-ANTI-zation: per-batch ranges, so the two must agree bit for bit); gradients
// reach the shared weights; the BN-folded CompArtifact path matches the folded quantized model;
// the transforms come off with the emulation.
#include "attacks/emulation.h"
#include "attacks/judge.h"

#include "autograd/engine.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "quant/quantized_model.h"
#include "tests/test_util.h"
#include "tests/model_test_util.h"

namespace dearest::attacks {
namespace {

nn::ModulePtr warmed(const std::string& text, nn::ModelSpec& spec) { return test::warmed_model(text, spec, 5, 40); }

// What dearest quantize's model gives on x: `c` calibrated on `batches`.
Tensor quantized_forward(const nn::ModelSpec& spec, nn::Module& m, const quant::QuantConfig& c,
                         const std::vector<Tensor>& batches, const Tensor& x) {
  quant::QuantizedModel qm(spec, m, c);
  qm.calibrate(batches);
  NoGradGuard ng;
  return qm(x);
}

TEST(Emulation, OffIsFloatOnIsTheQuantizedModel) {
  for (std::string arch : {"resnet18:width=4", "vgg16-bn:width=4"}) {
    nn::ModelSpec spec;
    auto m = warmed(arch, spec);
    const Tensor x = test::randn({6, 3, 32, 32}, 9);
    Tensor ref;
    {
      NoGradGuard ng;
      ref = (*m)(x);
    }
    for (int bits : {8, 4}) {
      const Tensor want = quantized_forward(spec, *m, quant::preset("qu-anti-zation", bits), {}, x);
      QuantEmulation emu(*m, quant::preset("qu-anti-zation"), {8, 4}, quant::Ste::Plain);
      NoGradGuard ng;
      emu.use(0);
      EXPECT_TRUE(test::bitwise_equal((*m)(x), ref)) << arch;
      emu.use(bits);
      EXPECT_TRUE(test::bitwise_equal((*m)(x), want)) << arch << " at " << bits << " bits";
      EXPECT_GT(test::max_abs_diff(want, ref), 1e-4) << "quantization changes nothing?";
    }
    NoGradGuard ng;
    EXPECT_TRUE(test::bitwise_equal((*m)(x), ref)) << "the transforms stayed after the emulation went";
  }
}

// MQBench's scheme with per-batch ranges: producer placement (a block's input quantized once, the
// identity path included) and 8-bit first and last layers, as QuantizedModel builds them.
TEST(Emulation, ProducerPlacementAndEightBitEndsAreTheQuantizedModel) {
  for (std::string arch : {"resnet18:width=4", "vgg16-bn:width=4"}) {
    nn::ModelSpec spec;
    auto m = warmed(arch, spec);
    const Tensor x = test::randn({6, 3, 32, 32}, 9);
    quant::QuantConfig c = quant::preset("mqbench", 4);
    c.dynamic_weights = c.dynamic_acts = true;
    ASSERT_EQ(c.placement, quant::Placement::Producer);
    ASSERT_EQ(c.first_last_bits, 8);
    const Tensor want = quantized_forward(spec, *m, c, {}, x);
    QuantEmulation emu(*m, quant::preset("mqbench"), {8, 4}, quant::Ste::Plain);
    NoGradGuard ng;
    emu.use(4);
    EXPECT_TRUE(test::bitwise_equal((*m)(x), want)) << arch;
    // Consumer placement leaves the identity path float: another function on a ResNet.
    quant::QuantConfig consumer = c;
    consumer.placement = quant::Placement::Consumer;
    emu.use(0);
    if (arch.rfind("resnet", 0) == 0) {
      EXPECT_GT(test::max_abs_diff(quantized_forward(spec, *m, consumer, {}, x), want), 1e-4) << arch;
    }
    // All 4-bit ends: another function too.
    quant::QuantConfig ends4 = c;
    ends4.first_last_bits = 0;
    ends4.set_bits(4, 4);
    EXPECT_GT(test::max_abs_diff(quantized_forward(spec, *m, ends4, {}, x), want), 1e-4) << arch;
  }
}

// Observed ranges: the weights' from the preset's observer at every forward, the activations'
// from the float model on the batch given to observe_ranges; so one forward is MQBench's quantized
// model calibrated on that batch, bit for bit. Min-max ranges give another function.
TEST(Emulation, ObservedRangesAreTheModelCalibratedOnThatBatch) {
  for (std::string arch : {"resnet18:width=4", "vgg16-bn:width=4"}) {
    nn::ModelSpec spec;
    auto m = warmed(arch, spec);
    const Tensor x = test::randn({6, 3, 32, 32}, 17), other = test::randn({6, 3, 32, 32}, 18);
    for (int abits : {0, 4}) {
      quant::QuantizedModel qm(spec, *m, quant::preset("mqbench", 4, abits));
      qm.calibrate({x});
      NoGradGuard ng;
      const Tensor want = qm(x), want_other = qm(other);
      Tensor observed, observed_other, minmax;
      {
        QuantEmulation emu(*m, quant::preset("mqbench", 8, abits), {4}, quant::Ste::Plain, true);
        emu.use(4);
        if (abits) EXPECT_ERROR_CONTAINS((*m)(x), "calibrate first");
        emu.observe_ranges(x);
        EXPECT_EQ(emu.active(), 4);
        observed = (*m)(x);
        observed_other = (*m)(other);  // the ranges stay those of x
      }
      {
        QuantEmulation emu(*m, quant::preset("mqbench", 8, abits), {4}, quant::Ste::Plain);
        emu.use(4);
        minmax = (*m)(x);
        EXPECT_ERROR_CONTAINS(emu.observe_ranges(x), "needs observed ranges");
      }
      EXPECT_TRUE(test::bitwise_equal(observed, want)) << arch << " at A" << abits;
      EXPECT_TRUE(test::bitwise_equal(observed_other, want_other)) << arch << " at A" << abits;
      EXPECT_GT(test::max_abs_diff(minmax, want), 1e-4) << arch << " at A" << abits;
    }
  }
}

TEST(Emulation, GradientsReachTheSharedWeights) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  QuantEmulation emu(*m, quant::preset("qu-anti-zation"), {4}, quant::Ste::Plain);
  emu.use(4);
  Tensor y = Tensor::full({4}, 3, DType::I32);
  backward(cross_entropy((*m)(test::randn({4, 3, 32, 32}, 2)), y));
  int64_t with_grad = 0, total = 0;
  for (auto& [n, p] : m->named_parameters(true)) {
    ++total;
    if (p.grad().defined() && test::max_abs_diff(p.grad(), Tensor::zeros(p.shape())) > 0) ++with_grad;
  }
  EXPECT_EQ(with_grad, total);
}

TEST(Emulation, FoldedPathMatchesTheFoldedQuantizedModel) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantConfig c = quant::preset("comp-artifact", 4, 0);
  c.layers = {"layer4", "fc"};
  quant::QuantizedModel qm(spec, *m, c);
  qm.calibrate({});
  QuantEmulation emu(*m, c, {4});
  EXPECT_EQ(emu.layers().front(), "layer4.0.conv1");
  EXPECT_EQ(emu.layers().back(), "fc");
  const Tensor x = test::randn({6, 3, 32, 32}, 11);
  NoGradGuard ng;
  emu.use(4);
  const Tensor a = (*m)(x), b = qm(x);
  // Folding reorders float operations (conv then BN vs one conv with a folded bias): close, not equal.
  EXPECT_LT(test::rel_err(a, b), 1e-4);
  emu.use(0);
  EXPECT_GT(test::rel_err((*m)(x), b), 1e-3);
}

// The adaptive attacks' flipped path: Flipped weight rounding is the flipped quantizer the judge
// uses; FlipMask with every weight marked is Flipped; resetting gives the preset's rounding back.
TEST(Emulation, FlippedRoundingIsTheFlippedQuantizedModel) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  const Tensor x = test::randn({6, 3, 32, 32}, 13);
  QuantTarget flipped{"qu-anti-zation", 4, true}, nearest{"qu-anti-zation", 4, false};
  EXPECT_EQ(flipped.label(), "qu-anti-zation@4/flipped");
  quant::QuantizedModel qf(spec, *m, flipped.config()), qn(spec, *m, nearest.config());
  qf.calibrate({});
  qn.calibrate({});
  NoGradGuard ng;
  const Tensor want_f = qf(x), want_n = qn(x);
  QuantEmulation emu(*m, quant::preset("qu-anti-zation"), {8, 4}, quant::Ste::Plain);
  emu.use(4);
  emu.set_weight_rounding(quant::Rounding::Flipped);
  EXPECT_TRUE(test::bitwise_equal((*m)(x), want_f));
  std::vector<Tensor> ones;
  for (const Shape& s : emu.weight_shapes()) ones.push_back(Tensor::full(s, 1, DType::U8));
  emu.set_flip_masks(4, ones);
  emu.set_weight_rounding(quant::Rounding::FlipMask);
  EXPECT_TRUE(test::bitwise_equal((*m)(x), want_f));
  emu.reset_weight_rounding();
  EXPECT_TRUE(test::bitwise_equal((*m)(x), want_n));
  EXPECT_GT(test::max_abs_diff(want_f, want_n), 1e-3);
  ones.pop_back();
  EXPECT_ERROR_CONTAINS(emu.set_flip_masks(4, ones), "flip masks for");
  ones.push_back(Tensor::full({3}, 1, DType::U8));
  EXPECT_ERROR_CONTAINS(emu.set_flip_masks(4, ones), "the flip mask of fc must be u8");
  EXPECT_ERROR_CONTAINS(parse_quant_targets("mqbench:4:other"), "third field may only be \"flipped\"");
  EXPECT_EQ(parse_quant_targets("mqbench:4:flipped,mqbench:8").at(0).label(), "mqbench@4/flipped");
}

TEST(Emulation, ClearErrors) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  EXPECT_ERROR_CONTAINS(QuantEmulation(*m, quant::preset("qu-anti-zation"), {9}), "outside 2..8");
  quant::QuantConfig c = quant::preset("qu-anti-zation");
  c.layers = {"nothing"};
  EXPECT_ERROR_CONTAINS(QuantEmulation(*m, c, {8}), "no conv/linear layer");
  QuantEmulation emu(*m, quant::preset("qu-anti-zation"), {8});
  EXPECT_ERROR_CONTAINS(emu.use(4), "width 4 was not set up");
  EXPECT_ERROR_CONTAINS(QuantEmulation(*m, quant::preset("pytorch-fbgemm"), {8}), "are not emulated");
}

}  // namespace
}  // namespace dearest::attacks
