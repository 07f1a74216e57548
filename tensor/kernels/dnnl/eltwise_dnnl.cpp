#include "tensor/kernels/dnnl/eltwise_dnnl.h"

#include "tensor/kernels/dnnl/dnnl_context.h"

namespace dearest::dnnlk {

namespace {

dnnl::algorithm eltwise_alg(raw::Unary op) {
  using A = dnnl::algorithm;
  switch (op) {
    case raw::Unary::Neg: return A::eltwise_linear;  // alpha = -1, beta = 0: exact
    case raw::Unary::Exp: return A::eltwise_exp;
    case raw::Unary::Log: return A::eltwise_log;
    case raw::Unary::Sqrt: return A::eltwise_sqrt;
    case raw::Unary::Abs: return A::eltwise_abs;
    case raw::Unary::Sigmoid: return A::eltwise_logistic;
    case raw::Unary::Tanh: return A::eltwise_tanh;
    case raw::Unary::Relu: return A::eltwise_relu_use_dst_for_bwd;  // backward needs only dst
    case raw::Unary::Square: return A::eltwise_square;
    default: return A::undef;
  }
}

dnnl::algorithm binary_alg(raw::Binary op) {
  using A = dnnl::algorithm;
  switch (op) {
    case raw::Binary::Add: return A::binary_add;
    case raw::Binary::Sub: return A::binary_sub;
    case raw::Binary::Mul: return A::binary_mul;
    case raw::Binary::Div: return A::binary_div;
    case raw::Binary::Maximum: return A::binary_max;
    case raw::Binary::Minimum: return A::binary_min;
    default: fail("binary: ", raw::binary_name(op), " has no oneDNN primitive");
  }
}

// A blocked tensor as is; a plain one made contiguous (oneDNN is given dense row-major bytes).
Tensor dense(const Tensor& t) { return t.is_blocked() ? t : t.contiguous(); }

struct EltwiseFwd {
  dnnl::eltwise_forward::primitive_desc pd;
  dnnl::eltwise_forward prim;
};
struct EltwiseBwd {
  dnnl::eltwise_backward::primitive_desc pd;
  dnnl::eltwise_backward prim;
};
struct BinaryEntry {
  dnnl::binary::primitive_desc pd;
  dnnl::binary prim;
};

EltwiseFwd& eltwise_fwd_entry(dnnl::algorithm alg, const dnnl::memory::desc& md) {
  static PrimitiveCache<EltwiseFwd> cache;
  const float alpha = alg == dnnl::algorithm::eltwise_linear ? -1.f : 0.f;
  return cache.get(std::to_string(int(alg)) + "|" + key_of(md), [&] {
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_training, alg, md, alpha, 0.f);
    dnnl::eltwise_forward::primitive_desc pd(d, default_attr(), engine());
    return EltwiseFwd{pd, dnnl::eltwise_forward(pd)};
  });
}

}  // namespace

bool eltwise_supported(raw::Unary op) { return eltwise_alg(op) != dnnl::algorithm::undef; }

Tensor eltwise_forward(raw::Unary op, const Tensor& x_in) try {
  Tensor x = dense(x_in);
  dnnl::memory::desc md = desc_of(x);
  EltwiseFwd& e = eltwise_fwd_entry(eltwise_alg(op), md);
  Tensor y = make_tensor(md, x.shape(), DType::F32);
  execute(e.prim, {{DNNL_ARG_SRC, memory_of(x)},
                   {DNNL_ARG_DST, memory_of(y, md)},
                   {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.pd.scratchpad_desc())}});
  return finish(y);
} catch (const dnnl::error& e) {
  fail("eltwise_forward (oneDNN): ", e.what());
}

Tensor relu_backward(const Tensor& gy_in, const Tensor& y_in) try {
  Tensor y = dense(y_in);
  DEAREST_CHECK(gy_in.shape() == y.shape(), "relu_backward: gradient shape ", shape_str(gy_in.shape()),
                " differs from ", shape_str(y.shape()));
  dnnl::memory::desc md = desc_of(y);
  Tensor gy = reorder_to(dense(gy_in), md);
  static PrimitiveCache<EltwiseBwd> cache;
  EltwiseBwd& e = cache.get(key_of(md), [&] {
    auto& fwd = eltwise_fwd_entry(dnnl::algorithm::eltwise_relu_use_dst_for_bwd, md);
    dnnl::eltwise_backward::desc d(dnnl::algorithm::eltwise_relu_use_dst_for_bwd, md, md, 0.f, 0.f);
    dnnl::eltwise_backward::primitive_desc pd(d, default_attr(), engine(), fwd.pd);
    return EltwiseBwd{pd, dnnl::eltwise_backward(pd)};
  });
  Tensor gx = make_tensor(md, y.shape(), DType::F32);
  execute(e.prim, {{DNNL_ARG_DST, memory_of(y)},
                   {DNNL_ARG_DIFF_DST, memory_of(gy, md)},
                   {DNNL_ARG_DIFF_SRC, memory_of(gx, md)},
                   {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.pd.scratchpad_desc())}});
  return finish(gx);
} catch (const dnnl::error& e) {
  fail("relu_backward (oneDNN): ", e.what());
}

Tensor binary_forward(raw::Binary op, const Tensor& a_in, const Tensor& b_in) try {
  DEAREST_CHECK(a_in.shape() == b_in.shape(), raw::binary_name(op), ": shapes ", shape_str(a_in.shape()), " and ",
                shape_str(b_in.shape()), " differ");
  Tensor a = dense(a_in);
  dnnl::memory::desc md = desc_of(a);
  Tensor b = reorder_to(dense(b_in), md);  // both operands in one layout: the fast path
  static PrimitiveCache<BinaryEntry> cache;
  dnnl::algorithm alg = binary_alg(op);
  BinaryEntry& e = cache.get(std::to_string(int(alg)) + "|" + key_of(md), [&] {
    dnnl::binary::desc d(alg, md, md, md);
    dnnl::binary::primitive_desc pd(d, default_attr(), engine());
    return BinaryEntry{pd, dnnl::binary(pd)};
  });
  Tensor out = make_tensor(md, a.shape(), DType::F32);
  execute(e.prim, {{DNNL_ARG_SRC_0, memory_of(a)},
                   {DNNL_ARG_SRC_1, memory_of(b, md)},
                   {DNNL_ARG_DST, memory_of(out, md)},
                   {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.pd.scratchpad_desc())}});
  return finish(out);
} catch (const dnnl::error& e) {
  fail("binary_forward (oneDNN): ", e.what());
}

}  // namespace dearest::dnnlk
