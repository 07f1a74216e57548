// EFRAP: each loss term and its gradient against the formulas of ALGORITHMS.md §1.5, weights on
// their grid never move, the units of the reference, activation-preserving rounding (lambda_F = 0)
// beating nearest rounding, the flip term alone flipping, resuming at a layer, bad input.
#include "defenses/efrap.h"

#include <cmath>
#include <memory>

#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "quant/fake_quant.h"
#include "quant/presets.h"
#include "nn/layers.h"
#include "quant/qparams.h"
#include "tensor/ops/conv.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"
#include "tests/model_test_util.h"

namespace dearest::defenses {
namespace {

nn::ModulePtr warmed(const std::string& spec_text, nn::ModelSpec& spec) {
  return test::warmed_model(spec_text, spec, 5, 200, 1.5, 0.2);
}

std::vector<Tensor> calib(int n, int64_t batch, uint64_t seed) {
  std::vector<Tensor> b;
  for (int i = 0; i < n; ++i) b.push_back(test::randn({batch, 3, 32, 32}, seed + uint64_t(i)));
  return b;
}

// A per-channel 4-bit affine problem on a small weight with hand-placed elements.
struct Small {
  quant::QuantScheme scheme = quant::QuantScheme::make(4, false, false, true);
  quant::QParams qp;
  Tensor W;
  Small() {
    W = test::randn({3, 2, 2, 2}, 11);
    float* w = W.data<float>();
    qp = quant::QParams(Tensor::from_vector<float>({0.1f, 0.25f, 0.05f}, {3}), Tensor::from_vector<int32_t>({8, 7, 3}, {3}));
    w[0] = 0.3f;    // 3.0 steps: on the grid
    w[1] = 0.25f;   // 2.5 steps: a tie
    w[2] = 0.07f;   // 0.7 steps
    w[3] = 2.0f;    // 20 steps: clamped at 15 - 8 = 7
    w[8] = -1.0f;   // -4 steps, on the grid in channel 1
    w[16] = 0.012f; // 0.24 steps
  }
};

TEST(EfrapRounding, ProblemMatchesTheFormulas) {
  Small s;
  RoundingProblem p = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::Element);
  const float *fl = p.floor_u.data<float>(), *r = p.frac.data<float>(), *t = p.target.data<float>(),
              *e = p.error.data<float>(), *w = s.W.data<float>();
  const Tensor qn = quant::fake_quantize_raw(s.W, s.scheme, s.qp).y;
  for (int64_t k = 0; k < s.W.numel(); ++k) {
    const float sc = s.qp.scale.data<float>()[k / 8];
    EXPECT_EQ(fl[k], std::floor(w[k] / sc)) << k;
    EXPECT_EQ(r[k], w[k] / sc - std::floor(w[k] / sc)) << k;
    EXPECT_EQ(t[k], 1.0f - std::nearbyint(r[k])) << k;
    EXPECT_EQ(e[k], std::fabs(w[k] - qn.data<float>()[k])) << k;
  }
  EXPECT_EQ(r[0], 0.0f);
  EXPECT_EQ(t[1], 1.0f);  // r = 0.5 exactly: round(0.5) = 0, so the target is up
  EXPECT_EQ(t[2], 0.0f);  // r = 0.7: nearest is up, the flip is down
  EXPECT_NEAR(e[3], 2.0f - 0.7f, 1e-6);  // clamped: the error is the clipping error
  // Neuron-wise weighting broadcasts the channel's L1 / L2 norm; "none" weighs every weight 1.
  RoundingProblem l1 = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::NeuronL1);
  RoundingProblem l2 = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::NeuronL2);
  RoundingProblem none = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::None);
  for (int64_t c = 0; c < 3; ++c) {
    double a = 0, q = 0;
    for (int64_t k = c * 8; k < c * 8 + 8; ++k) a += e[k], q += double(e[k]) * e[k];
    for (int64_t k = c * 8; k < c * 8 + 8; ++k) {
      EXPECT_NEAR(l1.error.data<float>()[k], a, 1e-5);
      EXPECT_NEAR(l2.error.data<float>()[k], std::sqrt(q), 1e-5);
      EXPECT_EQ(none.error.data<float>()[k], 1.0f);
    }
  }
  EXPECT_THROW(parse_error_weighting("neuron"), Error);
}

TEST(EfrapRounding, SoftWeightStartsAtTheFloatWeightAndItsGradientIsTheFormula) {
  Small s;
  RoundingProblem p = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::Element);
  Tensor V = initial_rounding_variables(p);
  EXPECT_TRUE(std::isinf(V.data<float>()[0]) && V.data<float>()[0] < 0);
  for (int64_t k = 0; k < V.numel(); ++k)
    if (p.frac.data<float>()[k] > 0) {
      EXPECT_NEAR(1 / (1 + std::exp(-V.data<float>()[k])), p.frac.data<float>()[k], 2e-6) << k;
    }
  V.set_requires_grad(true);
  Tensor wt = soft_rounded_weight(V, p);
  for (int64_t k = 0; k < V.numel(); ++k) {
    if (k == 3) continue;  // clamped
    const float x = p.floor_u.data<float>()[k] + p.frac.data<float>()[k] + p.zero.data<float>()[k / 8];
    if (x >= 0 && x <= 15) {
      EXPECT_NEAR(wt.data<float>()[k], s.W.data<float>()[k], 1e-6) << k;
    }
  }
  EXPECT_NEAR(wt.data<float>()[3], 0.7f, 1e-6);  // (15 - 8) * 0.1
  // Gradient: s_c sigmoid'(V) inside the clamp, 0 where clamped or on the grid.
  Tensor g = test::randn(V.shape(), 12);
  backward(sum(mul(wt, g)));
  int64_t clamped = 0;
  for (int64_t k = 0; k < V.numel(); ++k) {
    const float v = V.data<float>()[k], sc = s.qp.scale.data<float>()[k / 8];
    const float h = 1 / (1 + std::exp(-v));
    const float x = p.floor_u.data<float>()[k] + h + p.zero.data<float>()[k / 8];
    const bool inside = x >= 0 && x <= 15;
    clamped += !inside;
    const float want = inside ? g.data<float>()[k] * sc * h * (1 - h) : 0.0f;
    EXPECT_NEAR(V.grad().data<float>()[k], want, 1e-7) << k;
  }
  EXPECT_EQ(V.grad().data<float>()[0], 0.0f);
  EXPECT_EQ(V.grad().data<float>()[8], 0.0f);
  EXPECT_GE(clamped, 2);
}

TEST(EfrapRounding, RegularizerValueAndGradientMatchTheFormulas) {
  Small s;
  RoundingProblem p = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::Element);
  Tensor V = initial_rounding_variables(p);
  float* v = V.data<float>();
  for (int64_t k = 4; k < V.numel(); ++k) v[k] += 0.3f * float((k % 5) - 2);  // away from the start
  V.set_requires_grad(true);
  const double beta = 1.0, lambda = 0.01;
  RegularizerParts parts;
  Tensor L = rounding_regularizer(V, p, beta, lambda, &parts);
  // The formulas in double.
  double flip = 0, round = 0;
  std::vector<double> grad(size_t(V.numel()));
  for (int64_t k = 0; k < V.numel(); ++k) {
    const double h = std::isinf(v[k]) ? 0.0 : 1 / (1 + std::exp(-double(v[k])));
    const double t = p.target.data<float>()[k], e = p.error.data<float>()[k];
    flip += e * (-t * std::log(h + 1e-8) - (1 - t) * std::log(1 - h + 1e-8));
    round += 1 - (2 * h - 1) * (2 * h - 1);
    const double dh = h * (1 - h);
    grad[size_t(k)] = beta * e * (-t / (h + 1e-8) + (1 - t) / (1 - h + 1e-8)) * dh - lambda * 4 * (2 * h - 1) * dh;
  }
  EXPECT_NEAR(parts.flip, beta * flip, 1e-5 * std::fabs(flip));
  EXPECT_NEAR(parts.round, lambda * round, 1e-6);
  EXPECT_NEAR(L.item(), beta * flip + lambda * round, 1e-5 * std::fabs(flip) + 1e-6);
  backward(mul(L, 2.0));
  for (int64_t k = 0; k < V.numel(); ++k)
    EXPECT_NEAR(V.grad().data<float>()[k], 2 * grad[size_t(k)], 1e-5 * std::fabs(grad[size_t(k)]) + 1e-7) << k;
  EXPECT_EQ(V.grad().data<float>()[0], 0.0f);  // on the grid: h = 0 exactly
  // And against central differences of the op itself (in f32, so loosely), away from the grid.
  NoGradGuard ng;
  for (int64_t k : {2, 5, 16, 20}) {
    Tensor a = V.detach().clone(), b = V.detach().clone();
    a.data<float>()[k] += 1e-2f;
    b.data<float>()[k] -= 1e-2f;
    const double fd = (rounding_regularizer(a, p, beta, lambda).item() - rounding_regularizer(b, p, beta, lambda).item()) / 2e-2;
    EXPECT_NEAR(fd, grad[size_t(k)], 2e-3 * std::fabs(grad[size_t(k)]) + 2e-4) << k;
  }
}

TEST(EfrapUnits, ResNetAndVggUnitsAreTheReferenceSubgraphs) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
  auto units = layer_units(q, *m);
  ASSERT_EQ(units.size(), 21u);
  EXPECT_EQ(units[0].describe(), "conv1 -> bn1 -> relu -> quantize(layer1.0.conv1:input)");
  EXPECT_EQ(units[1].describe(), "layer1.0.conv1 -> layer1.0.bn1 -> relu -> quantize(layer1.0.conv2:input)");
  EXPECT_EQ(units[2].describe(), "layer1.0.conv2 -> layer1.0.bn2");
  bool shortcut = false;
  for (auto& u : units)
    if (u.layer->name == "layer2.0.downsample.0") {
      EXPECT_EQ(u.describe(), "layer2.0.downsample.0 -> layer2.0.downsample.1");
      shortcut = true;
    }
  EXPECT_TRUE(shortcut);
  EXPECT_EQ(units.back().describe(), "fc");
  nn::ModelSpec vs;
  auto v = warmed("vgg16-bn:width=4", vs);
  quant::QuantizedModel qv(vs, *v, quant::preset("mqbench", 4));
  auto vu = layer_units(qv, *v);
  ASSERT_EQ(vu.size(), 14u);
  EXPECT_EQ(vu[0].describe(), "features.0 -> features.1 -> features.2 -> quantize(features.3:input)");
  EXPECT_EQ(vu[12].describe(),
            "features.40 -> features.41 -> features.42 -> features.43 -> flatten -> quantize(classifier:input)");
  // The unit run on the quantized model's inputs with its nearest weights is what the model computes.
  std::vector<Tensor> x = calib(1, 4, 50);
  q.calibrate(calib(2, 8, 60));
  auto in = layer_inputs(q.model(), *units[1].layer->module, x);
  auto next = layer_inputs(q.model(), *units[2].layer->module, x);  // conv2's input: conv1's unit output
  NoGradGuard ng;
  Tensor y = units[1].forward(in[0], q.quantized_weight(*units[1].layer), true);
  EXPECT_TRUE(test::bitwise_equal(y.contiguous(), next[0]));
}

// The hot loop's buffers: soft_rounded_weight_into gives soft_rounded_weight_raw's bits, and the
// Adam step fed its sigmoid(V) steps exactly as the one that computes sigmoid(V) itself, with the
// same L_F and L_P; per-tensor (one channel, parallel over elements) and per-channel alike.
TEST(EfrapRounding, TheBufferedStepGivesTheSameBits) {
  Small s;
  for (const bool per_tensor : {false, true}) {
    quant::QuantScheme scheme = s.scheme;
    quant::QParams qp = s.qp;
    if (per_tensor) {
      scheme.per_channel = false;
      qp.scale = Tensor::full({1}, 0.05f);
      qp.zero_point = Tensor::zeros({1}, qp.zero_point.dtype());
    }
    RoundingProblem p = rounding_problem(s.W, scheme, qp, ErrorWeighting::Element);
    Tensor V1 = initial_rounding_variables(p), V2 = V1.clone();
    RoundingAdam a1, a2;
    Tensor wt, h;
    const Tensor target = test::randn(s.W.shape(), 13);
    for (int step = 0; step < 4; ++step) {
      const Tensor w1 = soft_rounded_weight_raw(V1, p);
      soft_rounded_weight_into(V2, p, wt, h);
      ASSERT_TRUE(test::bitwise_equal(w1.contiguous(), wt)) << "step " << step << (per_tensor ? " per-tensor" : "");
      const RegularizerParts r1 = rounding_adam_step(V1, mul(sub(w1, target), 2.0), p, 0.7, 1.0, 0.01, a1);
      const RegularizerParts r2 = rounding_adam_step(V2, mul(sub(wt, target), 2.0), p, 0.7, 1.0, 0.01, a2, &h);
      EXPECT_TRUE(test::bitwise_equal(V1, V2)) << "step " << step;
      EXPECT_EQ(r1.flip, r2.flip);
      EXPECT_EQ(r1.round, r2.round);
    }
  }
}

// The vectorized Adam loop gives each weight the bits of the plain scalar formula (the loop as it
// was before it was vectorized), on a weight large enough to run in blocks on every thread,
// per channel and per tensor, with L_F and L_P asked for and not.
TEST(EfrapRounding, TheVectorizedStepHasTheScalarBits) {
  Tensor W = test::randn({64, 32, 3, 3}, 21);  // 18,432 weights
  W = mul(W, 0.1);
  for (const bool per_tensor : {false, true}) {
    quant::QuantScheme scheme = quant::QuantScheme::make(4, false, false, !per_tensor);  // unsigned [0, 15]
    quant::QParams qp(per_tensor ? Tensor::full({1}, 0.02f) : mul(Tensor::ones({64}), 0.02),
                      Tensor::full({per_tensor ? 1 : 64}, 7, DType::I32));
    RoundingProblem p = rounding_problem(W, scheme, qp, ErrorWeighting::Element);
    Tensor V = initial_rounding_variables(p);
    Tensor h, wt;
    soft_rounded_weight_into(V, p, wt, h);
    const Tensor gw = test::randn(W.shape(), 22);
    RoundingAdam adam;
    adam.lr = 0.01;
    Tensor V_scalar = V.clone();
    const RegularizerParts parts = rounding_adam_step(V, gw, p, 0.7, 1.0, 0.01, adam, &h, !per_tensor);
    // The scalar formula, step 1: m = (1 - b1) g, v = (1 - b2) g^2.
    const float ss = float(0.01 / (1 - 0.9)), bc2s = float(std::sqrt(1 - 0.999)), eps = 1e-8f;
    const float* hd = h.data<float>();
    float* vs = V_scalar.data<float>();
    const int64_t per = W.numel() / p.channels();
    for (int64_t k = 0; k < W.numel(); ++k) {
      const int64_t c = p.channels() == 1 ? 0 : k / per;
      const float hk = hd[k], sc = p.scale.data<float>()[c], zc = p.zero.data<float>()[c];
      const float dh = hk * (1.0f - hk);
      const float x = p.floor_u.data<float>()[k] + hk + zc;
      const float slope = (x >= 0.0f && x <= 15.0f) ? sc * dh : 0.0f;
      const float t = p.target.data<float>()[k], e = p.error.data<float>()[k];
      const float dbce = -t / (hk + 1e-8f) + (1.0f - t) / (1.0f - hk + 1e-8f);
      const float gi = 0.7f * gw.data<float>()[k] * slope + (1.0f * e * dbce - 0.01f * 4.0f * (2.0f * hk - 1.0f)) * dh;
      const float m = 0.0f * 0.9f + float(1 - 0.9) * gi;
      const float v2 = 0.0f * 0.999f + float(1 - 0.999) * (gi * gi);
      vs[k] = vs[k] - ss * (m / (std::sqrt(v2) / bc2s + eps));
    }
    EXPECT_TRUE(test::bitwise_equal(V, V_scalar)) << (per_tensor ? "per-tensor" : "per-channel");
    if (per_tensor) {
      EXPECT_EQ(parts.flip, 0.0);  // not asked for
    } else {
      EXPECT_GT(parts.flip, 0.0);
    }
  }
}

TEST(EfrapRounding, TheFusedStepIsTheGraphGradientThenAdam) {
  Small s;
  RoundingProblem p = rounding_problem(s.W, s.scheme, s.qp, ErrorWeighting::Element);
  Tensor V = initial_rounding_variables(p);
  Tensor Vg = V.clone();
  Vg.set_requires_grad(true);
  nn::AdamOptions ao;
  ao.lr = 0.05;
  nn::Adam adam({{"alpha", Vg}}, ao);
  RoundingAdam fused;
  fused.lr = 0.05;
  const Tensor target = test::randn(s.W.shape(), 13);
  for (int step = 0; step < 5; ++step) {
    // The graph: L = 0.7 * sum((W̃ - target)^2) + L_F + L_P.
    Tensor wt = soft_rounded_weight(Vg, p);
    Tensor la = sum(square(sub(wt, target)));
    backward(add(mul(la, 0.7), rounding_regularizer(Vg, p, 1.0, 0.01)));
    adam.step();
    adam.zero_grad();
    // Fused: dL_A/dW̃ = 2 (W̃ - target).
    Tensor w2 = soft_rounded_weight_raw(V, p);
    Tensor gw = mul(sub(w2, target), 2.0);
    rounding_adam_step(V, gw, p, 0.7, 1.0, 0.01, fused);
    EXPECT_LT(test::max_abs_diff(V, Vg.detach()), 1e-5) << "step " << step;
  }
}

// A calibrated MQBench W4A4 ResNet18 and, per unit, what EFRAP hands its objective: the inputs
// through the quantized model, the float model's targets, the float weight, and a weight away from
// the float one, as during the optimization.
struct UnitCase {
  nn::ModelSpec spec;
  nn::ModulePtr m;
  std::unique_ptr<quant::QuantizedModel> q;
  std::vector<Tensor> data;
  std::vector<LayerUnit> units;
  UnitCase(const std::string& model, int batches, int64_t batch, uint64_t seed) {
    m = warmed(model, spec);
    q = std::make_unique<quant::QuantizedModel>(spec, *m, quant::preset("mqbench", 4));
    data = calib(batches, batch, seed);
    q->calibrate(data);
    units = layer_units(*q, *m);
  }
  struct Inputs {
    std::vector<Tensor> xq, tg;
    Tensor w, wt;
  };
  Inputs inputs(const LayerUnit& u) const {
    Inputs in;
    in.xq = layer_inputs(q->model(), *u.layer->module, data);
    in.w = u.layer->float_weight().detach().contiguous();
    NoGradGuard ng;
    for (auto& x : layer_inputs(*m, *u.float_layer, data)) in.tg.push_back(u.forward(x, in.w, false).contiguous());
    in.wt = q->quantized_weight(*u.layer).contiguous();
    return in;
  }
};

// The three forms of L_A agree on every unit they apply to.
TEST(EfrapObjective, GramFusedAndGraphAgree) {
  UnitCase c("resnet18:width=4", 2, 4, 110);
  int gram = 0, fused = 0;
  for (auto& u : c.units) {
    const auto [xq, tg, w, wt] = c.inputs(u);
    Tensor g_ref, g;
    auto graph = make_unit_objective(u, xq, tg, w, ObjectiveKind::Graph);
    const double ref = graph->value_and_grad(wt, 1, g_ref);
    for (ObjectiveKind k : {ObjectiveKind::Gram, ObjectiveKind::Fused}) {
      std::unique_ptr<UnitObjective> o;
      try {
        o = make_unit_objective(u, xq, tg, w, k);
      } catch (const Error&) {
        continue;  // this form does not apply to this unit
      }
      (k == ObjectiveKind::Gram ? gram : fused) += 1;
      const double v = o->value_and_grad(wt, 1, g);
      EXPECT_NEAR(v, ref, 2e-4 * std::fabs(ref) + 1e-7) << u.describe() << " " << o->kind();
      EXPECT_LT(test::rel_err(g, g_ref), 2e-4) << u.describe() << " " << o->kind();
    }
  }
  EXPECT_EQ(gram, 12);   // 8 conv2, 3 shortcuts, fc
  EXPECT_EQ(fused, 21);  // every unit
}

// The fused form runs its pass over the convolution output in oneDNN's blocked bytes; under the
// plain layout policy the same output comes reordered to NCHW. Loss and gradient are bit for bit
// the same (the width gives layer 1 16 channels, one nChw16c block, and later layers several).
TEST(EfrapObjective, TheFusedPassGivesTheSameBitsInEveryLayout) {
  UnitCase c("resnet18:width=16", 2, 4, 120);
  int checked = 0;
  for (auto& u : c.units) {
    if (!u.layer->is_conv) continue;
    const auto [xq, tg, w, wt] = c.inputs(u);
    Tensor g_blocked, g_plain;
    auto blocked = make_unit_objective(u, xq, tg, w, ObjectiveKind::Fused);
    const double v_blocked = blocked->value_and_grad(wt, 1, g_blocked);
    double v_plain;
    {
      LayoutPolicyScope lp(LayoutPolicy::Plain);
      auto plain = make_unit_objective(u, xq, tg, w, ObjectiveKind::Fused);
      v_plain = plain->value_and_grad(wt, 1, g_plain);
    }
    EXPECT_EQ(v_blocked, v_plain) << u.describe();
    EXPECT_TRUE(test::bitwise_equal(g_blocked, g_plain)) << u.describe();
    // A second call on the same batch reuses the inputs and targets laid out the first time.
    Tensor g_again;
    EXPECT_EQ(blocked->value_and_grad(wt, 1, g_again), v_blocked) << u.describe();
    EXPECT_TRUE(test::bitwise_equal(g_again, g_blocked)) << u.describe();
    ++checked;
  }
  EXPECT_EQ(checked, 20);
}

// Auto picks gram while its product costs less than the two convolutions: under Winograd, which
// halves a 3x3 stride-1 convolution, it takes the fused form from K >= M on, not K >= 2M.
TEST(EfrapObjective, AutoWeighsTheGramProductAgainstTheConvolutionAlgorithm) {
  UnitCase c("resnet18:width=16", 1, 8, 130);
  for (auto& u : c.units) {
    if (u.layer->name != "layer3.1.conv2") continue;
    // K = 64 * 9 = 576 weights per channel, M = 8 images * 8 * 8 = 512 rows: M <= K < 2M.
    const auto [xq, tg, w, wt] = c.inputs(u);
    ASSERT_EQ(tg[0].numel() / tg[0].size(1), 512);
    {
      ConvAlgorithmScope cs(ConvAlgorithm::Direct);
      EXPECT_STREQ(make_unit_objective(u, xq, tg, w)->kind(), "gram");
    }
    {
      ConvAlgorithmScope cs(ConvAlgorithm::Winograd);
      const auto& p = static_cast<nn::Conv2d*>(u.layer->module)->params;
      if (!raw::conv2d_runs_winograd(xq[0].shape(), w.shape(), false, p))
        GTEST_SKIP() << "oneDNN has no Winograd kernel on this host (AVX-512 only)";
      EXPECT_STREQ(make_unit_objective(u, xq, tg, w)->kind(), "fused");
    }
    return;
  }
  FAIL() << "no layer3.1.conv2 unit";
}

EfrapOptions quick(int64_t iterations) {
  EfrapOptions o;
  o.iterations = iterations;
  o.curve_every = 10;
  return o;
}

// Without the flip term (activation-preserving rounding), at a rate a few dozen iterations can use.
EfrapOptions preserving(int64_t iterations) {
  EfrapOptions o = quick(iterations);
  o.lambda_f = 0;
  o.lr = 1e-2;
  return o;
}

TEST(Efrap, WithoutTheFlipTermItPreservesActivationsBetterThanNearest) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
  auto data = calib(4, 8, 70);
  q.calibrate(data);
  auto reps = efrap(q, *m, data, preserving(150));
  ASSERT_EQ(reps.size(), 21u);
  int better = 0;
  for (auto& r : reps) {
    EXPECT_EQ(r.iterations, 150);
    EXPECT_EQ(r.curve.size(), 15u);
    // Never worse, and better wherever a rounding changed.
    EXPECT_LE(r.act_error_learned, r.act_error_nearest * (1 + 1e-6)) << r.name;
    better += r.act_error_learned < r.act_error_nearest;
    EXPECT_LT(r.flip_rate, 0.5) << r.name;
  }
  EXPECT_GE(better, 12) << "learned rounding beat nearest on " << better << " of 21 layers";
}

TEST(Efrap, TheFlipTermAloneFlipsEveryMovableWeightAndGridWeightsNeverMove) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  // Put some weights of the stem exactly on their grid after calibration.
  quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
  auto data = calib(2, 8, 80);
  q.calibrate(data);
  quant::QuantLayer& l = q.layers()[1];
  {
    NoGradGuard ng;
    Tensor w = l.float_weight().detach().contiguous().clone();
    const float s0 = l.weight->qparams().scale.data<float>()[0];
    w.data<float>()[0] = 2 * s0;
    w.data<float>()[1] = -1 * s0;
    l.float_weight().copy_(w);
    m->find(l.name)->named_parameters()[0].second.copy_(w);
  }
  EfrapOptions o = quick(100);
  o.lambda_a = 0;
  o.lambda_p = 0;
  o.lr = 0.1;
  o.weighting = ErrorWeighting::None;
  auto reps = efrap(q, *m, data, o, {}, 0);
  RoundingProblem p = rounding_problem(l.float_weight().detach(), l.weight->scheme(), l.weight->qparams(), ErrorWeighting::None);
  const Tensor& up = l.weight->up_mask;
  int64_t movable = 0, flipped = 0;
  for (int64_t k = 0; k < up.numel(); ++k) {
    const float r = p.frac.data<float>()[k];
    if (r == 0) {
      EXPECT_EQ(up.data<uint8_t>()[k], 0) << k;
      continue;
    }
    ++movable;
    flipped += up.data<uint8_t>()[k] == uint8_t(p.target.data<float>()[k]);
  }
  EXPECT_EQ(p.frac.data<float>()[0], 0.0f);
  EXPECT_EQ(p.frac.data<float>()[1], 0.0f);
  EXPECT_EQ(flipped, movable);
  EXPECT_GT(reps[1].flip_rate, 0.9);
  // The flips as a mask (what the adaptive attack trains against): the report's rate, grid weights
  // never among them.
  const Tensor f = flips_against(l, quant::preset("mqbench", 4).conv_weight.with_bits(l.weight_bits));
  int64_t n = 0;
  for (int64_t k = 0; k < f.numel(); ++k) n += f.data<uint8_t>()[k];
  EXPECT_DOUBLE_EQ(double(n) / double(f.numel()), reps[1].flip_rate);
  EXPECT_EQ(f.data<uint8_t>()[0], 0);
  EXPECT_EQ(f.data<uint8_t>()[1], 0);
}

TEST(Efrap, BlockWisePreservationLearnsEachResidualBlockTogether) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
  auto data = calib(3, 8, 120);
  q.calibrate(data);
  EfrapOptions o = preserving(60);
  o.block_wise = true;
  auto reps = efrap(q, *m, data, o);
  ASSERT_EQ(reps.size(), 21u);
  EXPECT_EQ(reps[0].unit, "conv1 -> bn1 -> relu -> quantize(layer1.0.conv1:input)");
  EXPECT_EQ(reps[1].unit, "block layer1.0 -> quantize(next block input)");
  EXPECT_EQ(reps[2].unit, reps[1].unit);
  EXPECT_EQ(reps[19].unit, "block layer4.1 -> output");
  EXPECT_EQ(reps[20].unit, "fc");
  int better = 0;
  for (size_t i = 1; i < 20; ++i) {
    EXPECT_EQ(reps[i].objective, "graph");
    EXPECT_LE(reps[i].act_error_learned, reps[i].act_error_nearest * (1 + 1e-6)) << reps[i].name;
    better += reps[i].act_error_learned < reps[i].act_error_nearest;
  }
  EXPECT_GE(better, 10);
  for (auto& l : q.layers()) EXPECT_EQ(l.weight->scheme().rounding, quant::Rounding::Mask) << l.name;
}

// PyTorch's eager int8 (BN folded, the residual add's inputs requantized, biases on the
// accumulator grid): conv2 and shortcut units end in the add-input quantizer, and a unit run on
// the quantized model's own input with its nearest weights is what the model computes there.
TEST(Efrap, LearnsOnPyTorchsFoldedGridWithAddInputQuantizers) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("pytorch-fbgemm", 8));
  auto data = calib(2, 8, 140);
  q.calibrate(data);
  auto units = layer_units(q, *m);
  ASSERT_EQ(units.size(), 21u);
  EXPECT_EQ(units[2].describe(), "layer1.0.conv2 -> layer1.0.bn2 -> quantize(layer1.0.bn2:output)");
  for (auto& u : units)
    if (u.layer->name == "layer2.0.downsample.0") {
      EXPECT_EQ(u.describe(), "layer2.0.downsample.0 -> layer2.0.downsample.1 -> quantize(layer2.0.downsample:output)");
    }
  {
    // The add's first input, as the model computes it: a hook sees the BN's output after its
    // output transform (the quantizer).
    std::vector<Tensor> x = calib(1, 4, 150);
    auto in = layer_inputs(q.model(), *units[2].layer->module, x);
    nn::Module* bn2 = q.model().find("layer1.0.bn2");
    ASSERT_FALSE(bn2->has_forward_hooks());
    Tensor seen;
    bn2->add_forward_hook([&](nn::Module&, const Tensor& y) { seen = y.detach().clone(); });
    {
      NoGradGuard ng;
      q(x[0]);
    }
    bn2->clear_forward_hooks();
    NoGradGuard ng;
    Tensor y = units[2].forward(in[0], q.quantized_weight(*units[2].layer), true);
    EXPECT_TRUE(test::bitwise_equal(y.contiguous(), seen.contiguous()));
  }
  auto reps = efrap(q, *m, data, preserving(40));
  ASSERT_EQ(reps.size(), 21u);
  int better = 0;
  for (auto& r : reps) better += r.act_error_learned <= r.act_error_nearest;
  EXPECT_GE(better, 15);
}

// Qu-ANTI-zation's quantizer: multiplicative per-tensor scales from the weight at every forward,
// per-batch activation ranges. EFRAP learns on that grid too.
TEST(Efrap, LearnsOnAMultiplicativeDynamicGrid) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("qu-anti-zation", 4));
  auto data = calib(2, 8, 130);
  q.calibrate(data);
  {
    // At the start the soft weight is the float weight wherever the clamp is inactive.
    quant::QuantLayer& l = q.layers()[2];
    auto [mn, mx] = quant::tensor_range(l.weight->scheme(), l.float_weight().detach());
    RoundingProblem p = rounding_problem(l.float_weight().detach(), l.weight->scheme(),
                                         quant::qparams_from_range(l.weight->scheme(), mn, mx), ErrorWeighting::Element);
    EXPECT_TRUE(p.multiplicative);
    Tensor w = soft_rounded_weight_raw(initial_rounding_variables(p), p);
    EXPECT_LT(test::rel_err(w, l.float_weight().detach()), 1e-5);
  }
  auto reps = efrap(q, *m, data, preserving(40));
  ASSERT_EQ(reps.size(), 21u);
  int better = 0;
  for (auto& r : reps) {
    // Per-batch activation ranges: a unit that ends in the quantizer runs its graph; the affine
    // units do not see it.
    EXPECT_EQ(r.objective == "graph", r.unit.find("quantize(") != std::string::npos) << r.name << " " << r.objective;
    better += r.act_error_learned < r.act_error_nearest;
  }
  EXPECT_GE(better, 10);
  for (auto& l : q.layers()) {
    EXPECT_EQ(l.weight->scheme().form, quant::ScaleForm::MulScale);
    EXPECT_EQ(l.weight->scheme().rounding, quant::Rounding::Mask);
  }
}

// The EFRAP reference's evaluation quantizer never clamps: at 4 bits the largest weight sits at 7.5
// steps and its two neighbours are 7 and 8. Learned rounding keeps that grid: no bound stops a
// weight's soft rounding. With float activations (the README's EFRAP rows) no unit ends in a quantizer.
TEST(Efrap, LearnsOnTheUnclampedGridOfTheReferencesEvaluationHelper) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("efrap-standard", 4, 0));
  auto data = calib(2, 8, 140);
  q.calibrate(data);
  {
    quant::QuantLayer& l = q.layers()[2];
    const Tensor W = l.float_weight().detach().plain().contiguous();
    auto [mn, mx] = quant::tensor_range(l.weight->scheme(), W);
    RoundingProblem p = rounding_problem(W, l.weight->scheme(), quant::qparams_from_range(l.weight->scheme(), mn, mx),
                                         ErrorWeighting::Element);
    int64_t top = 0;
    for (int64_t k = 1; k < W.numel(); ++k)
      if (std::fabs(W.data<float>()[k]) > std::fabs(W.data<float>()[top])) top = k;
    const float u = p.floor_u.data<float>()[top] + p.frac.data<float>()[top];
    EXPECT_NEAR(std::fabs(u), 7.5f, 1e-5);
    // Rounded up (V large), the largest weight lands on 8 or -7 steps, with a live gradient.
    Tensor V = initial_rounding_variables(p);
    V.data<float>()[top] = 30.0f;
    V.set_requires_grad(true);
    Tensor wt = soft_rounded_weight(V, p);
    const float sc = p.scale.data<float>()[0];
    EXPECT_FLOAT_EQ(wt.data<float>()[top], (p.floor_u.data<float>()[top] + 1.0f) * sc);
    Tensor g = Tensor::ones(V.shape());
    backward(sum(mul(wt, g)));
    V.data<float>()[top] = 0.0f;  // sigmoid'(0) = 1/4: the slope where the clamp would have cut it
    Tensor V2 = V.detach().clone();
    V2.set_requires_grad(true);
    backward(sum(mul(soft_rounded_weight(V2, p), g)));
    EXPECT_NEAR(V2.grad().data<float>()[top], 0.25f * sc, 1e-7f);
  }
  auto reps = efrap(q, *m, data, preserving(40));
  ASSERT_EQ(reps.size(), 21u);
  int better = 0;
  for (auto& r : reps) {
    // No quantizer in any unit: each is gram or fused, none needs its graph.
    EXPECT_NE(r.objective, "graph") << r.name << " " << r.unit;
    EXPECT_EQ(r.unit.find("quantize("), std::string::npos) << r.unit;
    better += r.act_error_learned < r.act_error_nearest;
  }
  EXPECT_GE(better, 10);
  for (auto& l : q.layers()) {
    EXPECT_FALSE(l.weight->scheme().clamp);
    EXPECT_EQ(l.weight->scheme().rounding, quant::Rounding::Mask);
  }
}

// Cut after unit `cut` reports, then resume a fresh model at the next unit with the finished
// roundings restored: every rounding must equal an uninterrupted run's.
void expect_resumed_equals_whole(const EfrapOptions& o, size_t cut) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  auto data = calib(3, 8, 90);
  quant::QuantizedModel whole(spec, *m, quant::preset("mqbench", 4));
  whole.calibrate(data);
  efrap(whole, *m, data, o);
  quant::QuantizedModel part(spec, *m, quant::preset("mqbench", 4));
  part.calibrate(data);
  size_t done = 0;
  EfrapProgress stop;
  struct Cut {};
  stop.on_layer = [&](size_t li, const EfrapLayerReport&, bool) {
    done = li + 1;
    if (li == cut) throw Cut{};
  };
  EXPECT_THROW(efrap(part, *m, data, o, stop), Cut);
  ASSERT_EQ(done, cut + 1);
  quant::QuantizedModel resumed(spec, *m, quant::preset("mqbench", 4));
  resumed.calibrate(data);
  for (size_t i = 0; i < done; ++i) set_learned_rounding(resumed.layers()[i], part.layers()[i].weight->up_mask);
  auto reps = efrap(resumed, *m, data, o, {}, done);
  EXPECT_EQ(reps.size(), 21u - done);
  for (size_t i = 0; i < 21; ++i)
    EXPECT_TRUE(test::bitwise_equal(resumed.layers()[i].weight->up_mask, whole.layers()[i].weight->up_mask)) << i;
}

TEST(Efrap, AResumedRunEqualsAWholeRun) { expect_resumed_equals_whole(quick(30), 6); }

// Block-wise, a run cut between blocks (after layer1.1, units 3 and 4) resumes at the next block.
TEST(Efrap, AResumedBlockWiseRunEqualsAWholeRun) {
  EfrapOptions o = quick(30);
  o.block_wise = true;
  expect_resumed_equals_whole(o, 4);
}

// A checkpoint is offered only where a run can resume: after every layer layer-wise, after a
// block's last layer block-wise (the stem, each residual block with its shortcut, the head).
TEST(Efrap, ResumablePointsAreBlockEndsBlockWise) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  auto data = calib(2, 8, 91);
  for (bool block_wise : {false, true}) {
    EfrapOptions o = quick(2);
    o.block_wise = block_wise;
    quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
    q.calibrate(data);
    std::vector<std::string> resumable_after;
    size_t calls = 0;
    EfrapProgress pr;
    pr.on_layer = [&](size_t li, const EfrapLayerReport&, bool resumable) {
      ++calls;
      if (resumable) resumable_after.push_back(q.layers()[li].name);
    };
    efrap(q, *m, data, o, pr);
    EXPECT_EQ(calls, 21u);
    if (!block_wise) {
      EXPECT_EQ(resumable_after.size(), 21u);
      continue;
    }
    std::vector<std::string> block_ends;
    for (size_t i = 0; i < 21; ++i) {
      const std::string& n = q.layers()[i].name;
      const std::string next = i + 1 < 21 ? q.layers()[i + 1].name : "";
      const std::string b = n.size() > 8 && n.rfind("layer", 0) == 0 ? n.substr(0, 8) : n;  // "layer2.0"
      if (next.rfind(b + ".", 0) != 0) block_ends.push_back(n);
    }
    EXPECT_EQ(block_ends.size(), 10u);  // conv1, eight blocks, fc
    EXPECT_EQ(resumable_after, block_ends);
  }
}

TEST(Efrap, BadInputIsAClearError) {
  nn::ModelSpec spec;
  auto m = warmed("resnet18:width=4", spec);
  quant::QuantizedModel q(spec, *m, quant::preset("mqbench", 4));
  EXPECT_THROW(efrap(q, *m, calib(1, 4, 1), quick(1)), Error);  // not calibrated
  q.calibrate(calib(1, 4, 1));
  EXPECT_THROW(efrap(q, *m, {}, quick(1)), Error);
  EXPECT_THROW(efrap(q, *m, {test::randn({4, 3, 16, 16}, 2)}, quick(1)), Error);
  EfrapOptions bad = quick(0);
  EXPECT_THROW(efrap(q, *m, calib(1, 4, 1), bad), Error);
  // No layer left to quantize.
  quant::QuantConfig none = quant::preset("mqbench", 4);
  none.skip = {"conv1", "layer", "fc"};
  EXPECT_ERROR_CONTAINS(quant::QuantizedModel(spec, *m, none), "no layer matches");
  // Bits outside 2..8.
  EXPECT_ERROR_CONTAINS(quant::preset("mqbench", 9), "9");
  EXPECT_ERROR_CONTAINS(quant::preset("mqbench", 1), "1");
}

}  // namespace
}  // namespace dearest::defenses
