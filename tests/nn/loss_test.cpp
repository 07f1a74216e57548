#include "nn/loss.h"

#include "autograd/gradcheck.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::nn {
namespace {

Tensor leaf(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  return Rng(seed, 5).uniform(s, lo, hi, DType::F64).set_requires_grad();
}

void check_grad(const char* what, const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> in) {
  BackendScope b(Backend::Reference);
  GradcheckResult r = gradcheck(f, in);
  EXPECT_TRUE(r.ok) << what << "\n" << r.report;
}

TEST(Loss, CrossEntropyWeightsAndLabelSmoothingMatchPyTorch) {
  // PyTorch's definition, written out in double below.
  Tensor logits = Tensor::from_vector<double>({1, 2, 0.5, -1, 0, 3}, {2, 3});
  Tensor t = Tensor::from_vector<int32_t>({1, 2}, {2});
  Tensor w = Tensor::from_vector<double>({1, 2, 0.5}, {3});
  // Reference by the definition, in double.
  auto logp = [&](int i, int c) {
    double m = -1e300, s = 0;
    for (int k = 0; k < 3; ++k) m = std::max(m, logits.at({i, k}));
    for (int k = 0; k < 3; ++k) s += std::exp(logits.at({i, k}) - m);
    return logits.at({i, c}) - m - std::log(s);
  };
  const double e = 0.1;
  double num = 0, den = 0;
  for (int i = 0; i < 2; ++i) {
    const int y = int(t.at({i}));
    double smooth = 0;
    for (int c = 0; c < 3; ++c) smooth -= w.at({c}) * logp(i, c);
    num += (1 - e) * w.at({y}) * -logp(i, y) + e / 3 * smooth;
    den += w.at({y});
  }
  CrossEntropyOptions o;
  o.weight = w;
  o.label_smoothing = e;
  EXPECT_NEAR(cross_entropy(logits, t, o).item(), num / den, 1e-12);
  o.label_smoothing = 0;
  double plain = 0;
  for (int i = 0; i < 2; ++i) plain += -w.at({int64_t(t.at({i}))}) * logp(i, int(t.at({i})));
  EXPECT_NEAR(cross_entropy(logits, t, o).item(), plain / (2 + 0.5), 1e-12);
  EXPECT_NEAR(cross_entropy(logits, t).item(), -(logp(0, 1) + logp(1, 2)) / 2, 1e-12);
  o.reduction = Reduction::None;
  EXPECT_EQ(cross_entropy(logits, t, o).shape(), Shape({2}));
}

TEST(Loss, GradientsOfEveryLoss) {
  Tensor t = Tensor::from_vector<int32_t>({0, 2, 1}, {3});
  Tensor w = Tensor::from_vector<double>({0.5, 2, 1}, {3});
  check_grad("ce smoothing weights", [&](auto& v) {
    CrossEntropyOptions o;
    o.weight = w;
    o.label_smoothing = 0.2;
    return cross_entropy(v[0], t, o);
  }, {leaf({3, 3}, 1)});
  check_grad("nll weights", [&](auto& v) { return nll_loss(log_softmax(v[0], 1), t, Reduction::Mean, w); }, {leaf({3, 3}, 2)});
  check_grad("mse", [](auto& v) { return mse_loss(v[0], v[1]); }, {leaf({4, 2}, 3), leaf({4, 2}, 4)});
  check_grad("l1", [](auto& v) { return l1_loss(v[0], v[1], Reduction::Sum); }, {leaf({4, 2}, 5), leaf({4, 2}, 6)});
  check_grad("bce", [](auto& v) { return binary_cross_entropy(v[0], v[1]); }, {leaf({5}, 7, 0.1, 0.9), leaf({5}, 8, 0, 1)});
  check_grad("bce logits", [](auto& v) { return binary_cross_entropy_with_logits(v[0], v[1]); },
             {leaf({5}, 9, -4, 4), leaf({5}, 10, 0, 1)});
  check_grad("kl", [](auto& v) { return kl_div(log_softmax(v[0], 1), softmax(v[1], 1)); }, {leaf({2, 4}, 11), leaf({2, 4}, 12)});
}

TEST(Loss, ValuesAndErrors) {
  Tensor a = Tensor::from_vector<double>({1, 2, 3}, {3}), b = Tensor::from_vector<double>({1, 0, 5}, {3});
  EXPECT_DOUBLE_EQ(mse_loss(a, b).item(), 8.0 / 3);
  EXPECT_DOUBLE_EQ(l1_loss(a, b, Reduction::Sum).item(), 4);
  Tensor p = Tensor::from_vector<double>({0.25, 0.75}, {1, 2});
  EXPECT_NEAR(kl_div(log(p), p).item(), 0, 1e-15);
  EXPECT_NEAR(binary_cross_entropy(Tensor::from_vector<double>({0.0}, {1}), Tensor::from_vector<double>({1.0}, {1})).item(),
              100, 1e-12);  // log clamped at -100 as PyTorch
  EXPECT_ERROR_CONTAINS(mse_loss(a, Tensor::zeros({2}, DType::F64)), "mse_loss", "[3]", "[2]");
  CrossEntropyOptions o;
  o.label_smoothing = 2;
  EXPECT_ERROR_CONTAINS(cross_entropy(Tensor::zeros({1, 2}), Tensor::zeros({1}, DType::I32), o), "label_smoothing");
}

}  // namespace
}  // namespace dearest::nn
