#include "defenses/unit_objective.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "nn/layers.h"
#include "quant/fake_quant.h"
#include "tensor/kernels/blas.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/matmul.h"

namespace dearest::defenses {

namespace {

// The unit's output reduced as the reference's L_A: rows = elements / channels.
double rows_of(const Shape& out) {
  int64_t n = 1;
  for (int64_t d : out) n *= d;
  return double(n) / double(out[1]);
}

Tensor layer_bias(const LayerUnit& u) {
  Tensor b;
  if (u.layer->is_conv) {
    auto* c = static_cast<nn::Conv2d*>(u.layer->module);
    if (c->has_bias()) b = c->bias();
    if (b.defined() && c->bias_transform) b = c->bias_transform(b);
  } else {
    auto* l = static_cast<nn::Linear*>(u.layer->module);
    for (auto& [k, t] : l->named_parameters())
      if (k == "bias") b = t;
    if (b.defined() && l->bias_transform) b = l->bias_transform(b);
  }
  return b.defined() ? b.detach().plain().contiguous() : b;
}

// The unit's tail after the layer, when it is [BN] [ReLU | ReLU6] [flatten] [activation quantizer].
struct Tail {
  bool elementwise = true;
  bool affine = true;  // no activation, no quantizer: the output is affine in the weight
  std::vector<float> a, b;  // per channel: BN as y = a z + b (a = 1, b = 0 without BN)
  enum class Act { None, Relu, Relu6 } act = Act::None;
  std::shared_ptr<quant::TensorQuantizer> quant;
};

Tail analyze(const LayerUnit& u, int64_t C) {
  Tail t;
  t.a.assign(size_t(C), 1.0f);
  t.b.assign(size_t(C), 0.0f);
  int stage = 0;  // 0: BN allowed, 1: activation allowed, 2: flatten, 3: quantizer, 4: nothing more
  for (auto& st : u.after) {
    if (st.kind == UnitStep::Kind::Quantize) {
      if (!st.quant) continue;
      if (stage > 3 || st.quant->mode != quant::TensorQuantizer::Mode::Fixed) t.elementwise = false;
      t.quant = st.quant;
      t.affine = false;
      stage = 4;
    } else if (st.kind == UnitStep::Kind::Relu && stage <= 1) {
      t.act = Tail::Act::Relu;
      t.affine = false;
      stage = 2;
    } else if (st.kind == UnitStep::Kind::Flatten && stage <= 2) {
      stage = 3;
    } else if (st.kind == UnitStep::Kind::Module) {
      const std::string ty = st.module->type();
      if (ty == "Dropout" || ty == "Identity") continue;  // eval mode: identities
      if (ty == "BatchNorm2d" && stage == 0) {
        auto* bn = static_cast<nn::BatchNorm2d*>(st.module);
        stage = 1;
        if (bn->folded) continue;
        Tensor g, be, m, v;
        for (auto& [k, x] : bn->state_dict()) {
          if (k == "weight") g = x.contiguous();
          if (k == "bias") be = x.contiguous();
          if (k == "running_mean") m = x.contiguous();
          if (k == "running_var") v = x.contiguous();
        }
        DEAREST_CHECK(g.numel() == C, "efrap: ", st.name, " has ", g.numel(), " channels, the layer ", C);
        for (int64_t c = 0; c < C; ++c) {
          const float s = g.data<float>()[c] / std::sqrt(v.data<float>()[c] + float(bn->eps));
          t.a[size_t(c)] = s;
          t.b[size_t(c)] = be.data<float>()[c] - m.data<float>()[c] * s;
        }
      } else if ((ty == "ReLU" || ty == "ReLU6") && stage <= 1) {
        t.act = ty == "ReLU" ? Tail::Act::Relu : Tail::Act::Relu6;
        t.affine = false;
        stage = 2;
      } else if (ty == "Flatten" && stage <= 2) {
        stage = 3;
      } else {
        t.elementwise = t.affine = false;
      }
    } else {
      t.elementwise = t.affine = false;
    }
  }
  return t;
}

// ---- graph ---------------------------------------------------------------------------------
class GraphObjective : public UnitObjective {
 public:
  GraphObjective(const LayerUnit& u, const std::vector<Tensor>& in, const std::vector<Tensor>& tg)
      : u_(u), in_(in), tg_(tg) {}
  double value_and_grad(const Tensor& w, size_t b, Tensor& grad) override {
    Tensor leaf = w.detach().clone();
    leaf.set_requires_grad(true);
    Tensor y = u_.forward(in_[b], leaf, true);
    Tensor l = div(sum(square(sub(y, tg_[b]))), rows_of(y.shape()));
    backward(l);
    grad = leaf.grad().plain().contiguous();
    return l.item();
  }
  const char* kind() const override { return "graph"; }

 private:
  const LayerUnit& u_;
  const std::vector<Tensor>& in_;
  const std::vector<Tensor>& tg_;
};

// ---- fused ----------------------------------------------------------------------------------
// One element of the tail: the unit's output before the quantizer, and whether the tail's
// activation passes a gradient. One function for every layout, so every layout gets the same bits.
inline float tail_pre(float a, float b, float z) { return a * z + b; }
inline float tail_act(Tail::Act act, float v) {
  if (act == Tail::Act::Relu) return v > 0 ? v : 0.0f;
  if (act == Tail::Act::Relu6) return v < 0 ? 0.0f : (v > 6 ? 6.0f : v);
  return v;
}
inline bool tail_passes(Tail::Act act, float pre) {
  if (act == Tail::Act::Relu) return pre > 0;
  if (act == Tail::Act::Relu6) return (pre >= 0) & (pre <= 6);
  return true;
}

// L_A's sum and dL/dz over `np` positions of one channel block (`kB` channels each, 0: `live`
// of `B`, known at run time only): acc[j] += (q - t)^2, g = 2/rows (q - t) a where the tail and
// the quantizer pass a gradient. A compile-time block lets the compiler vectorize over it.
struct TailChunk {
  const float *z, *t, *q, *a, *b;
  const uint8_t* in_range;
  float* g;
  double* acc;
  int64_t np, B, live;
  float scale;
  Tail::Act act;
};
template <int64_t kB, Tail::Act kAct> void tail_loss_and_grad(const TailChunk& c) {
  const int64_t B = kB ? kB : c.B, live = kB ? kB : c.live;
  for (int64_t p = 0; p < c.np; ++p) {
    for (int64_t j = 0; j < live; ++j) {
      const int64_t k = p * B + j;
      const float d = c.q[k] - c.t[k];
      c.acc[j] += double(d) * d;
      // Everything computed, then selected (& rather than &&): no branch, so the loop vectorizes
      const bool pass = (c.in_range[k] != 0) & tail_passes(kAct, tail_pre(c.a[j], c.b[j], c.z[k]));
      const float g = c.scale * d * c.a[j];
      c.g[k] = pass ? g : 0.0f;
    }
    for (int64_t j = live; j < B; ++j) c.g[p * B + j] = 0.0f;
  }
}
template <Tail::Act kAct> void tail_loss_and_grad(const TailChunk& c) {
  if (c.live == 16 && c.B == 16) tail_loss_and_grad<16, kAct>(c);
  else if (c.live == 8 && c.B == 8) tail_loss_and_grad<8, kAct>(c);
  else tail_loss_and_grad<0, kAct>(c);
}
void tail_loss_and_grad(const TailChunk& c) {
  switch (c.act) {
    case Tail::Act::Relu: return tail_loss_and_grad<Tail::Act::Relu>(c);
    case Tail::Act::Relu6: return tail_loss_and_grad<Tail::Act::Relu6>(c);
    case Tail::Act::None: return tail_loss_and_grad<Tail::Act::None>(c);
  }
}

// The convolution (or linear) output z, then one pass over z's bytes in the layout oneDNN wrote them
// (channel-blocked, no reorder) for the tail, the quantizer, the loss and dL/dz, then the
// backward-weights convolution on that gradient in the same layout. The inputs and the targets are
// put in the layouts the convolution reads and writes once per cached batch, not once per
// iteration. L_A is summed per (image, channel) in the order of the plain layout and those sums
// are added in (image, channel) order, so the layout does not change a bit of it.
class FusedObjective : public UnitObjective {
 public:
  FusedObjective(const LayerUnit& u, const std::vector<Tensor>& in, const std::vector<Tensor>& tg, Tail t)
      : u_(u), in_(in), tg_(tg), t_(std::move(t)), bias_(layer_bias(u)), in_laid_(in.size()), tg_laid_(tg.size()) {
    if (t_.quant) {
      masked_ = t_.quant->ste() == quant::Ste::Clipped;
      quant_.emplace(t_.quant->scheme(), t_.quant->qparams(), masked_);
    }
    // Every batch's input and target in the layouts the convolution reads and writes, now (the
    // set-up) rather than on the batch's first draw. One convolution shows the output's layout.
    NoGradGuard ng;
    for (size_t b = 0; b < in.size(); ++b) lay_out_input(b, u_.layer->float_weight().shape());
    if (in.empty()) return;
    const Tensor w0 = u_.layer->float_weight().detach().plain().contiguous();
    Tensor z = output(in_laid_[0], w0);
    if (channel_blocks(z).block == 0) z = z.plain().contiguous();
    for (size_t b = 0; b < tg.size(); ++b) lay_out_target(b, z);
  }

  double value_and_grad(const Tensor& w, size_t b, Tensor& grad) override {
    NoGradGuard ng;
    const bool conv = u_.layer->is_conv;
    const Tensor& x = in_laid_[b];
    Tensor z = output(x, w);
    const Shape out_shape = tg_[b].shape();
    DEAREST_CHECK(tg_[b].numel() == z.numel(), "efrap: target ", tg_[b].describe(), " for a unit output ", z.describe());
    ChannelBlocks cb = channel_blocks(z);
    if (cb.block == 0) {  // a layout the pass cannot address
      z = z.plain().contiguous();
      cb = channel_blocks(z);
    }
    // The target in z's layout (set up in the constructor: z's layout is the same at every
    // iteration; the pass reads both through the same addressing).
    if (!(channel_blocks(tg_laid_[b]) == cb)) lay_out_target(b, z);
    const double loss = tail_pass(z, cb, tg_laid_[b], out_shape);
    if (conv) {
      grad = raw::conv2d_backward_weights(grad_z_, x, w.shape(), false, conv_params()).w;
    } else {
      // gw = gz^T x: [C, N] x [N, K].
      const int64_t N = z.size(0), C = z.size(1), K = x.size(1);
      grad = Tensor::empty(w.shape());
      blas_sgemm(true, false, C, K, N, 1.0f, grad_z_.data<float>(), C, x.data<float>(), K, 0.0f, grad.data<float>(), K);
    }
    grad = grad.plain().contiguous();
    return loss;
  }
  const char* kind() const override { return "fused"; }

 private:
  const Conv2dParams& conv_params() const { return static_cast<nn::Conv2d*>(u_.layer->module)->params; }
  void lay_out_input(size_t b, const Shape& w_shape) {
    in_laid_[b] = u_.layer->is_conv ? raw::conv2d_input_layout(in_[b], w_shape, bias_.defined(), conv_params())
                                    : in_[b].contiguous();
  }
  void lay_out_target(size_t b, const Tensor& z) { tg_laid_[b] = to_layout_of(tg_[b].contiguous().reshape(z.shape()), z); }
  Tensor output(const Tensor& x, const Tensor& w) const {
    return u_.layer->is_conv ? raw::conv2d(x, w, bias_, conv_params()) : raw::linear(x, w, bias_);
  }

  // A fresh tensor with z's shape and bytes layout.
  static Tensor like(const Tensor& z) {
    if (!z.is_blocked()) return Tensor::empty(z.shape());
    return Tensor::wrap(std::make_shared<Storage>(z.storage()->nbytes(), false), z.shape(), DType::F32, z.blocked_layout());
  }

  // The pass over z's bytes, `kChunk` floats at a time through the tail, the quantizer, the loss
  // and dL/dz (written to grad_z_ in z's layout).
  double tail_pass(const Tensor& z, const ChannelBlocks& cb, const Tensor& T, const Shape& out_shape) {
    const int64_t N = z.size(0), C = z.size(1), S = z.numel() / (N * C), B = cb.block;
    const int64_t blocks = cb.channels / B, items = N * blocks;
    grad_z_ = like(z);
    part_.assign(size_t(N * C), 0.0);
    const float *zd = layout_floats(z), *td = layout_floats(T);
    float* gz = layout_floats(grad_z_);
    const float *a = t_.a.data(), *bb = t_.b.data();
    const auto act = t_.act;
    const quant::SpanFakeQuantizer* sq = quant_ ? &*quant_ : nullptr;
    const bool masked = sq && masked_;
    const double rows = rows_of(out_shape);  // the unit's output, as the graph form averages
    const float g_scale = float(2.0 / rows);
    constexpr int64_t kChunk = 4096;
    const int64_t per = std::max<int64_t>(1, kChunk / B);  // positions s per chunk
#pragma omp parallel if (items > 1 && z.numel() > 65536)
    {
      std::vector<float> y(size_t(per * B), 0.0f), yq(size_t(per * B));
      // 1 where the quantizer passes a gradient; it writes only under the clipped STE
      std::vector<uint8_t> ir(size_t(per * B), 1);
      std::vector<double> acc(static_cast<size_t>(B));
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) {
        const int64_t n = it / blocks, c0 = (it % blocks) * B;
        const int64_t base = n * cb.n_stride + (it % blocks) * cb.block_stride;
        const int64_t live = std::min(B, C - c0);  // channels of this block that exist
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t s0 = 0; s0 < S; s0 += per) {
          const int64_t np = std::min(per, S - s0), len = np * B;
          const float* zc = zd + base + s0 * B;
          for (int64_t p = 0; p < np; ++p)
            for (int64_t j = 0; j < live; ++j)
              y[size_t(p * B + j)] = tail_act(act, tail_pre(a[c0 + j], bb[c0 + j], zc[p * B + j]));
          const float* q = y.data();
          if (sq) {
            (*sq)(y.data(), yq.data(), masked ? ir.data() : nullptr, len);  // padding channels too, ignored
            q = yq.data();
          }
          const TailChunk ch{zc, td + base + s0 * B, q, a + c0, bb + c0, ir.data(), gz + base + s0 * B, acc.data(),
                             np, B, live, g_scale, act};
          tail_loss_and_grad(ch);
        }
        for (int64_t j = 0; j < live; ++j) part_[size_t(n * C + c0 + j)] = acc[size_t(j)];
      }
    }
    double loss = 0;
    for (double p : part_) loss += p;
    return loss / rows;
  }

  const LayerUnit& u_;
  const std::vector<Tensor>& in_;
  const std::vector<Tensor>& tg_;
  Tail t_;
  Tensor bias_, grad_z_;
  std::vector<Tensor> in_laid_, tg_laid_;  // per batch, in the layouts the convolution reads and writes
  std::optional<quant::SpanFakeQuantizer> quant_;
  bool masked_ = false;  // the clipped STE: no gradient where the quantizer clamps
  std::vector<double> part_;  // L_A per (image, channel)
};

// ---- gram ----------------------------------------------------------------------------------
// Patches of one image for a convolution: P[k][m], k = (ci, ky, kx) as OIHW flattens the weight,
// m = (oy, ox).
void im2col(const float* x, int64_t Ci, int64_t H, int64_t W, int64_t kh, int64_t kw, const Conv2dParams& p, int64_t OH,
            int64_t OW, float* P) {
  for (int64_t ci = 0; ci < Ci; ++ci)
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        float* row = P + ((ci * kh + ky) * kw + kx) * OH * OW;
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * p.stride_h - p.pad_h + ky * p.dil_h;
          for (int64_t ox = 0; ox < OW; ++ox) {
            const int64_t ix = ox * p.stride_w - p.pad_w + kx * p.dil_w;
            row[oy * OW + ox] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(ci * H + iy) * W + ix] : 0.0f;
          }
        }
      }
}

class GramObjective : public UnitObjective {
 public:
  GramObjective(const LayerUnit& u, const std::vector<Tensor>& in, const std::vector<Tensor>& tg, const Tensor& w_float,
                Tail t)
      : a_(std::move(t.a)) {
    NoGradGuard ng;
    w_ = w_float.detach().plain().contiguous().clone();
    C_ = w_.size(0);
    K_ = w_.numel() / C_;
    for (size_t b = 0; b < in.size(); ++b) {
      const Tensor x = in[b].contiguous();
      const Tensor E = sub(u.forward(x, w_, false), tg[b]).plain().contiguous();
      const int64_t N = E.size(0);
      rows_.push_back(rows_of(E.shape()));
      Tensor G = Tensor::zeros({K_, K_}), R = Tensor::zeros({K_, C_});
      double e = 0;
      const float* ed = E.data<float>();
      for (int64_t i = 0; i < E.numel(); ++i) e += double(ed[i]) * ed[i];
      if (u.layer->is_conv) {
        const auto& p = static_cast<nn::Conv2d*>(u.layer->module)->params;
        DEAREST_CHECK(p.groups == 1, "efrap: the gram form needs groups = 1");
        const int64_t Ci = x.size(1), H = x.size(2), W = x.size(3), kh = w_.size(2), kw = w_.size(3);
        const int64_t OH = E.size(2), OW = E.size(3), HW = OH * OW, M = N * HW;
        // All the batch's patches side by side (K x N*HW) and E as C x N*HW: one product each.
        Tensor P = Tensor::empty({K_, M}), Et = Tensor::empty({C_, M});
        {
          Tensor Pn = Tensor::empty({K_, HW});
          for (int64_t n = 0; n < N; ++n) {
            im2col(x.data<float>() + n * Ci * H * W, Ci, H, W, kh, kw, p, OH, OW, Pn.data<float>());
            for (int64_t k = 0; k < K_; ++k)
              std::copy_n(Pn.data<float>() + k * HW, HW, P.data<float>() + k * M + n * HW);
            for (int64_t c = 0; c < C_; ++c)
              std::copy_n(ed + (n * C_ + c) * HW, HW, Et.data<float>() + c * M + n * HW);
          }
        }
        blas_sgemm(false, true, K_, K_, M, 1.0f, P.data<float>(), M, P.data<float>(), M, 0.0f, G.data<float>(), K_);
        blas_sgemm(false, true, K_, C_, M, 1.0f, P.data<float>(), M, Et.data<float>(), M, 0.0f, R.data<float>(), C_);
      } else {
        blas_sgemm(true, false, K_, K_, N, 1.0f, x.data<float>(), K_, x.data<float>(), K_, 0.0f, G.data<float>(), K_);
        blas_sgemm(true, false, K_, C_, N, 1.0f, x.data<float>(), K_, ed, C_, 0.0f, R.data<float>(), C_);
      }
      G_.push_back(G);
      R_.push_back(R);
      e_.push_back(e);
    }
    D_ = Tensor::empty({C_, K_});
    T_ = Tensor::empty({C_, K_});
  }

  double value_and_grad(const Tensor& w, size_t b, Tensor& grad) override {
    const Tensor wc = w.plain().contiguous();
    const float *wd = wc.data<float>(), *w0 = w_.data<float>();
    float* d = D_.data<float>();
    for (int64_t i = 0; i < C_ * K_; ++i) d[i] = wd[i] - w0[i];
    // T = D G (G is symmetric).
    blas_sgemm(false, false, C_, K_, K_, 1.0f, d, K_, G_[b].data<float>(), K_, 0.0f, T_.data<float>(), K_);
    grad = Tensor::empty(w.shape());
    float* g = grad.data<float>();
    const float* t = T_.data<float>();
    const float* r = R_[b].data<float>();
    const double M = rows_[b];
    double quad = 0, cross = 0;
    for (int64_t c = 0; c < C_; ++c) {
      const float a = a_[size_t(c)];
      const float f = float(2.0 / M) * a;
      double q = 0, x = 0;
      for (int64_t k = 0; k < K_; ++k) {
        const float rk = r[k * C_ + c];
        q += double(d[c * K_ + k]) * t[c * K_ + k];
        x += double(d[c * K_ + k]) * rk;
        g[c * K_ + k] = f * (a * t[c * K_ + k] + rk);
      }
      quad += double(a) * a * q;
      cross += 2.0 * a * x;
    }
    return (quad + cross + e_[b]) / M;
  }
  const char* kind() const override { return "gram"; }

 private:
  std::vector<float> a_;
  Tensor w_, D_, T_;
  int64_t C_ = 0, K_ = 0;
  std::vector<Tensor> G_, R_;
  std::vector<double> e_, rows_;
};

}  // namespace

ObjectiveKind parse_objective_kind(const std::string& s) {
  if (s == "auto") return ObjectiveKind::Auto;
  if (s == "gram") return ObjectiveKind::Gram;
  if (s == "fused") return ObjectiveKind::Fused;
  if (s == "graph") return ObjectiveKind::Graph;
  fail("efrap objective: expected auto, gram, fused or graph, got \"", s, "\"");
}

std::unique_ptr<UnitObjective> make_unit_objective(const LayerUnit& u, const std::vector<Tensor>& inputs,
                                                   const std::vector<Tensor>& targets, const Tensor& w_float,
                                                   ObjectiveKind kind, int64_t gram_budget_bytes) {
  DEAREST_CHECK(!inputs.empty() && inputs.size() == targets.size(), "efrap: ", inputs.size(), " input batches and ",
                targets.size(), " target batches");
  const int64_t C = w_float.size(0), K = w_float.numel() / C;
  Tail t = analyze(u, C);
  const bool grouped = u.layer->is_conv && static_cast<nn::Conv2d*>(u.layer->module)->params.groups != 1;
  const bool gram_ok = t.affine && !grouped;
  // The fused pass quantizes runs of floats in whatever order oneDNN laid them out: only a
  // per-tensor quantizer without mask rounding is the same function of every element there.
  const bool fused_ok = t.elementwise && (!t.quant || (!t.quant->scheme().per_channel &&
                                                       !quant::uses_mask(t.quant->scheme().rounding)));
  if (kind == ObjectiveKind::Auto) {
    // Per iteration the Gram form costs 2 C K^2 flops, the two convolutions 4 M K C. Winograd
    // runs a 3x3 stride-1 convolution of 16 or more input channels in about half the direct time
    // (ResNet18 width 64, layer3's conv2 units: fused 10.6-10.9 ms an iteration against gram's
    // 16.2-16.8 under Winograd, 17.3-17.7 against 15.8-16.1 with direct convolutions).
    const double M = rows_of(targets[0].shape());
    const double bytes = double(inputs.size()) * double(K) * double(K + C) * 4.0;
    double conv_share = 2.0;
    if (u.layer->is_conv && raw::conv2d_runs_winograd(inputs[0].shape(), w_float.shape(), layer_bias(u).defined(),
                                                      static_cast<nn::Conv2d*>(u.layer->module)->params))
      conv_share = 1.0;
    kind = gram_ok && double(K) < conv_share * M && bytes <= double(gram_budget_bytes) ? ObjectiveKind::Gram
           : fused_ok                                                              ? ObjectiveKind::Fused
                                                                                   : ObjectiveKind::Graph;
  }
  switch (kind) {
    case ObjectiveKind::Gram:
      DEAREST_CHECK(gram_ok, "efrap: the unit ", u.describe(), " is not affine in the weight; the gram form does not apply");
      return std::make_unique<GramObjective>(u, inputs, targets, w_float, std::move(t));
    case ObjectiveKind::Fused:
      DEAREST_CHECK(fused_ok, "efrap: the unit ", u.describe(), " has a step the fused form does not know");
      return std::make_unique<FusedObjective>(u, inputs, targets, std::move(t));
    default:
      return std::make_unique<GraphObjective>(u, inputs, targets);
  }
}

}  // namespace dearest::defenses
