#include "defenses/ibau.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "tensor/json.h"
#include "tensor/rng.h"

namespace dearest::defenses {

namespace {

// What a checkpoint must have been made with to be resumed: the starting weights, the data's size
// and every option that changes the rounds.
std::string ibau_key(const IbauOptions& o, int64_t images, const std::string& start_fingerprint) {
  std::ostringstream k;
  k.precision(17);
  k << start_fingerprint << " images=" << images << " rounds=" << o.rounds << " batch=" << o.batch << " inner_lr=" << o.inner_lr
    << " reg=" << o.reg << " fp_lr=" << o.fp_lr << " K=" << o.K << " tol=" << o.tol << " optimizer=" << o.optimizer
    << " lr=" << o.lr << " portion=" << o.portion << " fd_eps=" << o.fd_eps << " max_batches=" << o.max_batches
    << " seed=" << o.seed;
  return k.str();
}

IbauRound round_from_json(const Json& j) {
  IbauRound r;
  r.inner_loss = j["inner_loss"].as_number();
  r.delta_norm = j["delta_norm"].as_number();
  r.outer_loss = j["outer_loss"].as_number();
  r.fp_iterations = j["fixed_point_iterations"].as_number();
  r.seconds = j["seconds"].as_number();
  return r;
}

double norm_of(const Tensor& t) {
  NoGradGuard ng;
  return std::sqrt(sum(square(t.detach())).item());
}

void clear_grads(nn::Module& model) {
  for (auto& [n, p] : model.named_parameters()) p.set_grad(Tensor());
}

std::vector<Tensor> param_grads(nn::Module& model) {
  std::vector<Tensor> g;
  for (auto& [n, p] : model.named_parameters())
    g.push_back(p.grad().defined() ? p.grad().contiguous().clone() : Tensor::zeros(p.shape(), p.dtype()));
  return g;
}

}  // namespace

double inner_gradients(nn::Module& model, const Tensor& x, const Tensor& y, const Tensor& delta, double reg,
                       Tensor* g_delta, std::vector<Tensor>* g_theta) {
  Tensor d = delta.detach().contiguous().clone();
  d.set_requires_grad(true);
  clear_grads(model);
  const Tensor l = add(neg(cross_entropy(model(add(x, d)), y)), mul(sum(square(d)), reg));
  backward(l);
  if (g_delta) *g_delta = d.grad().contiguous().clone();
  if (g_theta) *g_theta = param_grads(model);
  clear_grads(model);
  return l.item();
}

void inner_hessian_products(nn::Module& model, const Tensor& x, const Tensor& y, const Tensor& delta, double reg,
                            const Tensor& v, double fd_eps, Tensor& hv, std::vector<Tensor>& mv) {
  const double vn = norm_of(v);
  mv.clear();
  if (vn == 0) {
    hv = Tensor::zeros(delta.shape(), delta.dtype());
    for (auto& [n, p] : model.named_parameters()) mv.push_back(Tensor::zeros(p.shape(), p.dtype()));
    return;
  }
  const double eps = fd_eps * std::max(1.0, norm_of(delta)) / vn;
  Tensor gdp, gdm;
  std::vector<Tensor> gtp, gtm;
  Tensor dp, dm;
  {
    NoGradGuard ng;
    dp = add(delta.detach(), mul(v.detach(), eps));
    dm = sub(delta.detach(), mul(v.detach(), eps));
  }
  inner_gradients(model, x, y, dp, reg, &gdp, &gtp);
  inner_gradients(model, x, y, dm, reg, &gdm, &gtm);
  NoGradGuard ng;
  hv = mul(sub(gdp, gdm), 1.0 / (2 * eps));
  for (size_t i = 0; i < gtp.size(); ++i) mv.push_back(mul(sub(gtp[i], gtm[i]), 1.0 / (2 * eps)));
}

Hypergradient hypergradient(nn::Module& model, const Tensor& x_in, const Tensor& y_in, const Tensor& x_out,
                            const Tensor& y_out, const Tensor& mask, const Tensor& delta, const IbauOptions& o) {
  Hypergradient h;
  Tensor g_out_delta;
  std::vector<Tensor> g_out_theta;
  {
    Tensor d = delta.detach().contiguous().clone();
    d.set_requires_grad(true);
    clear_grads(model);
    const Tensor l = cross_entropy(model(add(x_out, mul(mask, d))), y_out);
    backward(l);
    h.outer_loss = l.item();
    g_out_delta = d.grad().contiguous().clone();
    g_out_theta = param_grads(model);
    clear_grads(model);
  }
  // v_{k+1} = (dPhi/ddelta)^T v_k + grad_delta L_out, with dPhi/ddelta = I - fp_lr H (H symmetric).
  Tensor v = Tensor::zeros(delta.shape(), delta.dtype()), hv;
  std::vector<Tensor> mv;
  for (int64_t k = 0; k < o.K; ++k) {
    inner_hessian_products(model, x_in, y_in, delta, o.reg, v, o.fd_eps, hv, mv);
    Tensor next;
    {
      NoGradGuard ng;
      next = add(sub(v, mul(hv, o.fp_lr)), g_out_delta);
    }
    const double moved = norm_of(sub(next, v));
    v = next;
    ++h.iterations;
    if (moved < o.tol) break;
  }
  // g_theta = grad_theta L_out + (dPhi/dtheta)^T v = grad_theta L_out - fp_lr M v.
  inner_hessian_products(model, x_in, y_in, delta, o.reg, v, o.fd_eps, hv, mv);
  NoGradGuard ng;
  for (size_t i = 0; i < g_out_theta.size(); ++i) h.g_theta.push_back(sub(g_out_theta[i], mul(mv[i], o.fp_lr)));
  return h;
}

Json ibau_round_json(const IbauRound& r) {
  Json j = Json::object();
  j.set("inner_loss", r.inner_loss);
  j.set("delta_norm", r.delta_norm);
  j.set("outer_loss", r.outer_loss);
  j.set("fixed_point_iterations", r.fp_iterations);
  j.set("seconds", r.seconds);
  return j;
}

std::vector<IbauRound> ibau(nn::Module& model, const data::DatasetPtr& clean, const std::string& kind, const IbauOptions& o) {
  DEAREST_CHECK(clean && clean->size() > 0, "i-bau: no clean data");
  DEAREST_CHECK(o.rounds >= 0 && o.batch >= 1 && o.K >= 1, "i-bau: rounds >= 0, batch >= 1 and K >= 1 expected");
  DEAREST_CHECK(o.inner_lr > 0 && o.fp_lr > 0 && o.lr > 0 && o.fd_eps > 0, "i-bau: step sizes must be positive");
  DEAREST_CHECK(o.portion > 0 && o.portion <= 1, "i-bau: the portion must be in (0, 1], got ", o.portion);
  model.eval();
  for (auto& [n, p] : model.named_parameters()) p.set_requires_grad(true);
  auto opt = nn::make_optimizer(o.optimizer, model, o.lr, 0.9, 0, false, "i-bau optimizer");
  const std::string key = ibau_key(o, clean->size(), nn::fingerprint(model));
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.shuffle = true;
  lo.seed = o.seed;
  data::DataLoader loader(clean, data::test_transform(kind), lo);
  const int64_t batches = o.max_batches > 0 ? std::min(o.max_batches, loader.num_batches()) : loader.num_batches();
  // Phi's batch: the first unlearning batch, with its true labels (the official code's images_list[0]).
  const data::Batch first = loader.batch(0, 0, loader.order(0));
  Shape dshape = first.images.shape();
  dshape[0] = 1;
  std::vector<IbauRound> log;
  Rng rng(o.seed, 4242);
  int64_t start = 0;
  if (!o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    nn::Metadata m = nn::load_checkpoint(o.checkpoint, model, *opt);
    DEAREST_CHECK(m["ibau_key"] == key, o.checkpoint,
                  ": an I-BAU checkpoint of another starting model or option set; remove it to start over");
    start = std::stoll(m.at("ibau_rounds_done"));
    rng.set_counter(std::stoull(m.at("ibau_rng_counter")));
    const Json done = Json::parse(m.at("ibau_log"), o.checkpoint);  // kept: items() refers into it
    for (const Json& j : done.items()) log.push_back(round_from_json(j));
    if (o.progress)
      std::fprintf(stderr, "i-bau: resuming after round %ld of %ld (%s)\n", long(start), long(o.rounds), o.checkpoint.c_str());
  }
  const int64_t end = o.stop_after > 0 ? std::min(o.rounds, o.stop_after) : o.rounds;
  for (int64_t r = start; r < end; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    IbauRound rl;
    // (a) the universal perturbation, by SGD from 0.
    Tensor delta = Tensor::zeros(dshape);
    auto order = loader.order(r);
    for (int64_t b = 0; b < batches; ++b) {
      const data::Batch batch = loader.batch(r, b, order);
      Tensor predicted;
      {
        NoGradGuard ng;
        predicted = argmax(model(batch.images), 1);
      }
      Tensor g;
      rl.inner_loss += inner_gradients(model, batch.images, predicted, delta, o.reg, &g, nullptr) / double(batches);
      NoGradGuard ng;
      delta = sub(delta, mul(g, o.inner_lr));
    }
    rl.delta_norm = norm_of(delta);
    // (b) one hypergradient step per batch.
    order = loader.order(r + o.rounds);
    for (int64_t b = 0; b < batches; ++b) {
      const data::Batch batch = loader.batch(r + o.rounds, b, order);
      const int64_t n = batch.images.size(0);
      const int64_t carry = std::max<int64_t>(1, int64_t(std::floor(double(n) * o.portion)));
      Tensor mask = Tensor::zeros({n, 1, 1, 1});
      const std::vector<int64_t> pick = rng.permutation(n);
      for (int64_t i = 0; i < carry; ++i) mask.data<float>()[pick[size_t(i)]] = 1;
      Hypergradient h = hypergradient(model, first.images, first.labels, batch.images, batch.labels, mask, delta, o);
      rl.outer_loss += h.outer_loss / double(batches);
      rl.fp_iterations += double(h.iterations) / double(batches);
      auto params = model.named_parameters();
      for (size_t i = 0; i < params.size(); ++i) params[i].second.set_grad(h.g_theta[i]);
      opt->step();
      clear_grads(model);
      if (o.progress)
        std::fprintf(stderr, "\ri-bau round %ld/%ld, batch %ld/%ld, L_out %.4f", long(r + 1), long(o.rounds), long(b + 1),
                     long(batches), h.outer_loss);
    }
    rl.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (o.progress)
      std::fprintf(stderr, "\ri-bau round %ld/%ld: inner %.4f, |delta| %.3f, outer %.4f, %.0f s\n", long(r + 1), long(o.rounds),
                   rl.inner_loss, rl.delta_norm, rl.outer_loss, rl.seconds);
    log.push_back(rl);
    if (!o.checkpoint.empty()) {
      Json lj = Json::array();
      for (const auto& l : log) lj.push(ibau_round_json(l));
      nn::save_checkpoint(o.checkpoint, model, o.spec, *opt,
                          {{"ibau_key", key}, {"ibau_rounds_done", std::to_string(r + 1)},
                           {"ibau_rng_counter", std::to_string(rng.counter())}, {"ibau_log", lj.dump()}});
    }
  }
  model.eval();
  return log;
}

}  // namespace dearest::defenses
