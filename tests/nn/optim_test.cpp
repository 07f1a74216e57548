#include "nn/optim.h"

#include "nn/schedule.h"
#include "tests/test_util.h"

namespace dearest::nn {
namespace {

// One parameter p with loss sum(p * c): the gradient is c at every step, so every update can be
// written out by hand from torch.optim's formulas.
StateDict one_param(double v) { return {{"p", Tensor::full({1}, v, DType::F64).set_requires_grad()}}; }
void grad_of(const StateDict& ps, double c) { ps[0].second.set_grad(Tensor::full({1}, c, DType::F64)); }

TEST(Optim, SgdMomentumNesterovWeightDecayByHand) {
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  StateDict ps = one_param(1.0);
  SGD sgd(ps, o);
  double p = 1.0, buf = 0;
  for (int s = 0; s < 3; ++s) {
    grad_of(ps, 0.5);
    sgd.step();
    const double d = 0.5 + 0.01 * p;
    buf = s == 0 ? d : 0.9 * buf + d;
    p -= 0.1 * buf;
    EXPECT_NEAR(ps[0].second.item(), p, 1e-15);
  }
  o.nesterov = true;
  StateDict pn = one_param(1.0);
  SGD nes(pn, o);
  grad_of(pn, 0.5);
  nes.step();
  const double d = 0.5 + 0.01;
  EXPECT_NEAR(pn[0].second.item(), 1.0 - 0.1 * (d + 0.9 * d), 1e-15);
  o.dampening = 0.5;
  EXPECT_ERROR_CONTAINS(SGD(one_param(1), o), "nesterov");
}

TEST(Optim, AdamAndAdamWByHand) {
  for (bool decoupled : {false, true}) {
    AdamOptions o;
    o.lr = 0.01;
    o.weight_decay = 0.1;
    o.decoupled = decoupled;
    StateDict ps = one_param(2.0);
    Adam adam(ps, o);
    double p = 2.0, m = 0, v = 0;
    for (int t = 1; t <= 3; ++t) {
      grad_of(ps, 0.3);
      adam.step();
      double g = 0.3;
      if (decoupled) p *= 1 - 0.01 * 0.1;
      else g += 0.1 * p;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      const double denom = std::sqrt(v) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8;
      p -= 0.01 / (1 - std::pow(0.9, t)) * m / denom;
      EXPECT_NEAR(ps[0].second.item(), p, 1e-14) << (decoupled ? "AdamW" : "Adam") << " step " << t;
    }
  }
}

TEST(Optim, StateRoundTripContinuesExactly) {
  auto run = [](bool reload) {
    StateDict ps = {{"w", Rng(1).normal({64})}};
    ps[0].second.set_requires_grad();
    Adam a(ps, {});
    for (int s = 0; s < 5; ++s) {
      if (reload && s == 3) {
        StateDict st;
        for (auto& [n, t] : a.state()) st.emplace_back(n, t.clone());
        Adam b(ps, {});
        b.load_state(st);
        a.load_state(b.state());
      }
      ps[0].second.set_grad(Rng(2, uint64_t(s)).normal({64}));
      a.step();
    }
    return ps[0].second.clone();
  };
  EXPECT_TRUE(test::bitwise_equal(run(false), run(true)));
}

TEST(Optim, FrozenAndUnusedParametersAreSkipped) {
  StateDict ps = one_param(1.0);
  SGD sgd(ps, {});
  sgd.step();  // no gradient: nothing happens
  EXPECT_EQ(ps[0].second.item(), 1.0);
}

TEST(Schedule, ClosedForms) {
  Schedule st = Schedule::parse("step:10:0.5");
  EXPECT_DOUBLE_EQ(st.lr(1, 9, 100), 1);
  EXPECT_DOUBLE_EQ(st.lr(1, 10, 100), 0.5);
  Schedule ms = Schedule::parse("multistep:5/8:0.1");
  EXPECT_DOUBLE_EQ(ms.lr(1, 7, 10), 0.1);
  EXPECT_NEAR(ms.lr(1, 9, 10), 0.01, 1e-15);
  Schedule c = Schedule::parse("cosine");
  EXPECT_DOUBLE_EQ(c.lr(0.1, 0, 10), 0.1);
  EXPECT_NEAR(c.lr(0.1, 5, 10), 0.05, 1e-15);
  Schedule e = Schedule::parse("exp:0.9");
  EXPECT_NEAR(e.lr(1, 2, 10), 0.81, 1e-15);
  Schedule w = Schedule::parse("cosine+warmup:2:0.1");
  EXPECT_NEAR(w.lr(1, 0, 10, 0), 0.1, 1e-15);
  EXPECT_NEAR(w.lr(1, 1, 10, 0.5), (1 + std::cos(M_PI * 0.1)) / 2 * (0.1 + 0.9 * 0.75), 1e-15);
  EXPECT_EQ(Schedule::parse(w.str()).str(), w.str());
  EXPECT_ERROR_CONTAINS(Schedule::parse("linear"), "unknown kind");
  EXPECT_ERROR_CONTAINS(Schedule::parse("step:x"), "not a number");
}

}  // namespace
}  // namespace dearest::nn
