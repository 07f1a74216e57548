// conv2d: forward and backward side by side. dX is the backward-data convolution with the same
// weights, dW the backward-weights convolution of dY with X, db the sum of dY over N, H, W.
#include "autograd/ops.h"
#include "tensor/ops/conv.h"

namespace dearest {

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const bool gx = x.requires_grad(), gw = w.requires_grad() || (bias.defined() && bias.requires_grad());
  return record("conv2d", raw::conv2d(x, w, bias, p), {x, w, bias},
                [sx = SavedTensor(gw ? x : Tensor()), sw = SavedTensor(gx ? w : Tensor()), xs = x.shape(),
                 ws = w.shape(), has_bias = bias.defined(), gx, gw, p](const Tensor& g) {
                  Tensor dx, dw, db;
                  if (gx) dx = raw::conv2d_backward_data(g, sw.get(), xs, has_bias, p);
                  if (gw) {
                    raw::ConvWeightGrads r = raw::conv2d_backward_weights(g, sx.get(), ws, has_bias, p);
                    dw = r.w;
                    db = r.bias;
                  }
                  return std::vector<Tensor>{dx, dw, db};
                });
}

}  // namespace dearest
