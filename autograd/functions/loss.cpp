// Negative log-likelihood and cross-entropy: forward and backward side by side.
#include "autograd/ops.h"

namespace dearest {

Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction) {
  return record("nll_loss", raw::nll_loss(logp, target, reduction), {logp},
                [sl = SavedTensor(logp), st = SavedTensor(target), reduction](const Tensor& g) {
                  return std::vector<Tensor>{raw::nll_loss_backward(g, sl.get(), st.get(), reduction)};
                });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  DEAREST_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, C], got ", shape_str(logits.shape()));
  return nll_loss(log_softmax(logits, 1), target, reduction);
}

}  // namespace dearest
