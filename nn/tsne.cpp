#include "nn/tsne.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"
#include "tensor/rng.h"

namespace dearest::nn {

TsneResult tsne(const Tensor& x_in, const TsneOptions& o) {
  DEAREST_CHECK(x_in.dim() == 2, "t-SNE: expected features [N, D], got ", x_in.dim(), " dimensions");
  const Tensor x = x_in.to(DType::F64).contiguous();
  const int64_t n = x.size(0), d = x.size(1);
  DEAREST_CHECK(o.perplexity > 0 && double(n) > 3 * o.perplexity, "t-SNE: ", n, " points are too few for perplexity ",
                o.perplexity, " (need more than 3x)");
  DEAREST_CHECK(o.iterations > 0 && o.learning_rate >= 0, "t-SNE: iterations must be positive, the learning rate not negative");
  const double lr = o.learning_rate > 0 ? o.learning_rate : std::max(double(n) / o.exaggeration / 4, 50.0);
  const double* xp = x.data<double>();
  std::vector<double> D(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double t = xp[i * d + k] - xp[j * d + k];
        s += t * t;
      }
      D[size_t(i * n + j)] = D[size_t(j * n + i)] = s;
    }
  // Conditional affinities p_{j|i}: the precision beta_i bisected until the entropy is log(perplexity).
  TsneResult r;
  r.row_entropy.resize(size_t(n));
  std::vector<double> P(size_t(n * n), 0.0);
  const double target = std::log(o.perplexity);
  for (int64_t i = 0; i < n; ++i) {
    double beta = 1, lo = 0, hi = INFINITY, H = 0;
    double* row = &P[size_t(i * n)];
    for (int it = 0; it < 200; ++it) {
      double sum = 0, dot = 0;
      for (int64_t j = 0; j < n; ++j) {
        row[j] = j == i ? 0 : std::exp(-beta * D[size_t(i * n + j)]);
        sum += row[j];
        dot += row[j] * D[size_t(i * n + j)];
      }
      sum = std::max(sum, 1e-300);
      H = std::log(sum) + beta * dot / sum;
      for (int64_t j = 0; j < n; ++j) row[j] /= sum;
      if (std::fabs(H - target) < 1e-6) break;
      if (H > target) {
        lo = beta;
        beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = (beta + lo) / 2;
      }
    }
    r.row_entropy[size_t(i)] = H;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const double s = std::max((P[size_t(i * n + j)] + P[size_t(j * n + i)]) / (2.0 * double(n)), 1e-12);
      P[size_t(i * n + j)] = P[size_t(j * n + i)] = s;
    }
  // Gradient descent on KL(P || Q).
  Rng rng(o.seed, 0x75e);
  const Tensor init = rng.normal({n, 2}, 0, 1e-2, DType::F64);
  std::vector<double> Y(init.data<double>(), init.data<double>() + n * 2), V(size_t(n * 2), 0.0), G(size_t(n * 2), 1.0),
      dY(size_t(n * 2));
  std::vector<double> num(size_t(n * n));
  for (int it = 0; it < o.iterations; ++it) {
    const double ex = it < o.exaggeration_iters ? o.exaggeration : 1.0;
    const double momentum = it < o.exaggeration_iters ? 0.5 : 0.8;
    double zsum = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) {
        const double a = Y[size_t(2 * i)] - Y[size_t(2 * j)], b = Y[size_t(2 * i + 1)] - Y[size_t(2 * j + 1)];
        const double q = 1 / (1 + a * a + b * b);
        num[size_t(i * n + j)] = num[size_t(j * n + i)] = q;
        zsum += 2 * q;
      }
    std::fill(dY.begin(), dY.end(), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (i == j) continue;
        const double q = num[size_t(i * n + j)];
        const double m = (ex * P[size_t(i * n + j)] - q / zsum) * q;
        dY[size_t(2 * i)] += 4 * m * (Y[size_t(2 * i)] - Y[size_t(2 * j)]);
        dY[size_t(2 * i + 1)] += 4 * m * (Y[size_t(2 * i + 1)] - Y[size_t(2 * j + 1)]);
      }
    for (size_t k = 0; k < Y.size(); ++k) {
      // Gains grow where the gradient's sign disagrees with the step's, shrink otherwise.
      G[k] = (dY[k] > 0) != (V[k] > 0) ? G[k] + 0.2 : std::max(G[k] * 0.8, 0.01);
      V[k] = momentum * V[k] - lr * G[k] * dY[k];
      Y[k] += V[k];
    }
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; ++i) mx += Y[size_t(2 * i)], my += Y[size_t(2 * i + 1)];
    for (int64_t i = 0; i < n; ++i) Y[size_t(2 * i)] -= mx / double(n), Y[size_t(2 * i + 1)] -= my / double(n);
    if (it == o.iterations - 1) {
      double kl = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
          if (i != j) kl += P[size_t(i * n + j)] * std::log(P[size_t(i * n + j)] / std::max(num[size_t(i * n + j)] / zsum, 1e-300));
      r.kl = kl;
    }
  }
  r.points.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) r.points[size_t(i)] = {Y[size_t(2 * i)], Y[size_t(2 * i + 1)]};
  return r;
}

}  // namespace dearest::nn
