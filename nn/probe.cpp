#include "nn/probe.h"

namespace dearest::nn {

StateDict probe(Module& m, const Tensor& input, const Tensor& labels, bool train_mode,
                const std::vector<std::string>& activations) {
  m.train(train_mode);
  std::vector<std::pair<std::string, std::shared_ptr<Capture>>> caps;
  for (const auto& n : activations) caps.emplace_back(n, capture(m, n, labels.defined()));
  Tensor logits = m(input);
  StateDict out{{"logits", logits.plain()}};
  if (labels.defined()) {
    Tensor loss = cross_entropy(logits, labels);
    out.emplace_back("loss", loss.reshape({1}));
    backward(loss);
    for (auto& [n, p] : m.named_parameters())
      if (p.grad().defined()) out.emplace_back("grad." + n, p.grad());
  }
  for (auto& [n, b] : m.named_buffers()) out.emplace_back(n, b.clone());
  for (auto& [n, c] : caps) {
    out.emplace_back("act." + n, c->output.plain());
    if (c->grad.defined()) out.emplace_back("actgrad." + n, c->grad);
    m.find(n)->clear_forward_hooks();
  }
  return out;
}

}  // namespace dearest::nn
