// Model quantization: BN folding keeps the function, the presets put quantizers where their
// reference code does, weights seen by the layers are exactly the fake-quantized ones, errors.
#include "quant/quantized_model.h"

#include <iostream>

#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/models.h"
#include "quant/fake_quant.h"
#include "quant/qparams.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"
#include "tests/model_test_util.h"

namespace dearest::quant {
namespace {

// A model with non-trivial batch-norm statistics: a few train-mode forwards on random data.
nn::ModulePtr warmed(const std::string& spec_text, nn::ModelSpec& spec) {
  return test::warmed_model(spec_text, spec, 3, 100, 1.5, 0.2);
}

std::vector<Tensor> calib(int n, uint64_t seed) {
  std::vector<Tensor> b;
  for (int i = 0; i < n; ++i) b.push_back(test::randn({8, 3, 32, 32}, seed + uint64_t(i)));
  return b;
}

TEST(QuantizedModel, BatchNormFoldingKeepsTheFunction) {
  for (std::string s : {"resnet18:width=8", "vgg16-bn:width=8", "resnet18:width=8,stem=imagenet"}) {
    nn::ModelSpec spec;
    auto m = warmed(s, spec);
    auto f = clone_model(spec, *m);
    const int n = fold_batchnorm(*f);
    EXPECT_EQ(n, s.rfind("vgg", 0) == 0 ? 13 : 20) << s;
    Tensor x = test::randn({4, 3, 32, 32}, 9);
    NoGradGuard ng;
    EXPECT_LT(test::rel_err((*f)(x), (*m)(x)), 2e-5) << s;
    // A clone of a folded model is folded too.
    EXPECT_LT(test::rel_err((*clone_model(spec, *f))(x), (*m)(x)), 2e-5) << s;
  }
}

TEST(QuantizedModel, MqbenchPlacesQuantizersAsMQBenchDoes) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  QuantizedModel q(spec, *m, preset("mqbench", 4));
  ASSERT_EQ(q.layers().size(), 21u);
  EXPECT_TRUE(q.layers().front().first);
  EXPECT_TRUE(q.layers().back().last);
  EXPECT_EQ(q.layers().front().weight_bits, 8);
  EXPECT_EQ(q.layers().front().input_bits, 8);
  EXPECT_EQ(q.layers().back().weight_bits, 8);
  EXPECT_EQ(q.layer("layer1.0.conv2").weight_bits, 4);
  // One quantizer per producer: the block input serves conv1, the downsample conv and the identity.
  EXPECT_EQ(q.layer("layer2.0.conv1").input.get(), q.layer("layer2.0.downsample.0").input.get());
  EXPECT_EQ(q.layer("layer2.0.conv1").input_name, "layer2.0:input");
  EXPECT_NE(q.layer("layer2.0.conv2").input.get(), q.layer("layer2.0.conv1").input.get());
  // 1 stem input + 8 block inputs + 8 conv2 inputs + fc input.
  EXPECT_EQ(q.activation_quantizers().size(), 18u);
  EXPECT_FALSE(q.config().fold_bn);
  q.calibrate(calib(3, 40));
  EXPECT_TRUE(q.calibrated());
  EXPECT_EQ(q.layer("layer1.0.conv1").weight->qparams().channels(), 8);  // per channel
  EXPECT_EQ(q.layer("layer1.0.conv1").input->qparams().channels(), 1);   // per tensor
  EXPECT_EQ(q.layer("layer1.0.conv1").input->scheme().qmax, 15);
  EXPECT_EQ(q.layers().back().input->scheme().qmax, 255);
}

TEST(QuantizedModel, LayersComputeWithTheFakeQuantizedWeights) {
  nn::ModelSpec spec;
  auto m = warmed("vgg16-bn:width=8", spec);
  for (std::string p : {"mqbench", "tflite-int8", "pytorch-qnnpack", "qu-anti-zation"}) {
    QuantizedModel q(spec, *m, preset(p, 8, 0));
    q.calibrate(calib(1, 1));
    // The same model with its weights replaced by the quantized ones, no quantizers.
    auto ref = clone_model(spec, q.model());
    ref->clear_transforms();
    for (auto& [n, mod] : ref->named_modules()) {
      if (auto* c = dynamic_cast<nn::Conv2d*>(mod)) c->weight_transform = nullptr;
      if (auto* l = dynamic_cast<nn::Linear*>(mod)) l->weight_transform = nullptr;
    }
    {
      NoGradGuard ng;
      for (auto& l : q.layers()) {
        Tensor w = q.quantized_weight(l);
        for (auto& [n, mod] : ref->named_modules())
          if (n == l.name) {
            if (auto* c = dynamic_cast<nn::Conv2d*>(mod)) c->weight().copy_(w);
            if (auto* li = dynamic_cast<nn::Linear*>(mod)) li->weight().copy_(w);
          }
      }
    }
    Tensor x = test::randn({4, 3, 32, 32}, 5);
    NoGradGuard ng;
    EXPECT_TRUE(test::bitwise_equal((*ref)(x).plain(), q(x).plain())) << p;
    // ... and the quantized weights differ from the float ones.
    EXPECT_GT(test::max_abs_diff(q.quantized_weight(q.layers()[3]), q.layers()[3].float_weight()), 0) << p;
  }
}

TEST(QuantizedModel, IntegerWeightsAndScalesReconstructTheWeights) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  QuantizedModel q(spec, *m, preset("mqbench", 4));
  q.calibrate(calib(2, 3));
  for (auto& l : q.layers()) {
    Tensor qi = q.integer_weight(l), w = q.quantized_weight(l);
    auto qs = qi.to_vector(), ws = w.to_vector();
    const auto& qp = l.weight->qparams();
    const int64_t C = qp.channels(), per = qi.numel() / C;
    for (int64_t i = 0; i < qi.numel(); i += 7) {
      const int64_t c = i / per;
      EXPECT_GE(qs[size_t(i)], l.weight->scheme().qmin);
      EXPECT_LE(qs[size_t(i)], l.weight->scheme().qmax);
      EXPECT_EQ(ws[size_t(i)], double(float(qs[size_t(i)] - qp.zero_point.data<int32_t>()[c]) * qp.scale.data<float>()[c]));
    }
  }
}

TEST(QuantizedModel, RoundingMaskSaysWhichWeightsWentUp) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  QuantizedModel q(spec, *m, preset("mqbench", 4));
  q.calibrate(calib(2, 3));
  QuantLayer& l = q.layer("layer2.0.conv2");
  Tensor up = q.rounded_up(l);
  auto u = up.to_vector(), v = scaled_value(l.float_weight().detach(), l.weight->scheme(), l.weight->qparams()).to_vector();
  double frac = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    EXPECT_EQ(u[i], std::nearbyint(float(v[i])) > v[i] ? 1.0 : 0.0);
    frac += u[i];
  }
  frac /= double(u.size());
  EXPECT_GT(frac, 0.35);
  EXPECT_LT(frac, 0.65);
  // Flipped rounding turns every off-grid element the other way.
  QuantScheme f = l.weight->scheme();
  f.rounding = Rounding::Flipped;
  l.weight->set_scheme(f);
  auto flipped = q.rounded_up(l).to_vector();
  for (size_t i = 0; i < u.size(); ++i)
    if (v[i] != std::nearbyint(float(v[i]))) {
      EXPECT_NE(flipped[i], u[i]) << i;
    }
}

TEST(QuantizedModel, EightBitStaysCloseToFloatAndFourBitLess) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  Tensor x = test::randn({32, 3, 32, 32}, 77);
  NoGradGuard ng;
  Tensor ref = (*m)(x);
  double err8 = 0, err4 = 0;
  for (int bits : {8, 4}) {
    QuantizedModel q(spec, *m, preset("mqbench", bits));
    q.calibrate(calib(4, 60));
    (bits == 8 ? err8 : err4) = test::rel_err(q(x), ref);
  }
  std::cout << "relative logit error: W8A8 " << err8 << ", W4A4 " << err4 << "\n";
  EXPECT_LT(err8, 0.15);
  EXPECT_GT(err4, 3 * err8);
}

TEST(QuantizedModel, QuAntiZationQuantizesPerBatchAtEveryLayerInput) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  QuantizedModel q(spec, *m, preset("qu-anti-zation", 4));
  EXPECT_EQ(q.activation_quantizers().size(), 21u);  // consumer placement: one per conv/linear
  EXPECT_EQ(q.layers().front().weight_bits, 4);      // no 8-bit first/last
  q.calibrate({});                                   // nothing to calibrate: all ranges are dynamic
  NoGradGuard ng;
  Tensor a = test::randn({4, 3, 32, 32}, 1), b = test::randn({4, 3, 32, 32}, 2);
  Tensor both = Tensor::empty({8, 3, 32, 32});
  both.slice(0, 0, 4).copy_(a);
  both.slice(0, 4, 8).copy_(b);
  // Batch-dependent: image a's logits change when b shares its batch.
  EXPECT_GT(test::max_abs_diff(q(a), q(both).slice(0, 0, 4)), 0);
}

TEST(QuantizedModel, CompArtifactQuantizesOnlyTheChosenLayers) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  QuantConfig c = preset("comp-artifact", 8);
  c.layers = {"layer4", "fc"};
  QuantizedModel q(spec, *m, c);
  EXPECT_EQ(q.layers().size(), 6u);  // layer4: 2 blocks x 2 convs + downsample, and fc
  EXPECT_TRUE(q.activation_quantizers().empty());
  EXPECT_TRUE(q.config().fold_bn);
}

TEST(QuantizedModel, CalibrationIsDeterministic) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  auto qparams_of = [&](int threads) {
    const int before = num_threads();
    set_num_threads(threads);
    QuantizedModel q(spec, *m, preset("mqbench", 4));
    q.calibrate(calib(3, 21));
    std::vector<Tensor> out;
    for (auto& l : q.layers()) out.push_back(l.weight->qparams().scale), out.push_back(l.weight->qparams().zero_point);
    for (auto& a : q.activation_quantizers()) out.push_back(a.q->qparams().scale), out.push_back(a.q->qparams().zero_point);
    set_num_threads(before);
    return out;
  };
  // Same data, same thread count: the same bits (the engine promises no more across thread counts).
  auto b = qparams_of(2), c = qparams_of(2);
  ASSERT_EQ(b.size(), c.size());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_TRUE(test::bitwise_equal(b[i], c[i])) << i;
}

TEST(QuantizedModel, IntegerRuntimePresetsQuantizeBeforePooling) {
  nn::ModelSpec vspec;
  auto v = warmed("vgg16-bn:width=8", vspec);
  QuantizedModel qv(vspec, *v, preset("pytorch-fbgemm", 8));
  // The conv after the first max-pool reads a tensor quantized on the pool's input.
  const QuantLayer& after_pool = qv.layer("features.7");
  EXPECT_TRUE(after_pool.input_before_pool);
  EXPECT_EQ(after_pool.input_name, "features.6:input");
  EXPECT_FALSE(qv.layer("features.3").input_before_pool);
  EXPECT_TRUE(qv.layer("classifier").input_before_pool);
  // MQBench quantizes at the conv input, after the pool.
  QuantizedModel mv(vspec, *v, preset("mqbench", 8));
  EXPECT_EQ(mv.layer("features.7").input_name, "features.7:input");
  // ResNet: the head takes the last block's qparams (average pooling keeps them).
  nn::ModelSpec rspec;
  auto r = warmed("resnet18:width=8", rspec);
  QuantizedModel qr(rspec, *r, preset("tflite-int8", 8));
  qr.calibrate(calib(2, 8));
  const QuantLayer& fc = qr.layer("fc");
  const TensorQuantizer* last = nullptr;
  for (auto& a : qr.activation_quantizers())
    if (a.name == "layer4.1:output") last = a.q.get();
  ASSERT_NE(last, nullptr);
  EXPECT_TRUE(test::bitwise_equal(fc.input->qparams().scale, last->qparams().scale));
  EXPECT_TRUE(test::bitwise_equal(fc.input->qparams().zero_point, last->qparams().zero_point));
}

TEST(QuantizedModel, ClearErrors) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=8", spec);
  EXPECT_ERROR_CONTAINS(preset("mqbench", 9), "2..8");
  EXPECT_ERROR_CONTAINS(preset("mqbench", 4, 1), "activation bits");
  EXPECT_ERROR_CONTAINS(preset("tensorrt", 8), "unknown preset");
  QuantConfig c = preset("mqbench", 8);
  c.layers = {"no_such_layer"};
  EXPECT_ERROR_CONTAINS(QuantizedModel(spec, *m, c), "no layer matches");
  QuantizedModel q(spec, *m, preset("mqbench", 8));
  EXPECT_ERROR_CONTAINS(q.calibrate({test::randn({2, 3, 64, 64}, 1)}), "calibration batches");
  EXPECT_ERROR_CONTAINS(q.calibrate({}), "at least one batch");
  EXPECT_ERROR_CONTAINS(q.set_enabled(true, true), "not calibrated");
}

}  // namespace
}  // namespace dearest::quant
