// Pooling: forward and backward side by side. Max-pool routes each output's gradient to the input
// it took (oneDNN's workspace or the reference's argmax); average pools spread it over the window.
#include "autograd/ops.h"
#include "tensor/ops/pool.h"

namespace dearest {

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  raw::MaxPoolResult r = raw::max_pool2d(x, p);
  return record("max_pool2d", r.y, {x}, [sx = SavedTensor(x), idx = r.indices, p](const Tensor& g) {
    return std::vector<Tensor>{raw::max_pool2d_backward(g, sx.get(), idx, p)};
  });
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  return record("avg_pool2d", raw::avg_pool2d(x, p), {x}, [sx = SavedTensor(x), p](const Tensor& g) {
    return std::vector<Tensor>{raw::avg_pool2d_backward(g, sx.get(), p)};
  });
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  return record("adaptive_avg_pool2d", raw::adaptive_avg_pool2d(x, out_h, out_w), {x},
                [sx = SavedTensor(x)](const Tensor& g) {
                  return std::vector<Tensor>{raw::adaptive_avg_pool2d_backward(g, sx.get())};
                });
}

}  // namespace dearest
