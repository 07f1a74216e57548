// Optimizers with torch.optim's semantics, each step a fused loop per parameter:
//   SGD:   d = g + wd p;  buf = d (first step) or momentum buf + (1 - dampening) d;
//          d = nesterov ? d + momentum buf : buf;  p -= lr d
//   Adam:  g += wd p (Adam) or p *= 1 - lr wd (AdamW);  m = b1 m + (1 - b1) g;
//          v = b2 v + (1 - b2) g^2;  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Parameters without a gradient (frozen, or unused by the loss) are skipped, as in PyTorch.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "nn/module.h"

namespace dearest::nn {

class Optimizer {
 public:
  explicit Optimizer(StateDict params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();  // drops the gradients (the next backward starts from none)
  double lr = 0;
  // Everything needed to continue exactly: buffers by "<param>.<name>", and the step count.
  virtual StateDict state() const = 0;
  virtual void load_state(const StateDict& s) = 0;
  const StateDict& params() const { return params_; }

 protected:
  // f(k, param, contiguous gradient) for each parameter that has a gradient, checked.
  void each_with_grad(const std::function<void(size_t, Tensor&, const Tensor&)>& f);
  StateDict params_;
};

struct SgdOptions {
  double lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(StateDict params, SgdOptions opt);
  void step() override;
  StateDict state() const override;
  void load_state(const StateDict& s) override;
  SgdOptions opt;

 private:
  std::vector<Tensor> buf_;  // momentum buffers, undefined until first used
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;  // AdamW
};
class Adam : public Optimizer {
 public:
  Adam(StateDict params, AdamOptions opt);
  void step() override;
  StateDict state() const override;
  void load_state(const StateDict& s) override;
  AdamOptions opt;

 private:
  std::vector<Tensor> m_, v_;
  std::vector<int64_t> t_;  // per-parameter step counts (a frozen parameter does not advance)
};

// "sgd", "adam" or "adamw" over the model's trainable parameters; `what` names the option in errors.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, Module& model, double lr, double momentum, double wd,
                                          bool nesterov = false, const std::string& what = "optimizer");

}  // namespace dearest::nn
