#include "nn/optim.h"

#include <cmath>

namespace dearest::nn {

namespace {

void check_param(const std::string& name, const Tensor& p, const Tensor& g) {
  DEAREST_CHECK(p.is_contiguous() && !p.is_blocked(), "optimizer: parameter ", name, " is not contiguous");
  DEAREST_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype(), "optimizer: gradient of ", name, " is ",
                g.describe(), ", parameter is ", p.describe());
}

template <typename F> void for_float(DType t, F&& f) {
  if (t == DType::F32) f(float{});
  else if (t == DType::F64) f(double{});
  else fail("optimizer: parameters must be floating, got ", dtype_name(t));
}

}  // namespace

void Optimizer::each_with_grad(const std::function<void(size_t, Tensor&, const Tensor&)>& f) {
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor& p = params_[k].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    g = g.contiguous();
    check_param(params_[k].first, p, g);
    f(k, p, g);
    p.bump_version();
  }
}

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.set_grad(Tensor());
}

SGD::SGD(StateDict params, SgdOptions o) : Optimizer(std::move(params)), opt(o) {
  lr = opt.lr;
  DEAREST_CHECK(opt.lr >= 0 && opt.momentum >= 0 && opt.weight_decay >= 0, "SGD: negative lr, momentum or weight decay");
  DEAREST_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0), "SGD: nesterov needs momentum > 0 and dampening 0");
  buf_.resize(params_.size());
}

void SGD::step() {
  each_with_grad([&](size_t k, Tensor& p, const Tensor& g) {
    const bool first = !buf_[k].defined();
    if (opt.momentum != 0 && first) buf_[k] = Tensor::empty(p.shape(), p.dtype());
    for_float(p.dtype(), [&](auto z) {
      using T = decltype(z);
      T* pp = p.data<T>();
      const T* gp = g.data<T>();
      T* bp = opt.momentum != 0 ? buf_[k].data<T>() : nullptr;
      const T wd = T(opt.weight_decay), mom = T(opt.momentum), damp = T(1 - opt.dampening), lr_ = T(lr);
      const int64_t n = p.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) {
        T d = gp[i];
        if (wd != T(0)) d = d + wd * pp[i];
        if (bp) {
          bp[i] = first ? d : mom * bp[i] + damp * d;
          d = opt.nesterov ? d + mom * bp[i] : bp[i];
        }
        pp[i] = pp[i] - lr_ * d;
      }
    });
  });
}

StateDict SGD::state() const {
  StateDict s;
  for (size_t k = 0; k < params_.size(); ++k)
    if (buf_[k].defined()) s.emplace_back(params_[k].first + ".momentum_buffer", buf_[k]);
  return s;
}

void SGD::load_state(const StateDict& s) {
  for (size_t k = 0; k < params_.size(); ++k) {
    buf_[k] = Tensor();
    for (const auto& [n, t] : s)
      if (n == params_[k].first + ".momentum_buffer") buf_[k] = t.clone();
  }
}

Adam::Adam(StateDict params, AdamOptions o) : Optimizer(std::move(params)), opt(o) {
  lr = opt.lr;
  DEAREST_CHECK(opt.lr >= 0 && opt.eps >= 0 && opt.weight_decay >= 0, "Adam: negative lr, eps or weight decay");
  DEAREST_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1, "Adam: betas must be in [0, 1)");
  m_.resize(params_.size());
  v_.resize(params_.size());
  t_.assign(params_.size(), 0);
}

void Adam::step() {
  each_with_grad([&](size_t k, Tensor& p, const Tensor& g) {
    if (!m_[k].defined()) {
      m_[k] = Tensor::zeros(p.shape(), p.dtype());
      v_[k] = Tensor::zeros(p.shape(), p.dtype());
    }
    const int64_t t = ++t_[k];
    const double bc1 = 1 - std::pow(opt.beta1, double(t)), bc2_sqrt = std::sqrt(1 - std::pow(opt.beta2, double(t)));
    const double step_size = lr / bc1;
    for_float(p.dtype(), [&](auto z) {
      using T = decltype(z);
      T* pp = p.data<T>();
      const T* gp = g.data<T>();
      T* mp = m_[k].data<T>();
      T* vp = v_[k].data<T>();
      const T b1 = T(opt.beta1), b2 = T(opt.beta2), a1 = T(1 - opt.beta1), a2 = T(1 - opt.beta2);
      const T wd = T(opt.weight_decay), eps = T(opt.eps), ss = T(step_size), bc2s = T(bc2_sqrt);
      const T decay = T(1 - lr * opt.weight_decay);
      const bool decoupled = opt.decoupled;
      const int64_t n = p.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) {
        T gi = gp[i];
        if (decoupled) pp[i] = pp[i] * decay;
        else if (wd != T(0)) gi = gi + wd * pp[i];
        mp[i] = mp[i] * b1 + a1 * gi;
        vp[i] = vp[i] * b2 + a2 * (gi * gi);
        const T denom = std::sqrt(vp[i]) / bc2s + eps;
        pp[i] = pp[i] - ss * (mp[i] / denom);
      }
    });
  });
}

StateDict Adam::state() const {
  StateDict s;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!m_[k].defined()) continue;
    s.emplace_back(params_[k].first + ".exp_avg", m_[k]);
    s.emplace_back(params_[k].first + ".exp_avg_sq", v_[k]);
    s.emplace_back(params_[k].first + ".step", Tensor::scalar(double(t_[k]), DType::F64));
  }
  return s;
}

void Adam::load_state(const StateDict& s) {
  for (size_t k = 0; k < params_.size(); ++k) {
    m_[k] = v_[k] = Tensor();
    t_[k] = 0;
    for (const auto& [n, t] : s) {
      if (n == params_[k].first + ".exp_avg") m_[k] = t.clone();
      if (n == params_[k].first + ".exp_avg_sq") v_[k] = t.clone();
      if (n == params_[k].first + ".step") t_[k] = int64_t(t.item());
    }
  }
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, Module& model, double lr, double momentum, double wd,
                                          bool nesterov, const std::string& what) {
  DEAREST_CHECK(lr > 0, what, ": the learning rate must be positive, got ", lr);
  DEAREST_CHECK(wd >= 0, what, ": weight decay must be non-negative, got ", wd);
  if (name == "sgd") {
    SgdOptions o;
    o.lr = lr;
    o.momentum = momentum;
    o.weight_decay = wd;
    o.nesterov = nesterov;
    return std::make_unique<SGD>(model.named_parameters(true), o);
  }
  DEAREST_CHECK(name == "adam" || name == "adamw", what, ": expected sgd, adam or adamw, got \"", name, "\"");
  AdamOptions o;
  o.lr = lr;
  o.weight_decay = wd;
  o.decoupled = name == "adamw";
  return std::make_unique<Adam>(model.named_parameters(true), o);
}

}  // namespace dearest::nn
