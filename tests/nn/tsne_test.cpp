#include "nn/tsne.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tensor/error.h"
#include "tensor/rng.h"

namespace dearest::nn {
namespace {

// Three well-separated Gaussian clusters in 10-D, 30 points each.
Tensor clusters(std::vector<int>* label) {
  Tensor x = Rng(7).normal({90, 10}, 0, 1, DType::F64);
  double* p = x.data<double>();
  for (int i = 0; i < 90; ++i) {
    label->push_back(i / 30);
    p[i * 10 + i / 30] += 12;  // cluster c sits 12 along axis c
  }
  return x;
}

TEST(Tsne, CalibratesEachPointToThePerplexity) {
  std::vector<int> label;
  TsneOptions o;
  o.perplexity = 10;
  o.iterations = 1;
  const TsneResult r = tsne(clusters(&label), o);
  for (double h : r.row_entropy) EXPECT_NEAR(h, std::log(10.0), 1e-4);
}

TEST(Tsne, KeepsClustersApartAndLowersTheDivergence) {
  std::vector<int> label;
  const Tensor x = clusters(&label);
  TsneOptions o;
  o.perplexity = 10;
  o.iterations = 1;
  const double kl_start = tsne(x, o).kl;
  o.iterations = 500;
  const TsneResult r = tsne(x, o);
  EXPECT_LT(r.kl, 0.5 * kl_start);
  int agree = 0;  // each point's nearest neighbour in 2-D is of its own cluster
  for (int i = 0; i < 90; ++i) {
    int best = -1;
    double bd = INFINITY;
    for (int j = 0; j < 90; ++j) {
      if (j == i) continue;
      const double a = r.points[i][0] - r.points[j][0], b = r.points[i][1] - r.points[j][1];
      if (a * a + b * b < bd) bd = a * a + b * b, best = j;
    }
    agree += label[size_t(best)] == label[size_t(i)];
  }
  EXPECT_EQ(agree, 90);
}

TEST(Tsne, RefusesTooFewPoints) {
  TsneOptions o;
  o.perplexity = 30;
  EXPECT_THROW(tsne(Tensor::zeros({50, 3}), o), Error);
}

}  // namespace
}  // namespace dearest::nn
