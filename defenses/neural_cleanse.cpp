#include "defenses/neural_cleanse.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "data/loader.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "defenses/input_normalizer.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "tensor/rng.h"

namespace dearest::defenses {

namespace {

constexpr double kEps = 1e-7;  // the reference's K.epsilon()

Tensor squash(const Tensor& raw) { return add(div(tanh(raw), 2 - kEps), 0.5); }

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

ReversedTrigger reverse_engineer(nn::Module& model, const data::DatasetPtr& clean, const std::string& kind, int32_t label,
                                 const NeuralCleanseOptions& o) {
  DEAREST_CHECK(o.steps >= 1 && o.images >= 1 && o.batch >= 1, "neural cleanse: steps, images and batch must be positive");
  DEAREST_CHECK(label >= 0 && label < int32_t(clean->num_classes()), "neural cleanse: label ", label, " outside [0, ",
                clean->num_classes(), ")");
  model.eval();
  for (auto& [n, p] : model.named_parameters()) p.set_requires_grad(false);
  const data::DatasetPtr pool = data::index_range(clean, 0, std::min(clean->size(), o.images));
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.shuffle = true;
  lo.seed = o.seed;
  data::DataLoader loader(pool, data::test_transform(kind)->without_normalize(), lo);
  const InputNormalizer norm(kind);
  const data::Batch probe = loader.batch(0, 0, loader.order(0));
  const int64_t H = probe.images.size(2), W = probe.images.size(3);
  Rng rng(o.seed, 9000 + uint64_t(label));
  // Random start in raw space, as the reference's random init.
  Tensor m_raw = rng.uniform({1, 1, H, W}, -1, 1), p_raw = rng.uniform({1, 3, H, W}, -1, 1);
  m_raw.set_requires_grad(true);
  p_raw.set_requires_grad(true);
  nn::AdamOptions ao;
  ao.lr = o.lr;
  ao.beta1 = 0.5;
  ao.beta2 = 0.9;
  nn::Adam opt({{"mask", m_raw}, {"pattern", p_raw}}, ao);

  ReversedTrigger best;
  best.label = label;
  best.l1 = std::numeric_limits<double>::infinity();
  double cost = o.init_cost, early_best = std::numeric_limits<double>::infinity();
  int64_t up = 0, down = 0, set_counter = 0, early_counter = 0;
  bool went_up = false, went_down = false;
  double last_success = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    const auto order = loader.order(step);
    int64_t hits = 0, seen = 0;
    double l1 = 0;
    for (int64_t b = 0; b < loader.num_batches(); ++b) {
      const Tensor x = loader.batch(step, b, order).images;
      const Tensor m = squash(m_raw), p = squash(p_raw);
      const Tensor stamped = add(mul(sub(1.0, m), x), mul(m, p));
      const Tensor logits = model(norm(stamped));
      const Tensor target = Tensor::full({x.size(0)}, label, DType::I32);
      const Tensor reg = sum(m);
      const Tensor loss = add(cross_entropy(logits, target), mul(reg, cost));
      opt.zero_grad();
      backward(loss);
      opt.step();
      const Tensor pred = argmax(logits.detach(), 1);
      for (int64_t i = 0; i < pred.numel(); ++i) hits += pred.data<int32_t>()[i] == label;
      seen += x.size(0);
      l1 = reg.item();
    }
    const double success = double(hits) / double(std::max<int64_t>(1, seen));
    last_success = success;
    if (success >= o.threshold && l1 < best.l1) {
      NoGradGuard ng;
      best.l1 = l1;
      best.success = success;
      best.mask = reshape(squash(m_raw.detach()), {H, W}).contiguous().clone();
      best.pattern = reshape(squash(p_raw.detach()), {3, H, W}).contiguous().clone();
    }
    best.steps = step + 1;
    if (o.progress)
      std::fprintf(stderr, "\rneural cleanse, label %d: step %ld, success %.3f, |m|_1 %.1f, cost %.2e, best %.1f   ", label,
                   long(step + 1), success, l1, cost, best.l1);
    // Early stop: the cost has gone both ways and the best has stopped improving.
    if (best.l1 < std::numeric_limits<double>::infinity()) {
      early_counter = best.l1 >= early_best ? early_counter + 1 : 0;
      early_best = std::min(early_best, best.l1);
    }
    if (went_up && went_down && early_counter >= o.early_stop_patience) break;
    // The cost schedule.
    if (cost == 0 && success >= o.threshold) {
      if (++set_counter >= o.patience) {
        cost = o.init_cost;
        up = down = set_counter = 0;
        went_up = went_down = false;
      }
      continue;
    }
    if (success >= o.threshold) {
      ++up;
      down = 0;
    } else {
      up = 0;
      ++down;
    }
    if (up >= o.patience) {
      up = 0;
      cost *= o.cost_up;
      went_up = true;
    } else if (down >= o.patience) {
      down = 0;
      cost /= o.cost_down;
      went_down = true;
    }
  }
  if (o.progress) std::fprintf(stderr, "\n");
  best.reached = best.mask.defined();
  if (!best.reached) {  // never reached the threshold: report the last mask
    NoGradGuard ng;
    best.mask = reshape(squash(m_raw.detach()), {H, W}).contiguous().clone();
    best.pattern = reshape(squash(p_raw.detach()), {3, H, W}).contiguous().clone();
    best.l1 = sum(best.mask).item();
    best.success = last_success;
  }
  return best;
}

MadResult mad_outliers(const std::vector<double>& l1) {
  DEAREST_CHECK(l1.size() >= 2, "neural cleanse: the outlier test needs at least two labels");
  MadResult r;
  r.median = median_of(l1);
  std::vector<double> dev;
  for (double v : l1) dev.push_back(std::fabs(v - r.median));
  r.mad = 1.4826 * median_of(dev);
  for (size_t i = 0; i < l1.size(); ++i) {
    const double idx = l1[i] < r.median && r.mad > 0 ? std::fabs(l1[i] - r.median) / r.mad : 0.0;
    r.index.push_back(idx);
    if (idx > 2) r.flagged.push_back(i);
    if (l1[i] < l1[r.min_position]) r.min_position = i;
  }
  r.model_index = r.index[r.min_position];
  return r;
}

}  // namespace dearest::defenses
