#include "defenses/strip.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "data/loader.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "defenses/input_normalizer.h"
#include "tensor/rng.h"

namespace dearest::defenses {

double quantile(std::vector<double> v, double q) {
  DEAREST_CHECK(!v.empty(), "quantile of nothing");
  DEAREST_CHECK(q >= 0 && q <= 1, "quantile: q must be in [0, 1], got ", q);
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

std::vector<double> strip_entropies(nn::Module& model, const Tensor& images, const Tensor& pool, const std::string& kind,
                                    int64_t batch) {
  DEAREST_CHECK(images.dim() == 4 && pool.dim() == 4 && pool.size(0) >= 1, "strip: expected image batches [B, 3, H, W]");
  NoGradGuard ng;
  model.eval();
  const InputNormalizer norm(kind);
  const int64_t n = pool.size(0);
  std::vector<double> out;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const Tensor x = images.slice(0, i, i + 1);
    double h = 0;
    for (int64_t s = 0; s < n; s += batch) {
      const Tensor over = pool.slice(0, s, std::min(n, s + batch));
      const Tensor mixed = clamp(add(over, x), 0.0, 1.0);
      const Tensor p = softmax(model(norm(mixed)), 1).contiguous();
      const float* d = p.data<float>();
      for (int64_t k = 0; k < p.numel(); ++k)
        if (d[k] > 0) h -= double(d[k]) * std::log2(double(d[k]));
    }
    out.push_back(h / double(n));
  }
  return out;
}

namespace {

Tensor stack_images(const data::DatasetPtr& ds, const std::vector<int64_t>& idx, const data::TransformPtr& tf,
                    const Stamp& stamp) {
  std::vector<Tensor> v;
  Rng rng(0);
  for (int64_t i : idx) {
    Tensor img = tf->apply(ds->get(i).image, rng, {});
    if (stamp) img = stamp(img);
    v.push_back(reshape(img, {1, img.size(0), img.size(1), img.size(2)}));
  }
  return cat(v, 0);
}

}  // namespace

StripResult strip(nn::Module& model, const data::DataSpec& data, const Stamp& stamp, int32_t target, const StripOptions& o) {
  DEAREST_CHECK(stamp, "strip: no trigger to stamp");
  DEAREST_CHECK(o.overlays >= 1 && o.inputs >= 1 && o.batch >= 1, "strip: overlays, inputs and batch must be positive");
  DEAREST_CHECK(o.frr > 0 && o.frr < 1, "strip: the FRR must be in (0, 1), got ", o.frr);
  const data::DatasetPtr test = data::open_dataset(data, data::test_split(data.kind));
  const data::DatasetPtr train = data::open_dataset(data, data::train_split(data.kind));
  const auto tf = data::test_transform(data.kind)->without_normalize();
  std::vector<int64_t> inputs;
  for (int64_t i = 0; i < test->size() && int64_t(inputs.size()) < o.inputs; ++i)
    if (test->get(i).label != target) inputs.push_back(i);
  DEAREST_CHECK(!inputs.empty(), "strip: no test image outside the target class");
  Rng rng(o.seed, 31337);
  std::vector<int64_t> perm = rng.permutation(train->size());
  perm.resize(size_t(std::min<int64_t>(o.overlays, train->size())));
  const Tensor pool = stack_images(train, perm, tf, nullptr);
  StripResult r;
  r.clean = strip_entropies(model, stack_images(test, inputs, tf, nullptr), pool, data.kind, o.batch);
  r.triggered = strip_entropies(model, stack_images(test, inputs, tf, stamp), pool, data.kind, o.batch);
  r.threshold = quantile(r.clean, o.frr);
  int64_t rejected = 0, missed = 0;
  for (double h : r.clean) rejected += h < r.threshold;
  for (double h : r.triggered) missed += h >= r.threshold;
  r.frr = double(rejected) / double(r.clean.size());
  r.far = double(missed) / double(r.triggered.size());
  r.detection = 1 - r.far;
  return r;
}

}  // namespace dearest::defenses
