// Batch norm: forward and backward side by side. Training differentiates through the batch
// statistics; inference treats the running statistics as constants.
#include "autograd/ops.h"
#include "tensor/ops/batchnorm.h"

namespace dearest {

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps, bool relu) {
  raw::BatchNormResult r = raw::batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, relu);
  // Saved: x, the statistics used, the ReLU mask (oneDNN workspace, or the output for the reference).
  raw::BatchNormResult saved{relu && !r.workspace.defined() ? r.y.detach() : Tensor(), r.mean.clone(), r.var.clone(),
                             r.workspace};
  return record("batch_norm", r.y, {x, weight, bias},
                [sx = SavedTensor(x), sw = SavedTensor(weight), sb = SavedTensor(bias), saved, training, eps,
                 relu](const Tensor& g) {
                  raw::BatchNormGrads gr =
                      raw::batch_norm_backward(g, sx.get(), sw.get(), sb.get(), saved, training, eps, relu);
                  return std::vector<Tensor>{gr.x, gr.gamma, gr.beta};
                });
}

}  // namespace dearest
