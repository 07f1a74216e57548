// t-SNE (van der Maaten & Hinton, JMLR 2008), exact O(n^2): for the few thousand points of a
// figure (the EFRAP supplementary's Figure 5: penultimate features of clean and triggered images
// before and after the defense). Gaussian affinities calibrated to the perplexity by bisection on
// each point's precision, symmetrised; Student-t similarities in 2-D; gradient descent with the
// reference's early exaggeration, momentum schedule and per-coordinate gains.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace dearest::nn {

struct TsneOptions {
  double perplexity = 30;
  int iterations = 1000;
  double learning_rate = 0;      // 0: max(N / exaggeration / 4, 50) (Belkina et al. 2019, scikit-learn's "auto")
  double exaggeration = 12;      // P multiplied by this for the first exaggeration_iters
  int exaggeration_iters = 250;  // also when the momentum moves from 0.5 to 0.8
  uint64_t seed = 0;             // the initial layout: N(0, 1e-4)
};

struct TsneResult {
  std::vector<std::array<double, 2>> points;
  double kl = 0;                   // KL(P || Q) at the end
  std::vector<double> row_entropy;  // each point's affinity entropy (nats): log(perplexity) when calibrated
};

// x: [N, D] features (any float dtype). N must exceed 3 * perplexity.
TsneResult tsne(const Tensor& x, const TsneOptions& o = {});

}  // namespace dearest::nn
