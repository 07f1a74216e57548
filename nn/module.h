// Module: a layer or a network, with named parameters and buffers and ordered children, as
// torch.nn.Module: state-dict names are the dotted paths PyTorch and torchvision use
// ("layer1.0.conv1.weight", "bn1.running_var"), so weights travel between the two.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace dearest::nn {

using StateDict = std::vector<std::pair<std::string, Tensor>>;

struct LoadReport {
  std::vector<std::string> missing;      // in the module, not in the state dict
  std::vector<std::string> unexpected;   // in the state dict, not in the module
  std::vector<std::string> mismatched;   // "name: file [..] vs module [..]"
  std::vector<std::string> renamed;      // aliases applied, "from -> to"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

class Module {
 public:
  explicit Module(std::string type) : type_(std::move(type)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  // forward, then the forward hooks of this module.
  Tensor operator()(const Tensor& x);

  const std::string& type() const { return type_; }
  bool is_training() const { return training_; }
  void train(bool on = true);  // recursively
  void eval() { train(false); }

  // Traversal in registration order, depth first, with dotted names.
  StateDict named_parameters(bool trainable_only = false) const;
  StateDict named_buffers() const;
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
  std::vector<Tensor> parameters(bool trainable_only = true) const;
  Module* find(const std::string& name);  // a descendant by dotted name; nullptr if none
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  // Parameters then buffers of each module, parents before children: torch's state_dict order.
  StateDict state_dict() const;
  // Copies values in (dtype converted). Aliases from other code bases are applied first
  // (`aliases` maps a name prefix or infix to ours). strict: anything missing, unexpected or of the
  // wrong shape raises with the full report; otherwise what matches is loaded and the rest reported.
  LoadReport load_state_dict(const StateDict& sd, bool strict = true,
                             const std::vector<std::pair<std::string, std::string>>& aliases = {});

  // Freezing: requires_grad off for the parameters under `prefix` ("" = all).
  void set_trainable(bool on, const std::string& prefix = "");
  // Converts every floating parameter and buffer (e.g. to f64 for gradient checks).
  void to(DType dtype);

  // Transforms of the input (before forward) and of the output (after forward, before the hooks):
  // where quantization inserts its activation fake-quantizers without touching the model code.
  using TensorTransform = std::function<Tensor(const Tensor&)>;
  void set_input_transform(TensorTransform t) { input_tf_ = std::move(t); }
  void set_output_transform(TensorTransform t) { output_tf_ = std::move(t); }
  bool has_input_transform() const { return bool(input_tf_); }
  const TensorTransform& input_transform() const { return input_tf_; }
  bool has_output_transform() const { return bool(output_tf_); }
  // Removes input/output transforms of this module and all below it.
  void clear_transforms();

  using ForwardHook = std::function<void(Module& m, const Tensor& output)>;
  void add_forward_hook(ForwardHook hook) { hooks_.push_back(std::move(hook)); }
  void clear_forward_hooks() { hooks_.clear(); }
  bool has_forward_hooks() const { return !hooks_.empty(); }

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <typename M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  Tensor& param(const std::string& name);
  Tensor& buffer(const std::string& name);

 private:
  void collect(const std::string& prefix, StateDict& out, bool params, bool buffers, bool trainable_only) const;
  std::string type_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<ForwardHook> hooks_;
  TensorTransform input_tf_, output_tf_;
};

using ModulePtr = std::shared_ptr<Module>;

// Keeps the output (and, after backward, its gradient) of a named module: the intermediate
// features defenses and attacks look at. Remove with model.find(name)->clear_forward_hooks().
struct Capture {
  Tensor output, grad;
};
std::shared_ptr<Capture> capture(Module& model, const std::string& name, bool with_grad = false);

}  // namespace dearest::nn
