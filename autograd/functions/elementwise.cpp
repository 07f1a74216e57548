// Element-wise ops: forward (raw kernel) and backward, side by side. Broadcast inputs get their
// gradient summed back to their own shape (raw::sum_to).
#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"

namespace dearest {

namespace {
using raw::Binary;
using raw::Compare;
using raw::Unary;

bool wants(const Tensor& t) { return t.defined() && t.requires_grad(); }

Tensor scalar_like(double v, const Tensor& t) { return Tensor::scalar(v, t.dtype()); }
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  // Same-shape gradients pass through untouched (a blocked residual gradient stays blocked).
  return record("add", raw::binary(Binary::Add, a, b), {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{raw::sum_to(g, sa), raw::sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return record("sub", raw::binary(Binary::Sub, a, b), {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{raw::sum_to(g, sa), raw::sum_to(raw::unary(Unary::Neg, g), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  const bool ga = wants(a), gb = wants(b);
  return record("mul", raw::binary(Binary::Mul, a, b), {a, b},
                [sa = SavedTensor(gb ? a : Tensor()), sb = SavedTensor(ga ? b : Tensor()), ga, gb, ash = a.shape(),
                 bsh = b.shape()](const Tensor& g) {
                  Tensor gx, gy;
                  if (ga) gx = raw::sum_to(raw::binary(Binary::Mul, g, sb.get()), ash);
                  if (gb) gy = raw::sum_to(raw::binary(Binary::Mul, g, sa.get()), bsh);
                  return std::vector<Tensor>{gx, gy};
                });
}

Tensor div(const Tensor& a, const Tensor& b) {
  const bool ga = wants(a), gb = wants(b);
  Tensor out = raw::binary(Binary::Div, a, b);
  return record("div", out, {a, b},
                [sb = SavedTensor(b), so = SavedTensor(gb ? out : Tensor()), ga, gb, ash = a.shape(),
                 bsh = b.shape()](const Tensor& g) {
                  Tensor gx, gy;
                  Tensor gb_ = raw::binary(Binary::Div, g, sb.get());  // g / b
                  if (ga) gx = raw::sum_to(gb_, ash);
                  // d(a/b)/db = -(a/b)/b
                  if (gb) gy = raw::sum_to(raw::unary(Unary::Neg, raw::binary(Binary::Mul, gb_, so.get())), bsh);
                  return std::vector<Tensor>{gx, gy};
                });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  const bool ga = wants(a), gb = wants(b);
  Tensor out = raw::binary(Binary::Pow, a, b);
  return record("pow", out, {a, b},
                [sa = SavedTensor(a), sb = SavedTensor(b), so = SavedTensor(out), ga, gb, ash = a.shape(),
                 bsh = b.shape()](const Tensor& g) {
                  Tensor gx, gy;
                  if (ga) {  // b * a^(b-1)
                    Tensor d = raw::binary(Binary::Mul, sb.get(),
                                           raw::binary(Binary::Pow, sa.get(), raw::binary(Binary::Sub, sb.get(), 1.0)));
                    gx = raw::sum_to(raw::binary(Binary::Mul, g, d), ash);
                  }
                  if (gb) {  // a^b * log(a)
                    Tensor d = raw::binary(Binary::Mul, so.get(), raw::unary(Unary::Log, sa.get()));
                    gy = raw::sum_to(raw::binary(Binary::Mul, g, d), bsh);
                  }
                  return std::vector<Tensor>{gx, gy};
                });
}

namespace {
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = raw::binary(is_max ? Binary::Maximum : Binary::Minimum, a, b);
  return record(is_max ? "maximum" : "minimum", out, {a, b},
                [sa = SavedTensor(a), sb = SavedTensor(b), is_max, ash = a.shape(), bsh = b.shape()](const Tensor& g) {
                  // a wins ties: mask_a = a >= b (max) or a <= b (min)
                  Tensor ma = raw::compare(is_max ? Compare::Ge : Compare::Le, sa.get(), sb.get());
                  Tensor gp = g.plain();
                  Tensor zero = scalar_like(0, gp);
                  return std::vector<Tensor>{raw::sum_to(raw::where(ma, gp, zero), ash),
                                             raw::sum_to(raw::where(ma, zero, gp), bsh)};
                });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false); }

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor sub(double a, const Tensor& b) { return sub(scalar_like(a, b), b); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor div(double a, const Tensor& b) { return div(scalar_like(a, b), b); }

Tensor pow(const Tensor& a, double e) {
  return record("pow", raw::binary(Binary::Pow, a, e), {a}, [sa = SavedTensor(a), e](const Tensor& g) {
    Tensor d = raw::binary(Binary::Mul, raw::binary(Binary::Pow, sa.get(), e - 1), e);
    return std::vector<Tensor>{raw::binary(Binary::Mul, g, d)};
  });
}

Tensor neg(const Tensor& x) {
  return record("neg", raw::unary(Unary::Neg, x), {x},
                [](const Tensor& g) { return std::vector<Tensor>{raw::unary(Unary::Neg, g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor y = raw::unary(Unary::Exp, x);
  return record("exp", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
    return std::vector<Tensor>{raw::binary(Binary::Mul, g, sy.get())};
  });
}

Tensor log(const Tensor& x) {
  return record("log", raw::unary(Unary::Log, x), {x}, [sx = SavedTensor(x)](const Tensor& g) {
    return std::vector<Tensor>{raw::binary(Binary::Div, g, sx.get())};
  });
}

Tensor sqrt(const Tensor& x) {
  Tensor y = raw::unary(Unary::Sqrt, x);
  return record("sqrt", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
    return std::vector<Tensor>{raw::binary(Binary::Div, raw::binary(Binary::Mul, g, 0.5), sy.get())};
  });
}

Tensor abs(const Tensor& x) {
  return record("abs", raw::unary(Unary::Abs, x), {x}, [sx = SavedTensor(x)](const Tensor& g) {
    return std::vector<Tensor>{raw::binary(Binary::Mul, g, raw::unary(Unary::Sign, sx.get()))};
  });
}

Tensor square(const Tensor& x) {
  return record("square", raw::unary(Unary::Square, x), {x}, [sx = SavedTensor(x)](const Tensor& g) {
    return std::vector<Tensor>{raw::binary(Binary::Mul, g, raw::binary(Binary::Mul, sx.get(), 2.0))};
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = raw::unary(Unary::Sigmoid, x);
  return record("sigmoid", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
    return std::vector<Tensor>{raw::sigmoid_backward(g, sy.get())};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor y = raw::unary(Unary::Tanh, x);
  return record("tanh", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
    return std::vector<Tensor>{raw::tanh_backward(g, sy.get())};
  });
}

Tensor relu(const Tensor& x) {
  Tensor y = raw::unary(Unary::Relu, x);
  return record("relu", y, {x}, [sy = SavedTensor(y)](const Tensor& g) {
    return std::vector<Tensor>{raw::relu_backward(g, sy.get())};
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  return record("clamp", raw::clamp(x, lo, hi), {x}, [sx = SavedTensor(x), lo, hi](const Tensor& g) {
    Tensor v = sx.get();
    Tensor inside = raw::binary(Binary::Mul, raw::compare(Compare::Ge, v, lo), raw::compare(Compare::Le, v, hi));
    return std::vector<Tensor>{raw::where(inside, g.plain(), scalar_like(0, v))};
  });
}

namespace {
Tensor piecewise_constant(const char* name, Unary op, const Tensor& x) {
  return record(name, raw::unary(op, x), {x}, [shape = x.shape(), dt = x.dtype()](const Tensor&) {
    return std::vector<Tensor>{Tensor::zeros(shape, dt)};
  });
}
}  // namespace

Tensor sign(const Tensor& x) { return piecewise_constant("sign", Unary::Sign, x); }
Tensor floor(const Tensor& x) { return piecewise_constant("floor", Unary::Floor, x); }
Tensor ceil(const Tensor& x) { return piecewise_constant("ceil", Unary::Ceil, x); }
Tensor round_half_even(const Tensor& x) { return piecewise_constant("round_half_even", Unary::RoundHalfEven, x); }
Tensor round_half_away(const Tensor& x) { return piecewise_constant("round_half_away", Unary::RoundHalfAway, x); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  return record("where", raw::where(cond, a, b), {a, b},
                [sc = SavedTensor(cond), ash = a.shape(), bsh = b.shape()](const Tensor& g) {
                  Tensor gp = g.plain(), zero = scalar_like(0, gp);
                  return std::vector<Tensor>{raw::sum_to(raw::where(sc.get(), gp, zero), ash),
                                             raw::sum_to(raw::where(sc.get(), zero, gp), bsh)};
                });
}

Tensor eq(const Tensor& a, const Tensor& b) { return raw::compare(Compare::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return raw::compare(Compare::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return raw::compare(Compare::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return raw::compare(Compare::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return raw::compare(Compare::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return raw::compare(Compare::Ge, a, b); }
Tensor gt(const Tensor& a, double b) { return raw::compare(Compare::Gt, a, b); }
Tensor lt(const Tensor& a, double b) { return raw::compare(Compare::Lt, a, b); }

}  // namespace dearest
