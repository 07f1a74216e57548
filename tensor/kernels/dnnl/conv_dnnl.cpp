#include "tensor/kernels/dnnl/conv_dnnl.h"

#include <functional>
#include <optional>

#include "tensor/kernels/dnnl/dnnl_context.h"

namespace dearest::dnnlk {

namespace {

using dnnl::memory;

struct ConvKey {
  Shape x, w;
  bool bias;
  Conv2dParams p;
  ConvAlgorithm wanted = conv_algorithm();
  std::string str() const {
    return shape_str(x) + shape_str(w) + (bias ? "+b " : " ") + p.str() + (wanted == ConvAlgorithm::Winograd ? " wino" : "");
  }
  Shape y() const {
    return {x[0], w[0], conv_out_size(x[2], w[2], p.stride_h, p.pad_h, p.dil_h),
            conv_out_size(x[3], w[3], p.stride_w, p.pad_w, p.dil_w)};
  }
  // oneDNN's weight dims: OIHW, or GOIHW when grouped (the same bytes as our [O, C/G, KH, KW]).
  Shape w_dnnl() const { return p.groups == 1 ? w : Shape{p.groups, w[0] / p.groups, w[1], w[2], w[3]}; }
};

struct ConvEntry {
  dnnl::algorithm alg;  // what the forward got; the backward passes follow it
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  std::optional<dnnl::convolution_backward_data::primitive_desc> bwd_d_pd;
  std::optional<dnnl::convolution_backward_data> bwd_d;
  std::optional<dnnl::convolution_backward_weights::primitive_desc> bwd_w_pd;
  std::optional<dnnl::convolution_backward_weights> bwd_w;
  memory::desc w_plain;  // the master weight's bytes as oneDNN sees them
};

memory::desc any_desc(const Shape& s) { return memory::desc(to_dims(s), dt::f32, tag::any); }
memory::desc bias_desc(const ConvKey& k) {
  return k.bias ? memory::desc({k.w[0]}, dt::f32, tag::a) : memory::desc();
}
memory::dims strides_of(const Conv2dParams& p) { return {p.stride_h, p.stride_w}; }
memory::dims dilates_of(const Conv2dParams& p) { return {p.dil_h - 1, p.dil_w - 1}; }  // oneDNN: 0 = dense
memory::dims pads_of(const Conv2dParams& p) { return {p.pad_h, p.pad_w}; }

// Builds a primitive descriptor with Winograd when `alg` asks for it and oneDNN has a Winograd
// kernel for the geometry, with the direct algorithm otherwise.
template <typename PD> PD with_algorithm(dnnl::algorithm& alg, const std::function<PD(dnnl::algorithm)>& make) {
  if (alg == dnnl::algorithm::convolution_winograd) {
    try {
      return make(alg);
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) throw;
      alg = dnnl::algorithm::convolution_direct;
    }
  }
  return make(alg);
}

ConvEntry& entry(const ConvKey& k) {
  static PrimitiveCache<ConvEntry> cache;
  return cache.get(k.str(), [&] {
    // A stem with 3 input channels ran slower under Winograd than direct (EFRAP's conv1 unit:
    // 13.8 against 9.5 ms, docs/defenses.md), so Winograd is asked for from 16 input channels on.
    const bool wino = k.wanted == ConvAlgorithm::Winograd && k.x[1] / k.p.groups >= 16;
    dnnl::algorithm alg = wino ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    auto pd = with_algorithm<dnnl::convolution_forward::primitive_desc>(alg, [&](dnnl::algorithm a) {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, a, any_desc(k.x), any_desc(k.w_dnnl()),
                                        bias_desc(k), any_desc(k.y()), strides_of(k.p), dilates_of(k.p), pads_of(k.p),
                                        pads_of(k.p));
      return dnnl::convolution_forward::primitive_desc(d, default_attr(), engine());
    });
    note_impl("conv fwd " + k.str(), pd.impl_info_str());
    return ConvEntry{alg, pd, dnnl::convolution_forward(pd), {}, {}, {}, {}, plain_desc(k.w_dnnl(), DType::F32)};
  });
}

Tensor dense(const Tensor& t) { return t.is_blocked() ? t : t.contiguous(); }

// The master weight reordered into `want` (a no-op when oneDNN takes plain weights).
Tensor weights_as(const Tensor& w, const ConvEntry& e, const memory::desc& want, const ConvKey& k) {
  Tensor wc = w.contiguous();
  if (e.w_plain == want) return wc;
  return reorder_bytes(wc, e.w_plain, want, k.w_dnnl());
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w, const Tensor& bias, const Conv2dParams& p) try {
  ConvKey k{x_in.shape(), w.shape(), bias.defined(), p};
  ConvEntry& e = entry(k);
  const auto& pd = e.fwd_pd;
  Tensor x = reorder_to(dense(x_in), pd.src_desc());
  Tensor wr = weights_as(w, e, pd.weights_desc(), k);
  Tensor y = make_tensor(pd.dst_desc(), k.y(), DType::F32);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x, pd.src_desc())},
                                       {DNNL_ARG_WEIGHTS, memory_of(wr, pd.weights_desc())},
                                       {DNNL_ARG_DST, memory_of(y, pd.dst_desc())},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_for(pd.scratchpad_desc())}};
  if (bias.defined()) args[DNNL_ARG_BIAS] = memory_of(bias.contiguous());
  execute(e.fwd, args);
  return finish(y);
} catch (const dnnl::error& e) {
  fail("conv2d_forward (oneDNN): ", e.what());
}

bool conv2d_runs_winograd(const Shape& x_shape, const Shape& w_shape, bool with_bias, const Conv2dParams& p) try {
  return entry(ConvKey{x_shape, w_shape, with_bias, p}).alg == dnnl::algorithm::convolution_winograd;
} catch (const dnnl::error& e) {
  fail("conv2d_runs_winograd (oneDNN): ", e.what());
}

Tensor conv2d_input_layout(const Tensor& x, const Shape& w_shape, bool with_bias, const Conv2dParams& p) try {
  return reorder_to(dense(x), entry(ConvKey{x.shape(), w_shape, with_bias, p}).fwd_pd.src_desc());
} catch (const dnnl::error& e) {
  fail("conv2d_input_layout (oneDNN): ", e.what());
}

Tensor conv2d_backward_data(const Tensor& gy_in, const Tensor& w, const Shape& x_shape, bool with_bias,
                            const Conv2dParams& p) try {
  ConvKey k{x_shape, w.shape(), with_bias, p};
  ConvEntry& e = entry(k);
  if (!e.bwd_d_pd) {
    dnnl::algorithm alg = e.alg;
    e.bwd_d_pd.emplace(with_algorithm<dnnl::convolution_backward_data::primitive_desc>(alg, [&](dnnl::algorithm a) {
      dnnl::convolution_backward_data::desc d(a, any_desc(k.x), any_desc(k.w_dnnl()), any_desc(k.y()), strides_of(p),
                                              dilates_of(p), pads_of(p), pads_of(p));
      return dnnl::convolution_backward_data::primitive_desc(d, default_attr(), engine(), e.fwd_pd);
    }));
    e.bwd_d.emplace(*e.bwd_d_pd);
    note_impl("conv bwd_data " + k.str(), e.bwd_d_pd->impl_info_str());
  }
  const auto& pd = *e.bwd_d_pd;
  Tensor gy = reorder_to(dense(gy_in), pd.diff_dst_desc());
  Tensor wr = weights_as(w, e, pd.weights_desc(), k);
  Tensor gx = make_tensor(pd.diff_src_desc(), x_shape, DType::F32);
  execute(*e.bwd_d, {{DNNL_ARG_DIFF_DST, memory_of(gy, pd.diff_dst_desc())},
                     {DNNL_ARG_WEIGHTS, memory_of(wr, pd.weights_desc())},
                     {DNNL_ARG_DIFF_SRC, memory_of(gx, pd.diff_src_desc())},
                     {DNNL_ARG_SCRATCHPAD, scratchpad_for(pd.scratchpad_desc())}});
  return finish(gx);
} catch (const dnnl::error& e) {
  fail("conv2d_backward_data (oneDNN): ", e.what());
}

void conv2d_backward_weights(const Tensor& gy_in, const Tensor& x_in, const Shape& w_shape, bool with_bias,
                             const Conv2dParams& p, Tensor& gw, Tensor& gbias) try {
  ConvKey k{x_in.shape(), w_shape, with_bias, p};
  ConvEntry& e = entry(k);
  if (!e.bwd_w_pd) {
    dnnl::algorithm alg = e.alg;
    e.bwd_w_pd.emplace(with_algorithm<dnnl::convolution_backward_weights::primitive_desc>(alg, [&](dnnl::algorithm a) {
      dnnl::convolution_backward_weights::desc d(a, any_desc(k.x), any_desc(k.w_dnnl()), bias_desc(k), any_desc(k.y()),
                                                 strides_of(p), dilates_of(p), pads_of(p), pads_of(p));
      return dnnl::convolution_backward_weights::primitive_desc(d, default_attr(), engine(), e.fwd_pd);
    }));
    e.bwd_w.emplace(*e.bwd_w_pd);
    note_impl("conv bwd_weights " + k.str(), e.bwd_w_pd->impl_info_str());
  }
  const auto& pd = *e.bwd_w_pd;
  Tensor x = reorder_to(dense(x_in), pd.src_desc());
  Tensor gy = reorder_to(dense(gy_in), pd.diff_dst_desc());
  Tensor gwr = make_tensor(pd.diff_weights_desc(), k.w_dnnl(), DType::F32);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory_of(x, pd.src_desc())},
                                       {DNNL_ARG_DIFF_DST, memory_of(gy, pd.diff_dst_desc())},
                                       {DNNL_ARG_DIFF_WEIGHTS, memory_of(gwr, pd.diff_weights_desc())},
                                       {DNNL_ARG_SCRATCHPAD, scratchpad_for(pd.scratchpad_desc())}};
  if (with_bias) {
    gbias = Tensor::empty({w_shape[0]}, DType::F32);
    args[DNNL_ARG_DIFF_BIAS] = memory_of(gbias);
  }
  execute(*e.bwd_w, args);
  // Plain (G)OIHW bytes viewed as our [O, C/G, KH, KW].
  Tensor plain = pd.diff_weights_desc() == e.w_plain ? gwr : reorder_bytes(gwr, pd.diff_weights_desc(), e.w_plain, k.w_dnnl());
  gw = plain.reshape(w_shape);
} catch (const dnnl::error& e) {
  fail("conv2d_backward_weights (oneDNN): ", e.what());
}

}  // namespace dearest::dnnlk
