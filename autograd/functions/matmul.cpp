// Matrix products: forward and backward side by side (dA = dC B^T, dB = A^T dC).
#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/reduce.h"

namespace dearest {

Tensor matmul(const Tensor& a, const Tensor& b) {
  DEAREST_CHECK((a.dim() >= 2 && b.dim() >= 2) || !any_requires_grad({a, b}),
                "matmul: gradients are implemented for operands of at least 2 dims, got ", a.describe(), " @ ",
                b.describe());
  return record("matmul", raw::matmul(a, b), {a, b}, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g) {
    const Tensor& av = sa.get();
    const Tensor& bv = sb.get();
    Tensor ga = raw::sum_to(raw::matmul(g, bv.transpose(-1, -2)), av.shape());
    Tensor gb = raw::sum_to(raw::matmul(av.transpose(-1, -2), g), bv.shape());
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  return record("linear", raw::linear(x, w, bias), {x, w, bias},
                [sx = SavedTensor(x), sw = SavedTensor(w), has_bias = bias.defined()](const Tensor& g) {
                  const Tensor& xv = sx.get();
                  const Tensor& wv = sw.get();
                  Tensor g2 = g.plain().reshape({-1, wv.size(0)});
                  Tensor x2 = xv.reshape({-1, wv.size(1)});
                  Tensor gx = raw::matmul(g2, wv).reshape(xv.shape());
                  Tensor gw = raw::matmul(g2.transpose(0, 1), x2);
                  Tensor gb = has_bias ? raw::sum(g2, {0}) : Tensor();
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

}  // namespace dearest
