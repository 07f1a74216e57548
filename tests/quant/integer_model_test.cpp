// The integer-only path: gemmlowp's fixed-point primitives on known values, the exact integer
// convolution against plain loops, and the integer ResNet-18 / VGG-16 against the fake-quantized
// emulation they implement.
#include "quant/integer_model.h"

#include <map>
#include <limits>

#include "autograd/ops.h"
#include "nn/init.h"
#include "quant/fake_quant.h"
#include "tests/test_util.h"

namespace dearest::quant {
namespace {

TEST(IntegerOps, FixedPointPrimitives) {
  // 0.5 = 2^30 * 2^(0-31)... frexp(0.5) = 0.5 * 2^0 -> multiplier 2^30, shift 0.
  FixedMultiplier h = quantize_multiplier(0.5);
  EXPECT_EQ(h.multiplier, 1 << 30);
  EXPECT_EQ(h.shift, 0);
  FixedMultiplier q = quantize_multiplier(0.0003);
  EXPECT_GE(q.multiplier, 1 << 30);
  EXPECT_NEAR(double(q.multiplier) * std::ldexp(1.0, q.shift - 31), 0.0003, 1e-12);
  EXPECT_EQ(quantize_multiplier(0).multiplier, 0);
  // Ties in the doubling high multiply: +3.5 -> 4, -3.5 -> -3 (gemmlowp's nudge, then truncation).
  EXPECT_EQ(multiply_by_quantized_multiplier(7, h), 4);
  EXPECT_EQ(multiply_by_quantized_multiplier(-7, h), -3);
  EXPECT_EQ(multiply_by_quantized_multiplier(6, h), 3);
  // rounding_divide_by_pot: round half away from zero.
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);
  EXPECT_EQ(rounding_divide_by_pot(4, 1), 2);
  EXPECT_EQ(rounding_divide_by_pot(13, 2), 3);
  const int32_t mn = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(saturating_rounding_doubling_high_mul(mn, mn), std::numeric_limits<int32_t>::max());
  // Against double arithmetic on many values: within one unit.
  for (double m : {0.9, 0.123, 1.7e-3, 2.5e-5})
    for (int32_t x : {1, -1, 1000, -99999, 123456789, -2000000}) {
      const double want = std::round(double(x) * m);
      EXPECT_LE(std::fabs(multiply_by_quantized_multiplier(x, quantize_multiplier(m)) - want), 1.0) << x << " * " << m;
    }
}

TEST(IntegerOps, ConvAndLinearAreExactIntegers) {
  Tensor x = test::randu({2, 5, 7, 6}, 1, 0, 255).to(DType::I32);
  Tensor w = test::randu({4, 5, 3, 3}, 2, -127, 127).to(DType::I32);
  Tensor b = test::randu({4}, 3, -5000, 5000).to(DType::I32);
  for (int64_t stride : {1, 2}) {
    Conv2dParams p = test::conv_params(stride, 1);
    EXPECT_TRUE(test::bitwise_equal(int_conv2d(x, 117, w, b, p, false), int_conv2d(x, 117, w, b, p, true)));
  }
  // Against a float conv of (x - z): small enough to be exact in f64.
  Tensor xf = sub(x.to(DType::F64), 117.0), wf = w.to(DType::F64);
  Tensor ref = conv2d(xf, wf, b.to(DType::F64), test::conv_params(1, 1));
  EXPECT_EQ(test::max_abs_diff(int_conv2d(x, 117, w, b, test::conv_params(1, 1)).to(DType::F64), ref), 0);
  Tensor xl = test::randu({3, 40}, 4, -128, 127).to(DType::I32), wl = test::randu({6, 40}, 5, -127, 127).to(DType::I32);
  EXPECT_TRUE(test::bitwise_equal(int_linear(xl, -3, wl, Tensor(), false), int_linear(xl, -3, wl, Tensor(), true)));
}

// The integer model against the emulation, quantization point by quantization point: the
// integers the emulation rounds to (recorded by wrapping its quantizers) and those the integer
// model holds. The first requantization differs only where gemmlowp's fixed-point rescaling and
// the float division round a value within ~1e-3 of a step differently (at most one step, a small
// fraction of elements); later points inherit upstream differences. Random networks amplify them
// far more than trained ones: the top-1 agreement on CIFAR-10 is measured in bench/.
void compare(const std::string& spec_text, const std::string& preset_name, Requant rq) {
  nn::ModelSpec spec = nn::ModelSpec::parse(spec_text);
  nn::set_init_seed(3);  // the same weights whatever ran before in this process
  nn::ModulePtr m = nn::build_model(spec);
  {
    NoGradGuard ng;
    m->train();
    for (uint64_t i = 0; i < 3; ++i) (*m)(test::randn({16, 3, 32, 32}, 50 + i));
  }
  m->eval();
  QuantizedModel q(spec, *m, preset(preset_name, 8));
  std::vector<Tensor> calib;
  for (uint64_t i = 0; i < 4; ++i) calib.push_back(test::randn({16, 3, 32, 32}, 70 + i));
  q.calibrate(calib);
  Tensor x = test::randn({64, 3, 32, 32}, 99);
  NoGradGuard ng;
  std::map<std::string, Tensor> emulated;
  std::vector<std::string> order;
  for (auto& a : q.activation_quantizers()) {
    auto tq = a.q;
    const std::string name = a.name;
    auto record = [tq, name, &emulated](const Tensor& t) {
      emulated[name] = fake_quantize_raw(t, tq->scheme(), tq->qparams(), {}, true).q;
      return (*tq)(t);
    };
    nn::Module* mod = q.model().find(name.substr(0, name.find(':')));
    ASSERT_NE(mod, nullptr) << name;
    if (name.find(":output") != std::string::npos) mod->set_output_transform(record);
    else mod->set_input_transform(record);
  }
  Tensor a = q(x).plain();
  IntegerModel im(q, false, rq);
  int points = 0;
  im.trace = [&](const std::string& n, const Tensor& t) {
    ASSERT_TRUE(emulated.count(n)) << n;
    const Tensor& e = emulated[n];
    ASSERT_EQ(t.shape(), e.shape()) << n;
    int64_t differ = 0, worst = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t d = std::abs(int64_t(t.data<int32_t>()[i]) - e.data<int32_t>()[i]);
      differ += d != 0;
      worst = std::max(worst, d);
    }
    if (points == 0) {
      EXPECT_EQ(differ, 0) << n << ": the input is quantized by the same arithmetic";
    }
    if (points == 1) {
      EXPECT_LE(worst, 1) << n;
      EXPECT_LT(double(differ) / double(t.numel()), rq == Requant::Single ? 0.001 : 0.01) << n;
    }
    ++points;
  };
  Tensor b = im.forward(x);
  EXPECT_EQ(points, int(q.activation_quantizers().size())) << "every quantization point is traced";
  Tensor pa = argmax(a, 1), pb = argmax(b, 1);
  int agree = 0;
  for (int64_t i = 0; i < 64; ++i) agree += pa.data<int32_t>()[i] == pb.data<int32_t>()[i];
  EXPECT_GE(agree, rq == Requant::Single ? 63 : 58) << spec_text << " " << preset_name;
  // The reference loops give the very same integers.
  IntegerModel slow(q, true, rq);
  EXPECT_TRUE(test::bitwise_equal(slow.forward(x.slice(0, 0, 2).contiguous()), b.slice(0, 0, 2).contiguous()));
}

TEST(IntegerModel, ResNetAgreesWithTheEmulation) {
  compare("resnet18:width=8", "tflite-int8", Requant::Gemmlowp);
  compare("resnet18:width=8", "tflite-int8", Requant::Single);
}
TEST(IntegerModel, ResNetImagenetStemAgreesWithTheEmulation) {
  compare("resnet18:width=8,stem=imagenet", "pytorch-fbgemm", Requant::Gemmlowp);
  compare("resnet18:width=8,stem=imagenet", "pytorch-fbgemm", Requant::Single);
}
TEST(IntegerModel, VggAgreesWithTheEmulation) {
  compare("vgg16-bn:width=8", "pytorch-qnnpack", Requant::Gemmlowp);
  compare("vgg16-bn:width=8", "pytorch-qnnpack", Requant::Single);
}

TEST(IntegerModel, RefusesModelsItCannotRun) {
  nn::ModelSpec spec = nn::ModelSpec::parse("resnet18:width=8");
  nn::set_init_seed(3);  // the same weights whatever ran before in this process
  nn::ModulePtr m = nn::build_model(spec);
  m->eval();
  QuantizedModel q(spec, *m, preset("mqbench", 8));
  q.calibrate({test::randn({4, 3, 32, 32}, 1)});
  EXPECT_ERROR_CONTAINS(IntegerModel im(q), "folded");
  QuantizedModel d(spec, *m, preset("qu-anti-zation", 8));
  EXPECT_NE(IntegerModel::unsupported_reason(d), "");
}

}  // namespace
}  // namespace dearest::quant
