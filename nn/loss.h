// Losses with PyTorch's semantics (torch.nn.functional), built from differentiable ops.
#pragma once
#include "autograd/ops.h"

namespace dearest::nn {

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  Tensor weight;               // per-class weights [C] (mean divides by the sum of the targets' weights)
  double label_smoothing = 0;  // mixes the target with the uniform distribution over C classes
};
// logits [N, C], target i32 [N].
// (For plain cross-entropy use dearest::cross_entropy; the options argument is required here so the two never
// compete for a two-argument call.)
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt);
// log-probabilities [N, C], target i32 [N], optional class weights.
Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction = Reduction::Mean,
                const Tensor& weight = Tensor());
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// Binary cross-entropy on probabilities in (0, 1) (log clamped at -100 as PyTorch), and on logits.
Tensor binary_cross_entropy(const Tensor& prob, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
// KL(target || input) with `input` log-probabilities: sum target * (log target - input).
// batchmean divides the sum by N (what the math means); mean divides by the element count.
enum class KlReduction { None, BatchMean, Sum, Mean };
Tensor kl_div(const Tensor& input, const Tensor& target, KlReduction reduction = KlReduction::BatchMean,
              bool log_target = false);

}  // namespace dearest::nn
