// Softmax, log-softmax and the losses built on them: forward and backward side by side.
#include "autograd/ops.h"
#include "tensor/ops/softmax.h"

namespace dearest {

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor y = raw::softmax(x, dim);
  return record("softmax", y, {x}, [sy = SavedTensor(y), dim](const Tensor& g) {
    return std::vector<Tensor>{raw::softmax_backward(sy.get(), g.plain(), dim, false)};
  });
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor y = raw::log_softmax(x, dim);
  return record("log_softmax", y, {x}, [sy = SavedTensor(y), dim](const Tensor& g) {
    return std::vector<Tensor>{raw::softmax_backward(sy.get(), g.plain(), dim, true)};
  });
}

}  // namespace dearest
