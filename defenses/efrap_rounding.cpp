#include "defenses/efrap_rounding.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "quant/fake_quant.h"

namespace dearest::defenses {

namespace {

constexpr float kBceEps = 1e-8f;  // the reference's BCE guard

float sigmoidf(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// The hot loops run block by block: a block is one output channel's weights, or for a
// per-tensor scheme (one channel) a run of kBlock weights, so that those also spread over the
// threads. Block b covers weights [begin(b), end(b)), all of channel channel(b).
struct WeightBlocks {
  static constexpr int64_t kBlock = 16384;
  int64_t n, C, per, count;
  WeightBlocks(int64_t n_, int64_t C_, int64_t per_)
      : n(n_), C(C_), per(per_), count(C_ == 1 ? (n_ + kBlock - 1) / kBlock : C_) {}
  int64_t begin(int64_t b) const { return std::min(n, b * (C == 1 ? kBlock : per)); }
  int64_t end(int64_t b) const { return begin(b + 1); }
  int64_t channel(int64_t b) const { return C == 1 ? 0 : b; }
};

// One weight's soft rounding from h = sigmoid(V): W̃ = s (clamp(floor_u + h + z) - z), or for a
// multiplicative scheme (clamp(floor_u + h) + Z) / S; `inside`: the clamp let it through (bounds
// included), where dW̃/dV is not zero.
struct SoftRound {
  float w;
  bool inside;
};
SoftRound soft_round(float h, float floor_u, float s, float z, float lo, float hi, bool mul) {
  const float x = floor_u + h + (mul ? 0.0f : z);
  const bool inside = x >= lo && x <= hi;
  const float q = inside ? x : (x < lo ? lo : hi);
  return {mul ? (q + z) / s : (q - z) * s, inside};
}

// BCE(h, t) and dBCE/dh for a flip target t of 0 or 1 (rounding_problem makes no other): one log
// and one division where the general formula has two of each. For t in {0, 1} the term the
// general formula multiplies by zero adds an exact zero, so these are its bits.
float bce_of(float h, float t) {
  if (t == 1.0f) return -std::log(h + kBceEps);
  if (t == 0.0f) return -std::log(1.0f - h + kBceEps);
  return -t * std::log(h + kBceEps) - (1.0f - t) * std::log(1.0f - h + kBceEps);
}
float dbce_of(float h, float t) {
  if (t == 1.0f) return -1.0f / (h + kBceEps);
  if (t == 0.0f) return 1.0f / (1.0f - h + kBceEps);
  return -t / (h + kBceEps) + (1.0f - t) / (1.0f - h + kBceEps);
}

// Elements per output channel of a weight with the channel on axis 0.
int64_t per_channel(const Tensor& w, int64_t channels) { return channels == 1 ? w.numel() : w.numel() / channels; }

}  // namespace

ErrorWeighting parse_error_weighting(const std::string& s) {
  if (s == "element") return ErrorWeighting::Element;
  if (s == "neuron-l1") return ErrorWeighting::NeuronL1;
  if (s == "neuron-l2") return ErrorWeighting::NeuronL2;
  if (s == "none") return ErrorWeighting::None;
  fail("error weighting: expected element, neuron-l1, neuron-l2 or none, got \"", s, "\"");
}

const char* error_weighting_name(ErrorWeighting e) {
  switch (e) {
    case ErrorWeighting::Element: return "element";
    case ErrorWeighting::NeuronL1: return "neuron-l1";
    case ErrorWeighting::NeuronL2: return "neuron-l2";
    case ErrorWeighting::None: return "none";
  }
  return "?";
}

RoundingProblem rounding_problem(const Tensor& W_in, const quant::QuantScheme& scheme, const quant::QParams& qp,
                                 ErrorWeighting weighting) {
  DEAREST_CHECK(W_in.dtype() == DType::F32, "efrap: the weight must be f32, got ", W_in.describe());
  DEAREST_CHECK(scheme.form != quant::ScaleForm::DivideFloatZero,
                "efrap: learned rounding needs an integer zero point, got ", scheme.describe());
  DEAREST_CHECK(!scheme.per_channel || scheme.axis == 0, "efrap: per-channel weights must have their channel on axis 0");
  const Tensor W = W_in.detach().plain().contiguous();
  const int64_t C = qp.channels();
  DEAREST_CHECK(C == 1 || (W.dim() >= 1 && W.size(0) == C), "efrap: ", C, " qparams for a weight ", W.describe());
  RoundingProblem p;
  // An unclamped grid (EFRAP's evaluation helper lets the largest weight reach 2^(b-1)): bounds no
  // floor(W/s) + 1 reaches, so the soft rounding is never clamped either.
  p.qmin = scheme.clamp ? scheme.qmin : -(int64_t(1) << 24);
  p.qmax = scheme.clamp ? scheme.qmax : (int64_t(1) << 24);
  p.multiplicative = scheme.form == quant::ScaleForm::MulScale;
  p.scale = qp.scale.contiguous().clone();
  p.zero = qp.zero_point.to(DType::F32).contiguous();
  p.floor_u = Tensor::empty(W.shape());
  p.frac = Tensor::empty(W.shape());
  p.target = Tensor::empty(W.shape());
  p.error = Tensor::empty(W.shape());
  // Q_near: the quantizer's own nearest rounding (half-even unless it rounds half up or away).
  quant::QuantScheme nearest = scheme;
  if (nearest.rounding != quant::Rounding::HalfUp && nearest.rounding != quant::Rounding::HalfAway)
    nearest.rounding = quant::Rounding::HalfEven;
  const Tensor q_near = quant::fake_quantize_raw(W, nearest, qp).y.contiguous();
  const int64_t per = per_channel(W, C);
  const float* w = W.data<float>();
  const float* qn = q_near.data<float>();
  const float* s = p.scale.data<float>();
  float *fl = p.floor_u.data<float>(), *fr = p.frac.data<float>(), *t = p.target.data<float>(), *e = p.error.data<float>();
  for (int64_t c = 0; c < C; ++c) {
    double l1 = 0, l2 = 0;
    for (int64_t k = c * per; k < (c + 1) * per; ++k) {
      // AdaRound divides (x / scale), where the nearest quantizer multiplies by the inverse.
      const float u = p.multiplicative ? w[k] * s[c] - p.zero.data<float>()[c] : w[k] / s[c];
      fl[k] = std::floor(u);
      fr[k] = u - fl[k];
      t[k] = 1.0f - std::nearbyint(fr[k]);
      e[k] = std::fabs(w[k] - qn[k]);
      l1 += e[k];
      l2 += double(e[k]) * e[k];
    }
    if (weighting == ErrorWeighting::Element) continue;
    const float v = weighting == ErrorWeighting::NeuronL1 ? float(l1)
                    : weighting == ErrorWeighting::NeuronL2 ? float(std::sqrt(l2))
                                                            : 1.0f;
    for (int64_t k = c * per; k < (c + 1) * per; ++k) e[k] = v;
  }
  return p;
}

Tensor initial_rounding_variables(const RoundingProblem& p) {
  Tensor V = Tensor::empty(p.frac.shape());
  const float* r = p.frac.data<float>();
  float* v = V.data<float>();
  for (int64_t k = 0; k < V.numel(); ++k)
    v[k] = r[k] == 0.0f ? -std::numeric_limits<float>::infinity() : -std::log(1.0f / r[k] - 1.0f);
  return V;
}

Tensor soft_rounded_weight(const Tensor& V_in, const RoundingProblem& p) {
  const Tensor V = V_in.detach().contiguous();
  DEAREST_CHECK(V.shape() == p.floor_u.shape(), "efrap: rounding variables ", V.describe(), " for a weight ",
                p.floor_u.describe());
  const int64_t n = V.numel(), C = p.channels(), per = per_channel(V, C);
  Tensor out = Tensor::empty(V.shape());
  Tensor slope = Tensor::empty(V.shape());  // dW̃/dV, saved for the backward
  const float *v = V.data<float>(), *fl = p.floor_u.data<float>(), *s = p.scale.data<float>(), *z = p.zero.data<float>();
  float *o = out.data<float>(), *d = slope.data<float>();
  const float lo = float(p.qmin), hi = float(p.qmax);
  const bool mul = p.multiplicative;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t k = c * per; k < (c + 1) * per; ++k) {
      const float h = sigmoidf(v[k]);
      const SoftRound r = soft_round(h, fl[k], s[c], z[c], lo, hi, mul);
      o[k] = r.w;
      d[k] = r.inside ? (mul ? h * (1.0f - h) / s[c] : s[c] * h * (1.0f - h)) : 0.0f;
    }
  }
  return record("efrap_soft_rounded_weight", out, {V_in}, [sl = SavedTensor(slope)](const Tensor& g) {
    Tensor gp = g.plain().contiguous().clone();
    float* gd = gp.data<float>();
    const float* sd = sl.get().data<float>();
    for (int64_t k = 0; k < gp.numel(); ++k) gd[k] *= sd[k];
    return std::vector<Tensor>{gp};
  });
}

Tensor rounding_regularizer(const Tensor& V_in, const RoundingProblem& p, double beta, double lambda,
                            RegularizerParts* parts) {
  const Tensor V = V_in.detach().contiguous();
  DEAREST_CHECK(V.shape() == p.floor_u.shape(), "efrap: rounding variables ", V.describe(), " for a weight ",
                p.floor_u.describe());
  const int64_t n = V.numel();
  const bool need = grad_enabled() && V_in.requires_grad();
  Tensor grad = need ? Tensor::empty(V.shape()) : Tensor();
  const float *v = V.data<float>(), *t = p.target.data<float>(), *e = p.error.data<float>();
  float* gd = need ? grad.data<float>() : nullptr;
  const float b = float(beta), l = float(lambda);
  double flip = 0, round = 0;
#pragma omp parallel for schedule(static) reduction(+ : flip, round) if (n > 65536)
  for (int64_t k = 0; k < n; ++k) {
    const float h = sigmoidf(v[k]);
    const float bce = bce_of(h, t[k]);
    const float m = 2.0f * h - 1.0f;
    flip += double(e[k] * bce);
    round += double(1.0f - m * m);
    if (gd) {
      const float dh = h * (1.0f - h);
      gd[k] = (b * e[k] * dbce_of(h, t[k]) - l * 4.0f * m) * dh;
    }
  }
  flip *= beta;
  round *= lambda;
  if (parts) *parts = {flip, round};
  Tensor out = Tensor::scalar(flip + round);
  if (!need) return out;
  return record("efrap_rounding_regularizer", out, {V_in}, [gs = SavedTensor(grad)](const Tensor& g) {
    const float go = float(g.plain().item());
    Tensor r = gs.get().clone();
    float* rd = r.data<float>();
    for (int64_t k = 0; k < r.numel(); ++k) rd[k] *= go;
    return std::vector<Tensor>{r};
  });
}

Tensor soft_rounded_weight_raw(const Tensor& V_in, const RoundingProblem& p) {
  NoGradGuard ng;
  return soft_rounded_weight(V_in.detach(), p);
}

void soft_rounded_weight_into(const Tensor& V, const RoundingProblem& p, Tensor& w_tilde, Tensor& h_out) {
  DEAREST_CHECK(V.is_contiguous() && !V.is_blocked() && V.shape() == p.floor_u.shape(), "efrap: rounding variables ",
                V.describe(), " for a weight ", p.floor_u.describe());
  if (!w_tilde.defined() || w_tilde.shape() != V.shape()) w_tilde = Tensor::empty(V.shape());
  if (!h_out.defined() || h_out.shape() != V.shape()) h_out = Tensor::empty(V.shape());
  const int64_t n = V.numel(), C = p.channels(), per = per_channel(V, C);
  const float *v = V.data<float>(), *fl = p.floor_u.data<float>(), *s = p.scale.data<float>(), *z = p.zero.data<float>();
  float *o = w_tilde.data<float>(), *hd = h_out.data<float>();
  const float lo = float(p.qmin), hi = float(p.qmax);
  const bool mul = p.multiplicative;
  const WeightBlocks wb(n, C, per);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < wb.count; ++b) {
    const int64_t c = wb.channel(b);
    for (int64_t k = wb.begin(b); k < wb.end(b); ++k) {
      const float h = sigmoidf(v[k]);
      o[k] = soft_round(h, fl[k], s[c], z[c], lo, hi, mul).w;
      hd[k] = h;
    }
  }
}

RegularizerParts rounding_adam_step(Tensor& V, const Tensor& grad_w, const RoundingProblem& p, double lambda_a,
                                    double beta, double lambda, RoundingAdam& adam, const Tensor* h_given,
                                    bool want_parts) {
  DEAREST_CHECK(V.is_contiguous() && !V.is_blocked() && V.shape() == p.floor_u.shape(), "efrap: rounding variables ",
                V.describe(), " for a weight ", p.floor_u.describe());
  const Tensor g = grad_w.plain().contiguous();
  DEAREST_CHECK(g.shape() == V.shape(), "efrap: gradient ", g.describe(), " for rounding variables ", V.describe());
  DEAREST_CHECK(!h_given || (h_given->shape() == V.shape() && h_given->is_contiguous()),
                "efrap: sigmoid(V) of the wrong shape for rounding variables ", V.describe());
  if (!adam.m.defined()) {
    adam.m = Tensor::zeros(V.shape());
    adam.v = Tensor::zeros(V.shape());
  }
  const int64_t t = ++adam.t;
  // As nn::Adam: the bias corrections in double, the update in float.
  const double bc1 = 1 - std::pow(adam.beta1, double(t)), bc2_sqrt = std::sqrt(1 - std::pow(adam.beta2, double(t)));
  const float ss = float(adam.lr / bc1), bc2s = float(bc2_sqrt), eps = float(adam.eps);
  const float b1 = float(adam.beta1), b2 = float(adam.beta2), a1 = float(1 - adam.beta1), a2 = float(1 - adam.beta2);
  const int64_t n = V.numel(), C = p.channels(), per = per_channel(V, C);
  float *v = V.data<float>(), *m = adam.m.data<float>(), *sq = adam.v.data<float>();
  const float *gw = g.data<float>(), *fl = p.floor_u.data<float>(), *s = p.scale.data<float>(), *z = p.zero.data<float>();
  const float *tg = p.target.data<float>(), *e = p.error.data<float>();
  const float la = float(lambda_a), bf = float(beta), lp = float(lambda);
  const float lo = float(p.qmin), hi = float(p.qmax);
  const bool mul = p.multiplicative;
  Tensor h_own;
  if (!h_given) {
    Tensor unused;
    soft_rounded_weight_into(V, p, unused, h_own);
  }
  const float* hd = h_given ? h_given->data<float>() : h_own.data<float>();
  double flip = 0, round = 0;
  const WeightBlocks wb(n, C, per);
#pragma omp parallel for schedule(static) reduction(+ : flip, round) if (n > 65536)
  for (int64_t b = 0; b < wb.count; ++b) {
    const int64_t c = wb.channel(b), k0 = wb.begin(b), k1 = wb.end(b);
    // L_F and L_P at V before the step (a log per weight), only where the caller reads them.
    if (want_parts) {
      for (int64_t k = k0; k < k1; ++k) {
        const float mm = 2.0f * hd[k] - 1.0f;
        flip += double(e[k] * bce_of(hd[k], tg[k]));
        round += double(1.0f - mm * mm);
      }
    }
    // The gradient and the Adam update: no calls and no reductions, so the compiler vectorizes it,
    // with IEEE operations that give each lane the bits the scalar loop gave it.
    const float sc = s[c], zc = z[c];
    // Written with selects of values only (both quotients computed), so that it has no branch.
    const float zadd = mul ? 0.0f : zc;
#pragma omp simd
    for (int64_t k = k0; k < k1; ++k) {
      const float h = hd[k];
      const float dh = h * (1.0f - h);
      const float x = fl[k] + h + zadd;  // as soft_round
      const float slope_div = dh / sc, slope_mul = sc * dh;
      const float slope = (x >= lo) & (x <= hi) ? (mul ? slope_div : slope_mul) : 0.0f;
      const float mm = 2.0f * h - 1.0f;
      // dbce_of for a target of 0 or 1, the only targets rounding_problem makes
      const bool up = tg[k] == 1.0f;
      const float dbce = (up ? -1.0f : 1.0f) / (up ? h + kBceEps : 1.0f - h + kBceEps);
      const float gi = la * gw[k] * slope + (bf * e[k] * dbce - lp * 4.0f * mm) * dh;
      m[k] = m[k] * b1 + a1 * gi;
      sq[k] = sq[k] * b2 + a2 * (gi * gi);
      const float denom = std::sqrt(sq[k]) / bc2s + eps;
      v[k] = v[k] - ss * (m[k] / denom);
    }
  }
  return {flip * beta, round * lambda};
}

Tensor hard_rounding(const Tensor& V_in) {
  const Tensor V = V_in.detach().contiguous();
  Tensor up = Tensor::empty(V.shape(), DType::U8);
  const float* v = V.data<float>();
  uint8_t* u = up.data<uint8_t>();
  for (int64_t k = 0; k < V.numel(); ++k) u[k] = v[k] >= 0.0f ? 1 : 0;
  return up;
}

}  // namespace dearest::defenses
