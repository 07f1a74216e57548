// I-BAU's hypergradient on a linear softmax model, where every second derivative is known in
// closed form: the Hessian-vector products by central differences against the exact ones (their
// error is measured and bounded here, in f64 and f32), the fixed-point hypergradient against the
// same iteration done with the exact products, and a short unlearning run.
#include "defenses/ibau.h"

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "nn/layers.h"
#include "tensor/rng.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::defenses {
namespace {

constexpr int64_t N = 5, C = 3, H = 2, W = 2, D = C * H * W, K = 4;

struct Linear {
  nn::ModulePtr model;
  std::vector<double> w, b;  // [K, D], [K]
};

Linear linear_model(DType dt) {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Flatten>());
  seq->push_back(std::make_shared<nn::Linear>(D, K, true));
  Linear l;
  l.model = seq;
  for (auto& [n, p] : seq->named_parameters()) p.copy_(Rng(7, n.size()).normal(p.shape(), 0, 0.7));
  seq->to(dt);
  seq->eval();
  for (auto& [n, p] : seq->named_parameters()) (n == "1.weight" ? l.w : l.b) = p.to(DType::F64).to_vector();
  return l;
}

// Softmax probabilities of W z + b.
std::vector<double> probs(const Linear& l, const std::vector<double>& z) {
  std::vector<double> s(K);
  double mx = -1e300;
  for (int64_t k = 0; k < K; ++k) {
    s[k] = l.b[k];
    for (int64_t d = 0; d < D; ++d) s[k] += l.w[k * D + d] * z[d];
    mx = std::max(mx, s[k]);
  }
  double t = 0;
  for (auto& v : s) t += (v = std::exp(v - mx));
  for (auto& v : s) v /= t;
  return s;
}

struct Exact {
  std::vector<double> hv, mw, mb;  // H v; M v split into the weight and bias parts
};

// H v = -(1/N) sum W^T S_i W v + 2 reg v;  M_W v = -(1/N) sum [(p_i - e_i) v^T + S_i W v z_i^T];
// M_b v = -(1/N) sum S_i W v, with S_i = diag(p_i) - p_i p_i^T and z_i = x_i + delta.
Exact exact_products(const Linear& l, const std::vector<double>& x, const std::vector<int32_t>& y,
                     const std::vector<double>& delta, const std::vector<double>& v, double reg) {
  Exact e;
  e.hv.assign(D, 0);
  e.mw.assign(K * D, 0);
  e.mb.assign(K, 0);
  std::vector<double> wv(K, 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t d = 0; d < D; ++d) wv[k] += l.w[k * D + d] * v[d];
  for (int64_t i = 0; i < N; ++i) {
    std::vector<double> z(D);
    for (int64_t d = 0; d < D; ++d) z[d] = x[i * D + d] + delta[d];
    const std::vector<double> p = probs(l, z);
    std::vector<double> swv(K);
    double pwv = 0;
    for (int64_t k = 0; k < K; ++k) pwv += p[k] * wv[k];
    for (int64_t k = 0; k < K; ++k) swv[k] = p[k] * wv[k] - p[k] * pwv;
    for (int64_t k = 0; k < K; ++k) {
      const double pe = p[k] - (k == y[i] ? 1.0 : 0.0);
      for (int64_t d = 0; d < D; ++d) {
        e.hv[d] -= l.w[k * D + d] * swv[k] / N;
        e.mw[k * D + d] -= (pe * v[d] + swv[k] * z[d]) / N;
      }
      e.mb[k] -= swv[k] / N;
    }
  }
  for (int64_t d = 0; d < D; ++d) e.hv[d] += 2 * reg * v[d];
  return e;
}

double rel_err(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

struct Problem {
  Tensor x, y, delta, v;
  std::vector<double> xs, ds, vs;
  std::vector<int32_t> ys;
};

Problem problem(DType dt) {
  Problem p;
  p.x = Rng(1, 1).normal({N, C, H, W}, 0, 1, DType::F64);
  p.delta = Rng(1, 2).normal({1, C, H, W}, 0, 0.5, DType::F64);
  p.v = Rng(1, 3).normal({1, C, H, W}, 0, 1, DType::F64);
  p.y = Tensor::from_vector<int32_t>({0, 3, 1, 2, 3}, {N});
  p.xs = p.x.to_vector();
  p.ds = p.delta.to_vector();
  p.vs = p.v.to_vector();
  p.ys = {0, 3, 1, 2, 3};
  p.x = p.x.to(dt);
  p.delta = p.delta.to(dt);
  p.v = p.v.to(dt);
  return p;
}

TEST(Ibau, HessianVectorProductsByDifferencesMatchTheExactOnes) {
  BackendScope ref(Backend::Reference);
  const double reg = 0.001;
  for (DType dt : {DType::F64, DType::F32}) {
    Linear l = linear_model(dt);
    Problem p = problem(dt);
    Tensor hv;
    std::vector<Tensor> mv;
    inner_hessian_products(*l.model, p.x, p.y, p.delta, reg, p.v, dt == DType::F64 ? 1e-4 : 1e-2, hv, mv);
    const Exact e = exact_products(l, p.xs, p.ys, p.ds, p.vs, reg);
    const double eh = rel_err(hv.to(DType::F64).to_vector(), e.hv), ew = rel_err(mv[0].to(DType::F64).to_vector(), e.mw),
                 eb = rel_err(mv[1].to(DType::F64).to_vector(), e.mb);
    std::printf("  %s: relative error of H v %.2e, of M v %.2e (weight) %.2e (bias)\n", dt == DType::F64 ? "f64" : "f32", eh, ew, eb);
    const double bound = dt == DType::F64 ? 1e-6 : 1e-3;
    EXPECT_LT(eh, bound);
    EXPECT_LT(ew, bound);
    EXPECT_LT(eb, bound);
  }
}

TEST(Ibau, HypergradientIsTheFixedPointIterationWithTheseProducts) {
  BackendScope ref(Backend::Reference);
  Linear l = linear_model(DType::F64);
  Problem p = problem(DType::F64);
  IbauOptions o;
  o.fd_eps = 1e-4;
  const Tensor x_out = Rng(2, 1).normal({N, C, H, W}, 0, 1, DType::F64);
  const Tensor y_out = Tensor::from_vector<int32_t>({1, 1, 0, 2, 3}, {N});
  Tensor mask = Tensor::zeros({N, 1, 1, 1}, DType::F64);
  mask.data<double>()[2] = 1;
  Hypergradient h = hypergradient(*l.model, p.x, p.y, x_out, y_out, mask, p.delta, o);
  EXPECT_EQ(h.iterations, o.K);
  // The same by hand: gradients of L_out, then v_{k+1} = v_k - fp_lr H v_k + g, g_theta = g_W - fp_lr M v.
  const auto xo = x_out.to_vector();
  std::vector<double> g_delta(D, 0), g_w(K * D, 0), g_b(K, 0);
  for (int64_t i = 0; i < N; ++i) {
    std::vector<double> z(D);
    for (int64_t d = 0; d < D; ++d) z[d] = xo[i * D + d] + (i == 2 ? p.ds[d] : 0.0);
    const std::vector<double> pr = probs(l, z);
    for (int64_t k = 0; k < K; ++k) {
      const double pe = (pr[k] - (k == y_out.data<int32_t>()[i] ? 1.0 : 0.0)) / N;
      for (int64_t d = 0; d < D; ++d) {
        g_w[k * D + d] += pe * z[d];
        if (i == 2) g_delta[d] += pe * l.w[k * D + d];
      }
      g_b[k] += pe;
    }
  }
  std::vector<double> v(D, 0);
  for (int64_t k = 0; k < o.K; ++k) {
    const Exact e = exact_products(l, p.xs, p.ys, p.ds, v, o.reg);
    for (int64_t d = 0; d < D; ++d) v[d] = v[d] - o.fp_lr * e.hv[d] + g_delta[d];
  }
  const Exact e = exact_products(l, p.xs, p.ys, p.ds, v, o.reg);
  for (int64_t i = 0; i < K * D; ++i) g_w[i] -= o.fp_lr * e.mw[i];
  for (int64_t k = 0; k < K; ++k) g_b[k] -= o.fp_lr * e.mb[k];
  EXPECT_LT(rel_err(h.g_theta[0].to_vector(), g_w), 1e-6);
  EXPECT_LT(rel_err(h.g_theta[1].to_vector(), g_b), 1e-6);
}

TEST(Ibau, UnlearningRunsItsRounds) {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(std::make_shared<nn::Flatten>());
  seq->push_back(std::make_shared<nn::Linear>(3 * 32 * 32, 10, true));
  auto clean = data::open_dataset(data::parse_data_spec("synthetic:512:1"), "train");
  IbauOptions o;
  o.rounds = 2;
  o.batch = 50;
  o.max_batches = 3;
  o.progress = false;
  const Tensor before = seq->named_parameters()[0].second.clone();
  const auto log = ibau(*seq, clean, "synthetic", o);
  ASSERT_EQ(log.size(), 2u);
  for (const auto& r : log) {
    EXPECT_GT(r.delta_norm, 0.0);
    EXPECT_EQ(r.fp_iterations, double(o.K));
  }
  EXPECT_GT(test::max_abs_diff(seq->named_parameters()[0].second, before), 0.0);
  o.portion = 0;
  EXPECT_ERROR_CONTAINS(ibau(*seq, clean, "synthetic", o), "portion must be in (0, 1]");
}

TEST(Ibau, ResumedAfterARoundEqualsAWholeRun) {
  // Three rounds at once, and one round then (a fresh process: the starting model again) the
  // rest from the checkpoint: the same weights to the bit and the same log.
  auto build = [](const nn::StateDict* from) {
    auto seq = std::make_shared<nn::Sequential>();
    seq->push_back(std::make_shared<nn::Flatten>());
    seq->push_back(std::make_shared<nn::Linear>(3 * 32 * 32, 10, true));
    if (from) seq->load_state_dict(*from, true);
    return seq;
  };
  auto clean = data::open_dataset(data::parse_data_spec("synthetic:512:1"), "train");
  const auto whole = build(nullptr);
  nn::StateDict start;  // copies: a state dict shares the parameters' storage
  for (const auto& [n, t] : whole->state_dict()) start.emplace_back(n, t.clone());
  IbauOptions o;
  o.rounds = 3;
  o.batch = 50;
  o.max_batches = 3;
  o.progress = false;
  const auto whole_log = ibau(*whole, clean, "synthetic", o);
  const std::string ck = (std::filesystem::temp_directory_path() / ("dearest-ibau-" + std::to_string(::getpid()) + ".safetensors")).string();
  std::filesystem::remove(ck);
  o.checkpoint = ck;
  o.stop_after = 1;
  ASSERT_EQ(ibau(*build(&start), clean, "synthetic", o).size(), 1u);
  ASSERT_TRUE(std::filesystem::exists(ck));
  o.stop_after = 0;
  const auto resumed = build(&start);
  const auto resumed_log = ibau(*resumed, clean, "synthetic", o);
  ASSERT_EQ(resumed_log.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(resumed_log[i].outer_loss, whole_log[i].outer_loss) << "round " << i;
  const auto a = whole->named_parameters(), b = resumed->named_parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(test::bitwise_equal(a[i].second, b[i].second)) << a[i].first;
  // Another option set (or starting model) does not take the file.
  o.lr = 2e-4;
  EXPECT_ERROR_CONTAINS(ibau(*build(&start), clean, "synthetic", o), "another starting model or option set");
  std::filesystem::remove(ck);
}

}  // namespace
}  // namespace dearest::defenses
