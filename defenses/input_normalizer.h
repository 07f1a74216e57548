// The dataset's normalization as differentiable ops: the detectors build their inputs in [0, 1]
// (stamped, blended, optimized triggers) and normalize them for the model inside the graph.
#pragma once
#include <string>

#include "autograd/ops.h"
#include "data/transforms.h"

namespace dearest::defenses {

class InputNormalizer {
 public:
  explicit InputNormalizer(const std::string& kind) {
    const data::Normalization nz = data::normalization_of(kind);
    mean_ = Tensor::from_vector<float>({nz.mean[0], nz.mean[1], nz.mean[2]}, {1, 3, 1, 1});
    inv_std_ = Tensor::from_vector<float>({1 / nz.std[0], 1 / nz.std[1], 1 / nz.std[2]}, {1, 3, 1, 1});
  }
  Tensor operator()(const Tensor& x) const { return mul(sub(x, mean_), inv_std_); }

 private:
  Tensor mean_, inv_std_;
};

}  // namespace dearest::defenses
