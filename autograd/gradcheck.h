// Gradient checking: the analytic gradient of <f(inputs), r> (r a fixed random projection) against
// central finite differences in f64, element by element, for every input that requires grad.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dearest {

struct GradcheckOptions {
  double eps = 1e-6;    // finite-difference step
  double atol = 1e-7;   // pass if |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-5;
  uint64_t seed = 1701;  // of the projection r
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0;
  std::string report;  // the first failures, with input, index and both values
};

// Inputs must be f64 leaves; those with requires_grad set are checked.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt = {});

}  // namespace dearest
