#include "nn/loss.h"

#include "tensor/ops/elementwise.h"

#include <cmath>

namespace dearest::nn {

namespace {
Tensor reduce(const Tensor& per_element, Reduction r) {
  if (r == Reduction::None) return per_element;
  return r == Reduction::Sum ? sum(per_element) : mean(per_element);
}
void check_same(const Tensor& a, const Tensor& b, const char* op) {
  DEAREST_CHECK(a.shape() == b.shape(), op, ": input ", shape_str(a.shape()), " and target ", shape_str(b.shape()),
                " differ");
}
}  // namespace

Tensor nll_loss(const Tensor& logp, const Tensor& target, Reduction reduction, const Tensor& weight) {
  if (!weight.defined()) return dearest::nll_loss(logp, target, reduction);
  DEAREST_CHECK(weight.dim() == 1 && weight.size(0) == logp.size(1), "nll_loss: weight ", shape_str(weight.shape()),
                " for ", logp.size(1), " classes");
  Tensor picked = neg(squeeze(gather(logp, 1, target.reshape({-1, 1})), 1));  // range-checked by gather
  Tensor w = index_select(weight.to(logp.dtype()), 0, target);
  Tensor per = mul(picked, w);
  if (reduction == Reduction::Mean) return div(sum(per), sum(w));
  return reduce(per, reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  DEAREST_CHECK(opt.label_smoothing >= 0 && opt.label_smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got ",
                opt.label_smoothing);
  if (opt.label_smoothing == 0) {
    if (!opt.weight.defined()) return dearest::cross_entropy(logits, target, opt.reduction);
    return nll_loss(log_softmax(logits, 1), target, opt.reduction, opt.weight);
  }
  // PyTorch: (1 - e) * nll + e / C * sum_c w_c * (-log p_c); mean divides both by sum_i w[y_i].
  const int64_t C = logits.size(1);
  const double e = opt.label_smoothing;
  Tensor logp = log_softmax(logits, 1);
  Tensor nll = nll_loss(logp, target, Reduction::None, opt.weight);
  Tensor smooth = opt.weight.defined() ? neg(sum(mul(logp, opt.weight.to(logp.dtype())), {1})) : neg(sum(logp, {1}));
  Tensor per = add(mul(nll, 1 - e), mul(smooth, e / double(C)));
  if (opt.reduction == Reduction::Mean && opt.weight.defined())
    return div(sum(per), sum(index_select(opt.weight.to(logp.dtype()), 0, target)));
  return reduce(per, opt.reduction);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_same(input, target, "mse_loss");
  return reduce(square(sub(input, target)), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_same(input, target, "l1_loss");
  return reduce(abs(sub(input, target)), reduction);
}

Tensor binary_cross_entropy(const Tensor& prob, const Tensor& target, Reduction reduction) {
  check_same(prob, target, "binary_cross_entropy");
  // -(t log p + (1 - t) log(1 - p)), each log clamped below at -100 as PyTorch does.
  Tensor lp = clamp(log(prob), -100, INFINITY), lq = clamp(log(sub(1.0, prob)), -100, INFINITY);
  return reduce(neg(add(mul(target, lp), mul(sub(1.0, target), lq))), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& x, const Tensor& target, Reduction reduction) {
  check_same(x, target, "binary_cross_entropy_with_logits");
  // max(x, 0) - x t + log(1 + exp(-|x|)): stable for any x.
  Tensor per = add(sub(relu(x), mul(x, target)), log(add(exp(neg(abs(x))), 1.0)));
  return reduce(per, reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, KlReduction reduction, bool log_target) {
  check_same(input, target, "kl_div");
  Tensor per;
  if (log_target) {
    per = mul(exp(target), sub(target, input));
  } else {
    // t (log t - x), with 0 log 0 = 0 (PyTorch's xlogy).
    Tensor safe_t = where(gt(target, 0.0), target, Tensor::scalar(1.0, target.dtype()));
    per = sub(mul(target, log(safe_t)), mul(target, input));
  }
  switch (reduction) {
    case KlReduction::None: return per;
    case KlReduction::Sum: return sum(per);
    case KlReduction::Mean: return mean(per);
    default: return div(sum(per), double(input.size(0)));
  }
}

}  // namespace dearest::nn
