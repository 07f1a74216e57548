// Element-wise ops with NumPy broadcasting, no autograd (the differentiable versions are in
// autograd/functions/elementwise.cpp). Floating kernels run in f32 or f64; the fast backend hands
// f32 transcendental ops and ops on oneDNN-blocked tensors to oneDNN's eltwise/binary primitives,
// everything else runs the strided reference loops.
#pragma once
#include "tensor/tensor.h"

namespace dearest::raw {

enum class Unary {
  Neg, Exp, Log, Sqrt, Abs, Sign, Floor, Ceil,
  RoundHalfEven,  // nearbyint: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (torch.round, numpy.round)
  RoundHalfAway,  // std::round: 0.5 -> 1, 2.5 -> 3, -0.5 -> -1 (C round)
  Sigmoid, Tanh, Relu, Square, Reciprocal
};
enum class Binary { Add, Sub, Mul, Div, Pow, Maximum, Minimum };
enum class Compare { Eq, Ne, Lt, Le, Gt, Ge };

const char* unary_name(Unary op);
const char* binary_name(Binary op);

Tensor unary(Unary op, const Tensor& x);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);
Tensor binary(Binary op, const Tensor& a, double b);  // tensor (op) scalar
Tensor binary(Binary op, double a, const Tensor& b);  // scalar (op) tensor
Tensor compare(Compare op, const Tensor& a, const Tensor& b);  // u8 0/1
Tensor compare(Compare op, const Tensor& a, double b);
Tensor clamp(const Tensor& x, double lo, double hi);  // use +-infinity for a one-sided clamp
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond: u8 (non-zero = a)
Tensor logical_not(const Tensor& cond);  // u8

// Fused backward helpers: gx = gy * f'(.) written with the saved forward output y.
Tensor relu_backward(const Tensor& gy, const Tensor& y);     // gy * (y > 0)
Tensor sigmoid_backward(const Tensor& gy, const Tensor& y);  // gy * y * (1 - y)
Tensor tanh_backward(const Tensor& gy, const Tensor& y);     // gy * (1 - y^2)

// a += b in place (same shape, b may broadcast); used to accumulate gradients.
void add_(Tensor& a, const Tensor& b);

}  // namespace dearest::raw
