// Fake quantization against the reference formulas: crafted ties and clamp edges for every
// rounding and scale form, PyTorch's golden values (fq4pc, fq8t), the STE rule, idempotence.
#include "quant/fake_quant.h"

#include <cstring>
#include <filesystem>

#include "autograd/ops.h"
#include "quant/element.h"
#include "quant/qparams.h"
#include "tensor/ops/conv.h"
#include "tensor/rng.h"
#include "tensor/safetensors.h"
#include "tests/test_util.h"

namespace dearest::quant {
namespace {

QParams per_tensor(float scale, int32_t z) {
  return {Tensor::full({1}, scale, DType::F32), Tensor::full({1}, z, DType::I32)};
}
Tensor vec(const std::vector<float>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }
std::vector<double> values(const Tensor& t) { return t.to_vector(); }

TEST(FakeQuant, RoundingModesOnTiesAndClampEdges) {
  // step 0.5, z = 0, signed 4-bit [-8, 7]: v = x / 0.5 = 2x.
  QuantScheme s = QuantScheme::make(4, true, true, false);
  QParams qp = per_tensor(0.5f, 0);
  Tensor x = vec({0.25f, 0.75f, -0.25f, -0.75f, 0.3f, 3.6f, 3.9f, -4.1f, -5.0f, 1.0f});
  //               v:  0.5    1.5    -0.5    -1.5   0.6   7.2   7.8   -8.2   -10   2
  auto run = [&](Rounding r) {
    QuantScheme t = s;
    t.rounding = r;
    return fake_quantize_raw(x, t, qp, {}, true).q.to_vector();
  };
  EXPECT_EQ(run(Rounding::HalfEven), (std::vector<double>{0, 2, 0, -2, 1, 7, 7, -8, -8, 2}));
  EXPECT_EQ(run(Rounding::HalfUp), (std::vector<double>{1, 2, 0, -1, 1, 7, 7, -8, -8, 2}));
  EXPECT_EQ(run(Rounding::HalfAway), (std::vector<double>{1, 2, -1, -2, 1, 7, 7, -8, -8, 2}));
  EXPECT_EQ(run(Rounding::Floor), (std::vector<double>{0, 1, -1, -2, 0, 7, 7, -8, -8, 2}));
  EXPECT_EQ(run(Rounding::Ceil), (std::vector<double>{1, 2, 0, -1, 1, 7, 7, -8, -8, 2}));
  // Flipped: the other neighbour of the half-even choice; integers stay.
  EXPECT_EQ(run(Rounding::Flipped), (std::vector<double>{1, 1, -1, -1, 0, 7, 7, -8, -8, 2}));
  // Dequantized: q * 0.5.
  EXPECT_EQ(values(fake_quantize_raw(x, s, qp).y), (std::vector<double>{0, 1, 0, -1, 0.5, 3.5, 3.5, -4, -4, 1}));
}

TEST(FakeQuant, FlippedDiffersFromNearestExactlyOffTheGrid) {
  QuantScheme s = QuantScheme::make(8, false, false, true);
  Tensor x = test::randn({6, 5, 3, 3}, 3);
  auto [mn, mx] = tensor_range(s, x);
  QParams qp = qparams_from_range(s, mn, mx);
  Tensor v = scaled_value(x, s, qp);
  QuantScheme f = s;
  f.rounding = Rounding::Flipped;
  // Wide enough integer range that no clamp hides a flip: compare the unclamped rounding.
  Tensor qn = fake_quantize_raw(x, s, qp, {}, true).q, qf = fake_quantize_raw(x, f, qp, {}, true).q;
  auto vv = v.to_vector(), a = qn.to_vector(), b = qf.to_vector();
  int64_t differ = 0, off_grid = 0;
  for (size_t i = 0; i < vv.size(); ++i) {
    const bool on_grid = vv[i] == std::nearbyint(vv[i]);
    const bool clamped = a[i] == s.qmin || a[i] == s.qmax || b[i] == s.qmin - 1 || b[i] == s.qmax + 1;
    if (clamped) continue;
    off_grid += !on_grid;
    differ += a[i] != b[i];
    EXPECT_EQ(a[i] != b[i], !on_grid) << "element " << i << " v=" << vv[i];
    if (!on_grid) {
      EXPECT_EQ(std::fabs(a[i] - b[i]), 1.0);
    }
  }
  EXPECT_GT(off_grid, 200);
  EXPECT_EQ(differ, off_grid);
}

TEST(FakeQuant, MaskRoundingIsFloorPlusMask) {
  QuantScheme s = QuantScheme::make(4, false, false, false);
  s.form = ScaleForm::Divide;
  s.rounding = Rounding::Mask;
  QParams qp = per_tensor(0.1f, 3);
  Tensor x = vec({0.05f, 0.05f, 0.0f, 0.0f, 1.23f, -0.31f});
  Tensor up = Tensor::from_vector(std::vector<uint8_t>{0, 1, 0, 1, 1, 0}, {6});
  auto q = fake_quantize_raw(x, s, qp, up, true).q.to_vector();
  // floor(v) + up + z, clamped to [0, 15]: v = 0.5, 0.5, 0, 0, 12.3, -3.1
  EXPECT_EQ(q, (std::vector<double>{3, 4, 3, 4, 15, 0}));
  EXPECT_ERROR_CONTAINS(fake_quantize_raw(x, s, qp), "u8 mask");
}

// FlipMask: the flipped neighbour where the mask says so, half-even nearest elsewhere; grid values
// stay where they are either way. All ones is Flipped, all zeros HalfEven.
TEST(FakeQuant, FlipMaskFlipsExactlyTheMarkedElements) {
  QuantScheme s = QuantScheme::make(4, true, true, false);
  QParams qp = per_tensor(0.5f, 0);
  Tensor x = vec({0.25f, 0.75f, -0.25f, -0.75f, 0.3f, 3.6f, 1.0f, 1.0f});
  //               v:  0.5    1.5    -0.5    -1.5   0.6   7.2   2     2
  Tensor flip = Tensor::from_vector(std::vector<uint8_t>{1, 0, 1, 0, 1, 1, 1, 0}, {8});
  QuantScheme f = s;
  f.rounding = Rounding::FlipMask;
  EXPECT_EQ(fake_quantize_raw(x, f, qp, flip, true).q.to_vector(), (std::vector<double>{1, 2, -1, -2, 0, 7, 2, 2}));
  const Tensor w = test::randn({4, 3, 3, 3}, 5);
  auto [mn, mx] = tensor_range(s, w);
  const QParams wq = qparams_from_range(s, mn, mx);
  QuantScheme fl = s, ne = s;
  fl.rounding = Rounding::Flipped;
  const Tensor ones = Tensor::full(w.shape(), 1.0, DType::U8), zeros = Tensor::zeros(w.shape(), DType::U8);
  EXPECT_EQ(fake_quantize_raw(w, f, wq, ones, true).q.to_vector(), fake_quantize_raw(w, fl, wq, {}, true).q.to_vector());
  EXPECT_EQ(fake_quantize_raw(w, f, wq, zeros, true).q.to_vector(), fake_quantize_raw(w, ne, wq, {}, true).q.to_vector());
  EXPECT_ERROR_CONTAINS(fake_quantize_raw(w, f, wq), "flip-mask rounding needs a u8 mask");
}

// Large tensors are cut into chunks across threads (a per-tensor activation is one long row):
// every element must still equal the element-wise reference, and the range the plain min/max.
TEST(FakeQuant, ChunkedKernelsMatchTheElementwiseReference) {
  for (bool per_channel : {false, true}) {
    QuantScheme s = QuantScheme::make(4, false, false, per_channel);
    s.axis = 1;
    const Tensor x = Rng(3, 9).normal({3, 5, 70001});  // inner rows longer than a chunk, odd length
    auto [mn, mx] = tensor_range(s, x);
    const int64_t C = per_channel ? 5 : 1;
    const float* d = x.data<float>();
    for (int64_t c = 0; c < C; ++c) {
      float lo = INFINITY, hi = -INFINITY;
      for (int64_t o = 0; o < 3; ++o)
        for (int64_t ch = 0; ch < 5; ++ch)
          for (int64_t i = 0; i < 70001; ++i)
            if (!per_channel || ch == c) {
              lo = std::min(lo, d[(o * 5 + ch) * 70001 + i]);
              hi = std::max(hi, d[(o * 5 + ch) * 70001 + i]);
            }
      EXPECT_EQ(mn.data<float>()[c], lo);
      EXPECT_EQ(mx.data<float>()[c], hi);
    }
    const QParams qp = qparams_from_range(s, mn, mx);
    const FakeQuantResult r = fake_quantize_raw(x, s, qp, {}, true, true);
    int64_t wrong = 0;
    for (int64_t k = 0; k < x.numel(); ++k) {
      const int64_t c = per_channel ? (k / 70001) % 5 : 0;
      const float sc = qp.scale.data<float>()[c];
      const float want = fake_quantize_element(s, d[k], sc, 1.0f / sc, qp.zero_point.data<int32_t>()[c]);
      wrong += r.y.data<float>()[k] != want;
    }
    EXPECT_EQ(wrong, 0) << (per_channel ? "per channel" : "per tensor");
  }
}

TEST(FakeQuant, RangeSkipsNaNAtEveryPositionOfTheVectorLoop) {
  // tensor_range reduces in vectors of 32 then a scalar tail: a NaN anywhere, in a vector block or
  // the tail, never becomes a bound, and the extremes are found in both parts.
  const QuantScheme s = QuantScheme::make(8, false, false, false);
  for (int64_t n : {5, 32, 67, 100}) {
    for (int64_t nan_at = 0; nan_at < n; ++nan_at) {
      std::vector<float> v(static_cast<size_t>(n), 0.0f);
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float((i * 37) % 23) - 11.0f;
      // the extremes earlier in the NaN's own vector lane: a NaN taken into a lane would lose them
      if (nan_at >= 32) v[size_t(nan_at - 32)] = -100.0f;
      if (nan_at >= 64) v[size_t(nan_at - 64)] = 100.0f;
      v[size_t(nan_at)] = NAN;
      float lo = INFINITY, hi = -INFINITY;
      for (float f : v)
        if (!std::isnan(f)) lo = std::min(lo, f), hi = std::max(hi, f);
      auto [mn, mx] = tensor_range(s, vec(v));
      EXPECT_EQ(mn.data<float>()[0], lo) << "n " << n << ", NaN at " << nan_at;
      EXPECT_EQ(mx.data<float>()[0], hi) << "n " << n << ", NaN at " << nan_at;
    }
  }
}

TEST(FakeQuant, BlockedActivationsQuantizedInTheirOwnLayout) {
  // A conv's blocked output under a per-tensor scheme: ranged and fake-quantized in its byte order,
  // the result still blocked and, read back, the bits of quantizing the plain tensor. A padded
  // layout (5 channels) and a per-channel scheme go through plain and agree too.
  for (int64_t channels : {16, 5}) {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    const Tensor x = raw::conv2d(test::randn({4, 16, 8, 8}, 1), test::randn({channels, 16, 3, 3}, 2), Tensor(), p);
    ASSERT_TRUE(x.is_blocked());
    for (bool per_channel : {false, true}) {
      QuantScheme s = QuantScheme::make(4, false, false, per_channel);
      s.axis = 1;
      auto [mn, mx] = tensor_range(s, x);
      auto [pmn, pmx] = tensor_range(s, x.plain());
      EXPECT_TRUE(test::bitwise_equal(mn, pmn) && test::bitwise_equal(mx, pmx)) << channels << " channels";
      const QParams qp = qparams_from_range(s, mn, mx);
      const Tensor y = fake_quantize_raw(x, s, qp).y;
      EXPECT_EQ(y.is_blocked(), channels == 16 && !per_channel) << channels << " channels, per channel " << per_channel;
      EXPECT_TRUE(test::bitwise_equal(y.plain(), fake_quantize_raw(x.plain(), s, qp).y)) << channels << " channels";
    }
  }
}

TEST(FakeQuant, FloatKernelEqualsTheIntegerLoopBitForBit) {
  // Without integers wanted, clamping nearest-type roundings run a float-only vectorized loop;
  // asking for the integers runs the integer loop. Both must give the same bits, including -0.0,
  // NaN, infinities, values past 2^63, ties and the clamp edges, with and without the range mask.
  std::vector<float> xs = {0.0f, -0.0f, NAN, -NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 9.3e18f, -9.3e18f,
                           3e9f, -3e9f, 1.7e7f, -0.3f, 0.3f, -0.99f, 1e-40f, -1e-40f};
  for (int k = -40; k <= 40; ++k) xs.push_back(0.185f * float(k));  // ties and edges for scale 0.37
  const Tensor rnd = Rng(5, 2).normal({4000});
  for (int64_t i = 0; i < rnd.numel(); ++i) xs.push_back(3.0f * rnd.data<float>()[i]);
  const Tensor x = vec(xs);
  int checked = 0;
  for (ScaleForm form : {ScaleForm::MulInverse, ScaleForm::Divide, ScaleForm::MulScale, ScaleForm::DivideFloatZero})
    for (Rounding rounding : {Rounding::HalfEven, Rounding::HalfUp, Rounding::Floor, Rounding::Ceil, Rounding::HalfAway})
      for (bool sym : {false, true})
        for (int32_t z : {0, 3, -5}) {
          QuantScheme s = QuantScheme::make(4, sym, sym, false);
          s.form = form;
          s.rounding = rounding;
          QParams qp = per_tensor(form == ScaleForm::MulScale ? 2.7f : 0.37f, sym ? 0 : z);
          qp.zero_float = Tensor::full({1}, 0.25f + float(z), DType::F32);
          const FakeQuantResult ints = fake_quantize_raw(x, s, qp, {}, true, true);
          for (bool mask : {false, true}) {
            const FakeQuantResult fl = fake_quantize_raw(x, s, qp, {}, false, mask);
            for (size_t i = 0; i < xs.size(); ++i) {
              uint32_t a, b;
              std::memcpy(&a, ints.y.data<float>() + i, 4);
              std::memcpy(&b, fl.y.data<float>() + i, 4);
              ASSERT_EQ(a, b) << "x = " << xs[i] << ", form " << int(form) << ", rounding " << rounding_name(rounding)
                              << ", z " << z << (sym ? ", symmetric" : "");
              if (mask) {
                ASSERT_EQ(ints.in_range.data<uint8_t>()[i], fl.in_range.data<uint8_t>()[i]) << "x = " << xs[i];
              }
            }
            ++checked;
          }
        }
  EXPECT_EQ(checked, 4 * 5 * 2 * 3 * 2);
}

TEST(FakeQuant, MultiplicativeFormIsQuAntiZations) {
  // Qu-ANTI-zation activations: S = 15 / (mx - mn + 1e-14), Z = round_even(mn * S),
  // q = clamp(floor(x*S - Z + 0.5), 0, 15), x̂ = (q + Z) / S.
  QuantScheme s = QuantScheme::make(4, false, false, false);
  s.rule = QParamRule::Multiplicative;
  s.form = ScaleForm::MulScale;
  s.rounding = Rounding::HalfUp;
  Tensor x = vec({-0.5f, 0.0f, 0.7f, 1.0f, 2.5f});
  auto [mn, mx] = tensor_range(s, x);
  QParams qp = qparams_from_range(s, mn, mx);
  const float S = 15.0f / (2.5f - -0.5f + 1e-14f);
  EXPECT_EQ(qp.scale.data<float>()[0], S);
  EXPECT_EQ(qp.zero_point.data<int32_t>()[0], int32_t(std::nearbyint(-0.5f * S)));
  const int32_t Z = qp.zero_point.data<int32_t>()[0];
  auto y = fake_quantize_raw(x, s, qp).y.to_vector();
  const float xs[] = {-0.5f, 0.0f, 0.7f, 1.0f, 2.5f};
  for (int i = 0; i < 5; ++i) {
    const float q = std::min(15.0f, std::max(0.0f, std::floor(xs[i] * S - float(Z) + 0.5f)));
    EXPECT_EQ(y[size_t(i)], double((q + float(Z)) / S)) << i;
  }
  // Weights: symmetric, S = 7 / max|w|, range [-8, 7].
  QuantScheme w = QuantScheme::make(4, true, true, false);
  w.rule = QParamRule::Multiplicative;
  w.form = ScaleForm::MulScale;
  w.rounding = Rounding::HalfUp;
  auto [a, b] = tensor_range(w, x);
  EXPECT_EQ(qparams_from_range(w, a, b).scale.data<float>()[0], 7.0f / (2.5f + 1e-14f));
}

TEST(FakeQuant, QParamRulesOnZeroAndAllNegativeChannels) {
  QuantScheme a = QuantScheme::make(4, false, false, true);  // affine [0, 15]
  Tensor mn = vec({0.f, -2.f, -3.f, 0.5f}), mx = vec({0.f, -1.f, 1.5f, 2.f});
  QParams qp = qparams_from_range(a, mn, mx);
  auto sc = qp.scale.to_vector(), zp = qp.zero_point.to_vector();
  EXPECT_EQ(sc[0], double(kTorchEps));  // zero channel: the eps floor
  EXPECT_EQ(zp[0], 0);
  EXPECT_EQ(sc[1], double(2.0f / 15.0f));  // all negative: the range is widened to include 0
  EXPECT_EQ(zp[1], 15);
  EXPECT_EQ(sc[2], double(4.5f / 15.0f));
  EXPECT_EQ(zp[2], double(0 - std::nearbyint(-3.0f / (4.5f / 15.0f))));
  EXPECT_EQ(zp[3], 0);  // all positive: min widened to 0
  QuantScheme sym = QuantScheme::make(8, true, true, true, true);  // [-127, 127]: /127
  auto ss = qparams_from_range(sym, mn, mx).scale.to_vector();
  EXPECT_EQ(ss[2], double(3.0f / 127.0f));
  QuantScheme sym5 = QuantScheme::make(8, true, true, true);  // [-128, 127]: /127.5
  EXPECT_EQ(qparams_from_range(sym5, mn, mx).scale.to_vector()[2], double(3.0f / 127.5f));
  QuantScheme tfl = QuantScheme::make(8, true, false, false);
  tfl.rule = QParamRule::TfliteAffine;
  // [-1, 2]: s = 3/255, zero point from min = -128 + 1/s = -43 exactly 85 steps up... rounds half away.
  QParams t = qparams_from_range(tfl, vec({-1.f}), vec({2.f}));
  const float st = 3.0f / 255.0f;
  EXPECT_EQ(t.scale.to_vector()[0], double(st));
  EXPECT_EQ(t.zero_point.to_vector()[0], double(std::round(-128.0f + 1.0f / st)));
  EXPECT_ERROR_CONTAINS(qparams_from_range(a, vec({1.f}), vec({0.f})), "min");
  EXPECT_ERROR_CONTAINS(QuantScheme::make(9, true, true, false), "2..8");
  EXPECT_ERROR_CONTAINS(QuantScheme::make(1, true, true, false), "2..8");
}

TEST(FakeQuant, SteGradientClippedAndPlain) {
  QuantScheme s = QuantScheme::make(4, true, true, false);
  QParams qp = per_tensor(0.5f, 0);
  Tensor x = vec({-5.0f, -4.2f, -3.9f, 0.1f, 3.6f, 3.8f, 4.0f}).set_requires_grad();
  // v = 2x: -10, -8.4, -7.8, 0.2, 7.2, 7.6, 8 -> rounded -10, -8, -8, 0, 7, 8, 8; inside [-8, 7]?
  backward(sum(fake_quantize(x, s, qp, Ste::Clipped)));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{0, 1, 1, 1, 1, 0, 0}));
  Tensor x2 = vec({-5.0f, 0.1f, 4.0f}).set_requires_grad();
  backward(sum(mul(fake_quantize(x2, s, qp, Ste::Plain), 3.0)));
  EXPECT_EQ(x2.grad().to_vector(), (std::vector<double>{3, 3, 3}));
}

TEST(FakeQuant, QuantizingTwiceIsIdempotent) {
  for (bool per_channel : {false, true})
    for (Rounding r : {Rounding::HalfEven, Rounding::HalfUp, Rounding::HalfAway, Rounding::Flipped, Rounding::Floor}) {
      QuantScheme s = QuantScheme::make(4, false, false, per_channel);
      s.rounding = r;
      Tensor x = test::randn({8, 3, 3, 3}, 11);
      auto [mn, mx] = tensor_range(s, x);
      QParams qp = qparams_from_range(s, mn, mx);
      Tensor once = fake_quantize_raw(x, s, qp).y;
      // Directed roundings (floor, flipped) are not idempotent by nature: (k*s)*(1/s) can land a
      // hair below or above k in float32 and move again. What holds for them is that their output
      // is on the grid, so nearest rounding leaves it unchanged.
      QuantScheme again = s;
      if (r == Rounding::Flipped || r == Rounding::Floor) again.rounding = Rounding::HalfEven;
      Tensor twice = fake_quantize_raw(once, again, qp).y;
      EXPECT_TRUE(test::bitwise_equal(once, twice)) << rounding_name(r) << " per_channel=" << per_channel;
    }
  QuantScheme m = QuantScheme::make(4, true, true, false);
  m.rule = QParamRule::Multiplicative;
  m.form = ScaleForm::MulScale;
  m.rounding = Rounding::HalfUp;
  Tensor x = test::randn({64}, 5);
  auto [mn, mx] = tensor_range(m, x);
  QParams qp = qparams_from_range(m, mn, mx);
  Tensor once = fake_quantize_raw(x, m, qp).y;
  // (q/S)*S may land a hair off q in float32; it must still round back to q.
  EXPECT_TRUE(test::bitwise_equal(fake_quantize_raw(once, m, qp).y, once));
}

TEST(FakeQuant, MatchesPyTorchGoldenValues) {
  const std::string path = test::shared_dir() + "/fixtures/torch/ops.expected.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "fixture not found: " << path << " (../shared is absent)";
  SafetensorsFile f = read_safetensors(path);
  Tensor w = f.get("fq4pc.w").clone();
  // 4-bit affine per output channel, [0, 15], torch's scale and zero-point formula, from min/max.
  QuantScheme a = QuantScheme::make(4, false, false, true);
  auto [mn, mx] = tensor_range(a, w);
  QParams qp = qparams_from_range(a, mn, mx);
  EXPECT_TRUE(test::bitwise_equal(qp.scale, f.get("fq4pc.scale").clone()));
  EXPECT_TRUE(test::bitwise_equal(qp.zero_point, f.get("fq4pc.zero_point").clone()));
  EXPECT_TRUE(test::bitwise_equal(fake_quantize_raw(w, a, qp).y, f.get("fq4pc.y").clone()));
  // 8-bit symmetric per tensor, [-127, 127], max|w| / 127.
  QuantScheme t = QuantScheme::make(8, true, true, false, true);
  auto [tn, tx] = tensor_range(t, w);
  QParams tq = qparams_from_range(t, tn, tx);
  EXPECT_TRUE(test::bitwise_equal(tq.scale, f.get("fq8t.scale").clone()));
  EXPECT_TRUE(test::bitwise_equal(fake_quantize_raw(w, t, tq).y, f.get("fq8t.y").clone()));
}

}  // namespace
}  // namespace dearest::quant
