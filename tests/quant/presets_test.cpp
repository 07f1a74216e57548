// Each preset's weight and activation quantizers against its reference code's formula, written
// out independently here, on crafted channels: a zero channel, an all-negative channel, values on
// .5 ties, values at and beyond the range ends.
#include "quant/presets.h"

#include <cmath>

#include "quant/fake_quant.h"
#include "quant/observer.h"
#include "quant/qparams.h"
#include "tests/test_util.h"

namespace dearest::quant {
namespace {

// 4 output channels x 6 values: zero; all negative; mixed with exact ties for a step of 0.1; an
// outlier channel.
Tensor crafted() {
  return Tensor::from_vector(std::vector<float>{0, 0, 0, 0, 0, 0,                      //
                                                -0.5f, -0.25f, -1.0f, -0.75f, -0.1f, -0.3f,  //
                                                0.05f, -0.15f, 0.25f, 0.35f, -0.45f, 0.6f,   //
                                                3.0f, -0.01f, 0.02f, 0.5f, -2.5f, 1.25f},
                             {4, 6});
}

// Runs the scheme with min-max qparams on each channel (or the tensor) and returns q.
std::vector<double> run(const QuantScheme& s, const Tensor& x) {
  auto [mn, mx] = tensor_range(s, x);
  return fake_quantize_raw(x, s, qparams_from_range(s, mn, mx), {}, true).q.to_vector();
}

std::vector<std::vector<float>> rows(const Tensor& x) {
  std::vector<std::vector<float>> r(4);
  auto v = x.to_vector();
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 6; ++i) r[size_t(c)].push_back(float(v[size_t(c * 6 + i)]));
  return r;
}

TEST(Presets, TfliteConvWeightsAreSymmetricPerChannelOver127HalfAway) {
  QuantScheme s = preset("tflite-int8", 8).conv_weight;
  auto q = run(s, crafted());
  auto r = rows(crafted());
  for (int c = 0; c < 4; ++c) {
    float m = 0;
    for (float v : r[size_t(c)]) m = std::max(m, std::fabs(v));
    const float scale = std::max(m / 127.0f, 1.1920928955078125e-07f);
    const float inv = 1.0f / scale;
    for (int i = 0; i < 6; ++i) {
      const double want = std::clamp(double(std::round(r[size_t(c)][size_t(i)] * inv)), -127.0, 127.0);
      EXPECT_EQ(q[size_t(c * 6 + i)], want) << c << "," << i;
    }
  }
  EXPECT_FALSE(preset("tflite-int8", 8).linear_weight.per_channel);
  EXPECT_TRUE(preset("tflite-int8", 8).fold_bn);
}

TEST(Presets, PytorchWeightsAreSymmetricOver127Point5HalfEven) {
  for (std::string p : {"pytorch-fbgemm", "pytorch-qnnpack"}) {
    QuantScheme s = preset(p, 8).conv_weight;
    EXPECT_EQ(s.per_channel, p == "pytorch-fbgemm");
    auto q = run(s, crafted());
    auto r = rows(crafted());
    float tensor_max = 0;
    for (auto& row : r)
      for (float v : row) tensor_max = std::max(tensor_max, std::fabs(v));
    for (int c = 0; c < 4; ++c) {
      float m = 0;
      for (float v : r[size_t(c)]) m = std::max(m, std::fabs(v));
      const float scale = std::max((s.per_channel ? m : tensor_max) / 127.5f, 1.1920928955078125e-07f);
      for (int i = 0; i < 6; ++i) {
        const double want = std::clamp(double(std::nearbyint(r[size_t(c)][size_t(i)] * (1.0f / scale))), -128.0, 127.0);
        EXPECT_EQ(q[size_t(c * 6 + i)], want) << p << " " << c << "," << i;
      }
    }
  }
  // fbgemm's activations are 7-bit (reduce_range), qnnpack's 8-bit.
  EXPECT_EQ(preset("pytorch-fbgemm", 8).act.qmax, 127);
  EXPECT_EQ(preset("pytorch-qnnpack", 8).act.qmax, 255);
}

TEST(Presets, QuAntiZationIsMultiplicativeHalfUpPerLayer) {
  for (int bits : {8, 4}) {
    QuantScheme s = preset("qu-anti-zation", bits).conv_weight;
    auto q = run(s, crafted());
    auto r = rows(crafted());
    float m = 0;
    for (auto& row : r)
      for (float v : row) m = std::max(m, std::fabs(v));
    const float S = float((1 << (bits - 1)) - 1) / (m + 1e-14f);
    const double lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    for (int c = 0; c < 4; ++c)
      for (int i = 0; i < 6; ++i) {
        const double want = std::clamp(double(std::floor(r[size_t(c)][size_t(i)] * S + 0.5f)), lo, hi);
        EXPECT_EQ(q[size_t(c * 6 + i)], want) << bits << " " << c << "," << i;
      }
  }
  QuantConfig c = preset("qu-anti-zation", 4);
  EXPECT_TRUE(c.dynamic_acts);
  EXPECT_EQ(c.act.qmin, 0);
  EXPECT_EQ(c.act.qmax, 15);
  EXPECT_EQ(c.placement, Placement::Consumer);
}

TEST(Presets, MqbenchIsAffinePerChannelWithTorchsZeroPoint) {
  QuantScheme s = preset("mqbench", 4).conv_weight;
  auto q = run(s, crafted());
  auto r = rows(crafted());
  for (int c = 0; c < 4; ++c) {
    float mn = 0, mx = 0;
    for (float v : r[size_t(c)]) {
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    const float scale = std::max((mx - mn) / 15.0f, 1.1920928955078125e-07f);
    const double z = std::clamp(0.0 - double(std::nearbyint(mn / scale)), 0.0, 15.0);
    for (int i = 0; i < 6; ++i) {
      const double want = std::clamp(double(std::nearbyint(r[size_t(c)][size_t(i)] * (1.0f / scale))) + z, 0.0, 15.0);
      EXPECT_EQ(q[size_t(c * 6 + i)], want) << c << "," << i;
    }
  }
  QuantConfig c = preset("mqbench", 4);
  EXPECT_EQ(c.first_last_bits, 8);
  EXPECT_EQ(c.weight_obs.kind, ObserverKind::Mse);
  EXPECT_EQ(c.act_obs.kind, ObserverKind::EmaMse);
  EXPECT_EQ(c.act_obs.candidates, 95);
  EXPECT_FALSE(c.fold_bn);
}

TEST(Presets, PqBackdoorEmulation) {
  // Weights: w / (max|w| / 127.5) rounded half-even and not clamped, so the largest weight of a
  // channel becomes +-128 (fbgemm mode); tf mode divides by 127.
  QuantScheme fb = preset("pq-emulation-fbgemm", 8).conv_weight;
  auto q = run(fb, crafted());
  auto r = rows(crafted());
  for (int c = 1; c < 4; ++c) {
    float m = 0;
    for (float v : r[size_t(c)]) m = std::max(m, std::fabs(v));
    const float scale = m / 127.5f;
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(q[size_t(c * 6 + i)], double(std::nearbyint(r[size_t(c)][size_t(i)] / scale))) << c << "," << i;
  }
  EXPECT_EQ(q[size_t(3 * 6 + 0)], 128.0);  // 3.0 is channel 3's max: 127.5 rounds (half-even) to 128
  EXPECT_FALSE(preset("pq-emulation-qnnpack", 8).conv_weight.per_channel);
  EXPECT_TRUE(preset("pq-emulation-fbgemm", 8).linear_weight.per_channel);
  EXPECT_FALSE(preset("pq-emulation-tf", 8).linear_weight.per_channel);
  EXPECT_EQ(preset("pq-emulation-tf", 8).conv_weight.qmin, -127);
  // Inputs: round(x/s + zf) - round(zf), s = (max - min)/255, zf = -(min/s + 128), per batch.
  QuantScheme a = preset("pq-emulation-tf", 8).act;
  Tensor x = crafted();
  auto [mn, mx] = tensor_range(a, x);
  QParams qp = qparams_from_range(a, mn, mx);
  const float lo = -2.5f, hi = 3.0f, st = (hi - lo) / 255.0f, zf = -(lo / st + 128.0f);
  EXPECT_EQ(qp.scale.data<float>()[0], st);
  EXPECT_EQ(qp.zero_float.data<float>()[0], zf);
  auto y = fake_quantize_raw(x, a, qp).y.to_vector();
  auto xs = x.to_vector();
  for (size_t i = 0; i < xs.size(); ++i)
    EXPECT_EQ(y[i], double((std::nearbyint(float(xs[i]) / st + zf) - std::nearbyint(zf)) * st)) << i;
  EXPECT_ERROR_CONTAINS(preset("pq-emulation-tf", 4), "8-bit");
}

TEST(Presets, EfrapStandardIsTheEvaluationHelpersQuantizer) {
  // Weights (utils.weight_quantize): per tensor, w / (max|w| / (2^(b-1) - 0.5)), floor(v + 0.5),
  // never clamped, so at 4 bits the largest weight, 7.5 steps, becomes 8.
  for (int bits : {4, 8}) {
    QuantConfig c = preset("efrap-standard", bits);
    EXPECT_EQ(c.a_bits, bits);
    EXPECT_FALSE(c.fold_bn);
    EXPECT_EQ(c.first_last_bits, 0);
    EXPECT_TRUE(c.dynamic_weights && c.dynamic_acts);
    const Tensor x = crafted();
    auto q = run(c.conv_weight, x);
    auto xs = x.to_vector();
    const float half = float(1 << (bits - 1)) - 0.5f, scale = 3.0f / half;
    for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(q[i], double(std::floor(float(xs[i]) / scale + 0.5f))) << bits << "," << i;
    EXPECT_EQ(q[size_t(3 * 6)], double(1 << (bits - 1)));  // 3.0 = max|w|, one past the signed range
    // Inputs (utils.input_quantize) at the same bits: floor(x/s + zf + 0.5) - floor(zf + 0.5),
    // s = (max - min)/(2^b - 1), zf = -(min/s + 2^(b-1)), neither clamped.
    QuantScheme a = c.act;
    auto [mn, mx] = tensor_range(a, x);
    QParams qp = qparams_from_range(a, mn, mx);
    const float lo = -2.5f, hi = 3.0f, st = (hi - lo) / float((1 << bits) - 1), zf = -(lo / st + float(1 << (bits - 1)));
    EXPECT_EQ(qp.scale.data<float>()[0], st);
    EXPECT_EQ(qp.zero_float.data<float>()[0], zf);
    EXPECT_EQ(qp.zero_point.data<int32_t>()[0], int32_t(std::floor(zf + 0.5f)));
    auto y = fake_quantize_raw(x, a, qp).y.to_vector();
    for (size_t i = 0; i < xs.size(); ++i)
      EXPECT_EQ(y[i], double((std::floor(float(xs[i]) / st + zf + 0.5f) - std::floor(zf + 0.5f)) * st)) << bits << "," << i;
  }
  EXPECT_EQ(preset("efrap-standard", 4, 0).a_bits, 0);  // the README's EFRAP rows: float activations
}

TEST(Presets, CompArtifactAndOcs) {
  QuantConfig ca = preset("comp-artifact", 8);
  EXPECT_EQ(ca.a_bits, 0);
  EXPECT_TRUE(ca.fold_bn);
  EXPECT_FALSE(ca.conv_weight.per_channel);
  EXPECT_EQ(ca.conv_weight.qmin, -128);  // /127.5
  QuantConfig o = preset("ocs", 4);
  EXPECT_FALSE(o.quantize_first);
  EXPECT_FALSE(o.quantize_linear);
  EXPECT_GT(o.ocs_expand, 0);
  for (auto& n : preset_names()) EXPECT_NO_THROW(preset(n, n.rfind("pq-", 0) == 0 ? 8 : 4)) << n;
}

}  // namespace
}  // namespace dearest::quant
