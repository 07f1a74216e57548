#include "tensor/ops/elementwise.h"

#include <cmath>
#include <limits>

#include "tensor/kernels/dnnl/eltwise_dnnl.h"
#include "tensor/runtime.h"
#include "tensor/strided_loop.h"

namespace dearest::raw {

const char* unary_name(Unary op) {
  static const char* n[] = {"neg", "exp", "log", "sqrt", "abs", "sign", "floor", "ceil", "round_half_even",
                            "round_half_away", "sigmoid", "tanh", "relu", "square", "reciprocal"};
  return n[static_cast<int>(op)];
}
const char* binary_name(Binary op) {
  static const char* n[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
  return n[static_cast<int>(op)];
}

namespace {

// Calls g(f) with f the scalar function of `op`, a distinct lambda type per op so loops inline it.
template <typename T, typename G> void with_unary(Unary op, G&& g) {
  switch (op) {
    case Unary::Neg: return g([](T x) { return T(-x); });
    case Unary::Exp: return g([](T x) { return std::exp(x); });
    case Unary::Log: return g([](T x) { return std::log(x); });
    case Unary::Sqrt: return g([](T x) { return std::sqrt(x); });
    case Unary::Abs: return g([](T x) { return std::abs(x); });
    case Unary::Sign: return g([](T x) { return T((x > 0) - (x < 0)); });
    case Unary::Floor: return g([](T x) { return std::floor(x); });
    case Unary::Ceil: return g([](T x) { return std::ceil(x); });
    case Unary::RoundHalfEven: return g([](T x) { return std::nearbyint(x); });
    case Unary::RoundHalfAway: return g([](T x) { return std::round(x); });
    case Unary::Sigmoid: return g([](T x) { return T(1) / (T(1) + std::exp(-x)); });
    case Unary::Tanh: return g([](T x) { return std::tanh(x); });
    case Unary::Relu: return g([](T x) { return x > T(0) ? x : T(0); });
    case Unary::Square: return g([](T x) { return x * x; });
    case Unary::Reciprocal: return g([](T x) { return T(1) / x; });
  }
}

template <typename T, typename G> void with_binary(Binary op, G&& g) {
  switch (op) {
    case Binary::Add: return g([](T a, T b) { return T(a + b); });
    case Binary::Sub: return g([](T a, T b) { return T(a - b); });
    case Binary::Mul: return g([](T a, T b) { return T(a * b); });
    case Binary::Div: return g([](T a, T b) { return T(a / b); });
    case Binary::Pow: return g([](T a, T b) { return T(std::pow(a, b)); });
    case Binary::Maximum: return g([](T a, T b) { return (a != a || a > b) ? a : b; });  // NaN propagates
    case Binary::Minimum: return g([](T a, T b) { return (a != a || a < b) ? a : b; });
  }
}

template <typename T, typename G> void with_compare(Compare op, G&& g) {
  switch (op) {
    case Compare::Eq: return g([](T a, T b) { return a == b; });
    case Compare::Ne: return g([](T a, T b) { return a != b; });
    case Compare::Lt: return g([](T a, T b) { return a < b; });
    case Compare::Le: return g([](T a, T b) { return a <= b; });
    case Compare::Gt: return g([](T a, T b) { return a > b; });
    case Compare::Ge: return g([](T a, T b) { return a >= b; });
  }
}

// out[i] = f(a[i], b[i]) with broadcasting; Out may differ from In (comparisons write u8).
template <typename In, typename Out, typename F>
Tensor broadcast_map(const Tensor& a, const Tensor& b, DType out_dtype, const char* op, F f) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape, out_dtype);
  Shape sa = broadcast_strides(a.shape(), a.strides(), shape, op);
  Shape sb = broadcast_strides(b.shape(), b.strides(), shape, op);
  const In* pa = a.data<In>();
  const In* pb = b.data<In>();
  Out* po = out.data<Out>();
  strided_loop<3>(shape, {out.strides(), sa, sb}, [&](const auto& off, int64_t n, const auto& st) {
    Out* o = po + off[0];
    const In* x = pa + off[1];
    const In* y = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t j = 0; j < n; ++j) o[j] = Out(f(x[j], y[j]));
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const In yv = *y;
      for (int64_t j = 0; j < n; ++j) o[j] = Out(f(x[j], yv));
    } else {
      for (int64_t j = 0; j < n; ++j) o[j] = Out(f(x[j * st[1]], y[j * st[2]]));
    }
  });
  return out;
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  DEAREST_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.describe(), " and ", b.describe());
}

void check_floating(const Tensor& x, const char* op) {
  DEAREST_CHECK(is_floating(x.dtype()), op, ": needs a floating tensor, got ", x.describe());
}

bool unary_allows_int(Unary op) {
  return op == Unary::Neg || op == Unary::Abs || op == Unary::Sign || op == Unary::Relu || op == Unary::Square;
}

}  // namespace

Tensor unary(Unary op, const Tensor& x_in) {
  if (backend() == Backend::Fast && x_in.dtype() == DType::F32 && dnnlk::eltwise_supported(op) && x_in.dim() > 0 &&
      x_in.numel() > 0 && (x_in.is_blocked() || x_in.is_contiguous()))
    return dnnlk::eltwise_forward(op, x_in);
  Tensor x = x_in.plain();
  const char* name = unary_name(op);
  if (!unary_allows_int(op)) check_floating(x, name);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    with_unary<T>(op, [&](auto f) {
      strided_loop<2>(x.shape(), {out.strides(), x.strides()}, [&](const auto& off, int64_t n, const auto& st) {
        for (int64_t j = 0; j < n; ++j) po[off[0] + j * st[0]] = f(px[off[1] + j * st[1]]);
      });
    });
  });
  return out;
}

Tensor binary(Binary op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = binary_name(op);
  check_same_dtype(a_in, b_in, name);
  if (backend() == Backend::Fast && a_in.dtype() == DType::F32 && op != Binary::Pow &&
      (a_in.is_blocked() || b_in.is_blocked()) && a_in.shape() == b_in.shape() && a_in.numel() > 0)
    return dnnlk::binary_forward(op, a_in, b_in);
  Tensor a = a_in.plain(), b = b_in.plain();
  DEAREST_CHECK(op != Binary::Div || is_floating(a.dtype()), "div: integer tensors ", a.describe(), " and ",
                b.describe(), "; convert with to(f32) first");
  DEAREST_CHECK(op != Binary::Pow || is_floating(a.dtype()), "pow: needs floating tensors, got ", a.describe());
  Tensor out;
  dispatch_dtype(a.dtype(), [&](auto z) {
    using T = decltype(z);
    with_binary<T>(op, [&](auto f) { out = broadcast_map<T, T>(a, b, a.dtype(), name, f); });
  });
  return out;
}

Tensor binary(Binary op, const Tensor& a, double b) { return binary(op, a, Tensor::scalar(b, a.dtype())); }
Tensor binary(Binary op, double a, const Tensor& b) { return binary(op, Tensor::scalar(a, b.dtype()), b); }

Tensor compare(Compare op, const Tensor& a_in, const Tensor& b_in) {
  check_same_dtype(a_in, b_in, "compare");
  Tensor a = a_in.plain(), b = b_in.plain();
  Tensor out;
  dispatch_dtype(a.dtype(), [&](auto z) {
    using T = decltype(z);
    with_compare<T>(op, [&](auto f) { out = broadcast_map<T, uint8_t>(a, b, DType::U8, "compare", f); });
  });
  return out;
}

Tensor compare(Compare op, const Tensor& a, double b) { return compare(op, a, Tensor::scalar(b, a.dtype())); }

Tensor clamp(const Tensor& x_in, double lo, double hi) {
  DEAREST_CHECK(!(lo > hi), "clamp: lower bound ", lo, " above upper bound ", hi);
  Tensor x = x_in.plain();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    // Bounds beyond the type's range do not clamp (an i8 tensor clamped to [-1e9, 1e9] is unchanged).
    const bool has_lo = lo > -std::numeric_limits<double>::infinity() && lo > double(std::numeric_limits<T>::lowest());
    const bool has_hi = hi < std::numeric_limits<double>::infinity() && hi < double(std::numeric_limits<T>::max());
    const T l = has_lo ? T(lo) : std::numeric_limits<T>::lowest(), h = has_hi ? T(hi) : std::numeric_limits<T>::max();
    const T* px = x.data<T>();
    T* po = out.data<T>();
    strided_loop<2>(x.shape(), {out.strides(), x.strides()}, [&](const auto& off, int64_t n, const auto& st) {
      for (int64_t j = 0; j < n; ++j) {
        T v = px[off[1] + j * st[1]];
        po[off[0] + j * st[0]] = v < l ? l : (v > h ? h : v);  // NaN stays NaN
      }
    });
  });
  return out;
}

Tensor where(const Tensor& cond_in, const Tensor& a_in, const Tensor& b_in) {
  DEAREST_CHECK(cond_in.dtype() == DType::U8, "where: condition must be u8, got ", cond_in.describe());
  check_same_dtype(a_in, b_in, "where");
  Tensor c = cond_in.plain(), a = a_in.plain(), b = b_in.plain();
  Shape shape = broadcast_shapes(broadcast_shapes(c.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype());
  Shape sc = broadcast_strides(c.shape(), c.strides(), shape, "where");
  Shape sa = broadcast_strides(a.shape(), a.strides(), shape, "where");
  Shape sb = broadcast_strides(b.shape(), b.strides(), shape, "where");
  dispatch_dtype(a.dtype(), [&](auto z) {
    using T = decltype(z);
    const uint8_t* pc = c.data<uint8_t>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    strided_loop<4>(shape, {out.strides(), sc, sa, sb}, [&](const auto& off, int64_t n, const auto& st) {
      for (int64_t j = 0; j < n; ++j)
        po[off[0] + j * st[0]] = pc[off[1] + j * st[1]] ? pa[off[2] + j * st[2]] : pb[off[3] + j * st[3]];
    });
  });
  return out;
}

Tensor logical_not(const Tensor& cond) {
  DEAREST_CHECK(cond.dtype() == DType::U8, "logical_not: needs u8, got ", cond.describe());
  return compare(Compare::Eq, cond, 0.0);
}

namespace {
template <typename G> Tensor fused_backward(const Tensor& gy_in, const Tensor& y_in, const char* name, G g) {
  Tensor gy = gy_in.plain(), y = y_in.plain();
  check_same_dtype(gy, y, name);
  check_floating(y, name);
  DEAREST_CHECK(gy.shape() == y.shape(), name, ": gradient shape ", shape_str(gy.shape()), " differs from ",
                shape_str(y.shape()));
  Tensor out;
  dispatch_dtype(y.dtype(), [&](auto z) {
    using T = decltype(z);
    out = broadcast_map<T, T>(gy, y, y.dtype(), name, [&](T a, T b) { return g(a, b); });
  });
  return out;
}
}  // namespace

Tensor relu_backward(const Tensor& gy, const Tensor& y) {
  if (backend() == Backend::Fast && y.dtype() == DType::F32 && gy.dtype() == DType::F32 && y.dim() > 0 &&
      y.numel() > 0 && (y.is_blocked() || y.is_contiguous()))
    return dnnlk::relu_backward(gy, y);
  return fused_backward(gy, y, "relu_backward", [](auto g, auto v) { return v > 0 ? g : decltype(g)(0); });
}

Tensor sigmoid_backward(const Tensor& gy, const Tensor& y) {
  return fused_backward(gy, y, "sigmoid_backward", [](auto g, auto v) { return g * v * (decltype(v)(1) - v); });
}

Tensor tanh_backward(const Tensor& gy, const Tensor& y) {
  return fused_backward(gy, y, "tanh_backward", [](auto g, auto v) { return g * (decltype(v)(1) - v * v); });
}

void add_(Tensor& a, const Tensor& b_in) {
  DEAREST_CHECK(!a.is_blocked(), "add_: destination is blocked");
  check_same_dtype(a, b_in, "add_");
  Tensor b = b_in.plain();
  Shape sb = broadcast_strides(b.shape(), b.strides(), a.shape(), "add_");
  dispatch_dtype(a.dtype(), [&](auto z) {
    using T = decltype(z);
    T* pa = a.data<T>();
    const T* pb = b.data<T>();
    strided_loop<2>(a.shape(), {a.strides(), sb}, [&](const auto& off, int64_t n, const auto& st) {
      for (int64_t j = 0; j < n; ++j) pa[off[0] + j * st[0]] += pb[off[1] + j * st[1]];
    });
  });
  a.bump_version();
}

}  // namespace dearest::raw
