// A model with non-trivial batch-norm statistics for the quantization, attack and defense tests:
// built from a fixed init seed, then a few train-mode forwards on random images (x * scale + shift).
#pragma once
#include <string>

#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/models.h"
#include "tests/test_util.h"

namespace dearest::test {

inline nn::ModulePtr warmed_model(const std::string& text, nn::ModelSpec& spec, uint64_t init_seed, uint64_t data_seed,
                                  double scale = 1.0, double shift = 0.0) {
  spec = nn::ModelSpec::parse(text);
  nn::set_init_seed(init_seed);  // the same weights whatever ran before in this process
  nn::ModulePtr m = nn::build_model(spec);
  {
    NoGradGuard ng;
    m->train();
    for (uint64_t i = 0; i < 3; ++i) {
      Tensor x = randn({16, 3, 32, 32}, data_seed + i);
      (*m)(scale == 1.0 && shift == 0.0 ? x : add(mul(x, scale), shift));
    }
  }
  m->eval();
  return m;
}

}  // namespace dearest::test
