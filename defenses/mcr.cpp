#include "defenses/mcr.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "data/loader.h"
#include "data/loader_source.h"
#include "data/transforms.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "quant/quantized_model.h"
#include "tensor/rng.h"

namespace dearest::defenses {

namespace {

// Bernstein weights of the quadratic Bezier curve at t.
struct Weights {
  double a, b, c;
};
Weights bezier(double t) { return {(1 - t) * (1 - t), 2 * t * (1 - t), t * t}; }

// dst = a x + b y + c z, parameter by parameter (the three models share one architecture).
void interpolate(nn::Module& dst, nn::Module& x, nn::Module& y, nn::Module& z, const Weights& w) {
  NoGradGuard ng;
  auto d = dst.named_parameters(), px = x.named_parameters(), py = y.named_parameters(), pz = z.named_parameters();
  DEAREST_CHECK(d.size() == px.size() && d.size() == py.size() && d.size() == pz.size(), "mcr: the curve's models differ");
  for (size_t i = 0; i < d.size(); ++i) {
    Tensor v = add(add(mul(px[i].second, w.a), mul(py[i].second, w.b)), mul(pz[i].second, w.c));
    d[i].second.copy_(v);
  }
}

}  // namespace

McrCurve mcr(nn::Module& model, const nn::ModelSpec& spec, const data::DatasetPtr& clean, const std::string& kind,
             const McrOptions& o, nn::Module* through) {
  DEAREST_CHECK(o.l2 >= 0, "mcr: the l2 weight must be non-negative, got ", o.l2);
  McrCurve c;
  c.start = quant::clone_model(spec, model);
  c.start->eval();
  c.end = quant::clone_model(spec, model);
  if (through) {
    through->load_state_dict(c.start->state_dict());
    c.endpoint_history = fine_tune(*through, spec, clean, kind, o.endpoint);
    c.end->load_state_dict(through->state_dict());
  } else {
    c.endpoint_history = fine_tune(*c.end, spec, clean, kind, o.endpoint);
  }
  c.bend = quant::clone_model(spec, model);
  interpolate(*c.bend, *c.start, *c.bend, *c.end, {0.5, 0.0, 0.5});  // init_linear: the midpoint
  // The model the batches run through: theta(t), rebuilt at every step.
  nn::ModulePtr own = through ? nullptr : quant::clone_model(spec, model);
  nn::Module* work = through ? through : own.get();

  const FineTuneOptions& s = o.curve;
  auto opt = nn::make_optimizer(s.optimizer, *c.bend, s.lr, s.momentum, s.wd, false, "mcr optimizer");
  data::LoaderSource src = clean_batches(clean, kind, s);
  nn::Trainer trainer(*c.bend, spec, *opt, nn::Schedule::parse(s.schedule), trainer_options(s));
  int64_t step = 0;
  const double l2 = o.l2;
  // d/dtheta1 of the loss at theta(t) is 2t(1-t) times its gradient there. The returned value is
  // the loss; its gradient, through a surrogate linear in theta1, is exactly that.
  trainer.loss = [&, l2](nn::Module& bend, const Tensor& x, const Tensor& y, Tensor& logits) {
    Rng rng(s.seed, 1000003 + uint64_t(step++));
    const double t = rng.next_double();
    const Weights w = bezier(t);
    interpolate(*work, *c.start, bend, *c.end, w);
    work->train();
    for (auto& [n, p] : work->named_parameters()) {
      p.set_requires_grad(true);
      p.set_grad(Tensor());  // a quantized twin comes with the end point's last gradients
    }
    Tensor out = (*work)(x);
    Tensor ce = cross_entropy(out, y);
    backward(ce);
    logits = out.detach();
    double reg = 0;
    std::vector<Tensor> grads;
    {
      NoGradGuard ng;
      for (auto& [n, p] : work->named_parameters()) {
        Tensor g = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape());
        if (l2 > 0) {
          g = add(g, mul(p.detach(), l2));
          reg += 0.5 * l2 * sum(square(p.detach())).item();
        }
        grads.push_back(mul(g, w.b));
        p.set_grad(Tensor());
      }
    }
    const double value = ce.item() + reg;
    Tensor surrogate;
    auto bp = bend.named_parameters();
    for (size_t i = 0; i < bp.size(); ++i) {
      Tensor term = sum(mul(bp[i].second, grads[i]));
      surrogate = surrogate.defined() ? add(surrogate, term) : term;
    }
    return add(sub(surrogate, surrogate.detach()), value);
  };
  c.curve_history = trainer.fit(src);
  c.bend->eval();
  c.end->eval();
  return c;
}

void set_curve_point(nn::Module& dst, const McrCurve& c, double t) {
  DEAREST_CHECK(t >= 0 && t <= 1, "mcr: t must be in [0, 1], got ", t);
  interpolate(dst, *c.start, *c.bend, *c.end, bezier(t));
}

nn::ModulePtr curve_point(const nn::ModelSpec& spec, const McrCurve& c, double t) {
  nn::ModulePtr m = quant::clone_model(spec, *c.start);
  set_curve_point(*m, c, t);
  m->eval();
  return m;
}

void update_batchnorm(nn::Module& model, const data::DatasetPtr& data, const std::string& kind, int64_t batch,
                      uint64_t seed) {
  std::vector<nn::BatchNorm2d*> bns;
  for (auto& [n, m] : model.named_modules())
    if (m->type() == "BatchNorm2d") bns.push_back(static_cast<nn::BatchNorm2d*>(m));
  if (bns.empty()) return;
  std::vector<double> momentum;
  for (auto* bn : bns) {
    momentum.push_back(bn->momentum);
    for (auto& [k, t] : bn->named_buffers()) {
      Tensor b = t;
      if (k == "running_mean") b.zero_();
      if (k == "running_var") b.fill_(1.0);
    }
  }
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = true;
  lo.seed = seed;
  data::DataLoader loader(data, data::train_transform(kind), lo);
  model.train();
  {
    NoGradGuard ng;
    const auto order = loader.order(0);
    for (int64_t b = 0; b < loader.num_batches(); ++b) {
      for (auto* bn : bns) bn->momentum = 1.0 / double(b + 1);  // the cumulative average
      model(loader.batch(0, b, order).images);
    }
  }
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->momentum = momentum[i];
  model.eval();
}

}  // namespace dearest::defenses
