// One audited step of a model on a batch: logits, mean cross-entropy loss and every parameter's
// gradient (when labels are given), every buffer after the step, and the outputs (and their
// gradients) of named modules. What `dearest probe` writes.
#pragma once
#include <string>
#include <vector>

#include "nn/module.h"

namespace dearest::nn {

StateDict probe(Module& model, const Tensor& input, const Tensor& labels, bool train_mode,
                const std::vector<std::string>& activations = {});

}  // namespace dearest::nn
