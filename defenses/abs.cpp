#include "defenses/abs.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "data/loader.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "defenses/input_normalizer.h"
#include "nn/optim.h"
#include "tensor/rng.h"

namespace dearest::defenses {

namespace {

// Images [N, 3, H, W] in [0, 1] (not normalized) and their labels.
struct Images {
  Tensor x;
  std::vector<int32_t> y;
};

Images load(const data::DatasetPtr& ds, const std::string& kind) {
  data::LoaderOptions lo;
  lo.batch_size = ds->size();
  lo.shuffle = false;
  data::DataLoader loader(ds, data::test_transform(kind)->without_normalize(), lo);
  const data::Batch b = loader.batch(0, 0, loader.order(0));
  Images r{b.images, {}};
  const Tensor l = b.labels.contiguous();
  for (int64_t i = 0; i < l.numel(); ++i) r.y.push_back(l.data<int32_t>()[i]);
  return r;
}

// `per_class` training images of each class, drawn with the seed.
data::DatasetPtr seed_images(const data::DatasetPtr& train, int64_t per_class, uint64_t seed) {
  Rng rng(seed, 7100);
  const std::vector<int64_t> order = rng.permutation(train->size());
  std::map<int32_t, int64_t> taken;
  std::vector<int64_t> pick;
  const int64_t classes = int64_t(train->num_classes());
  for (int64_t i : order) {
    int64_t& t = taken[train->label(i)];
    if (t < per_class) {
      pick.push_back(i);
      ++t;
    }
    if (int64_t(pick.size()) == per_class * classes) break;
  }
  std::sort(pick.begin(), pick.end(), [&](int64_t a, int64_t b) { return train->label(a) < train->label(b) || (train->label(a) == train->label(b) && a < b); });
  return std::make_shared<data::Subset>(train, pick, "ABS seed images");
}


std::vector<std::vector<double>> rows_of(const Tensor& t) {  // [R, C] -> rows
  const Tensor c = t.to(DType::F64).contiguous();
  std::vector<std::vector<double>> r(size_t(t.size(0)));
  for (int64_t i = 0; i < t.size(0); ++i) r[size_t(i)].assign(c.data<double>() + i * t.size(1), c.data<double>() + (i + 1) * t.size(1));
  return r;
}

struct NeuronScore {
  std::string layer;
  size_t layer_position = 0;
  int64_t neuron = 0;
  int32_t label = 0;
  int64_t agree = 0;
  double value = 0;
};

// Step 1: every neuron of every sampled layer stimulated on the seed images.
std::vector<NeuronScore> stimulate(nn::Module& model, const std::vector<std::string>& layers, const Images& seeds,
                                   const InputNormalizer& norm, const AbsOptions& o) {
  NoGradGuard ng;
  std::vector<NeuronScore> scores;
  const int64_t n = seeds.x.size(0);
  const bool tty = ::isatty(2);
  for (size_t li = 0; li < layers.size(); ++li) {
    nn::Module* m = model.find(layers[li]);
    DEAREST_CHECK(m != nullptr, "abs: the model has no layer \"", layers[li], "\"");
    auto cap = nn::capture(model, layers[li]);
    model(norm(seeds.x));
    m->clear_forward_hooks();
    const Tensor out = cap->output.contiguous().to(DType::F32).contiguous();  // [N, C, h, w] or [N, C]
    DEAREST_CHECK(out.dim() == 4 || out.dim() == 2, "abs: layer ", layers[li], " gives ", out.dim(), "-d output");
    const int64_t C = out.size(1), per = out.numel() / (n * C);
    const double maxv = amax(out).item();
    std::vector<double> vs = {0};
    for (int64_t i = 1; i < o.n_samples; ++i) vs.push_back(maxv * std::pow(2.0, double(i - 2)));
    const int64_t S = int64_t(vs.size());
    // The rest of the network runs on a stimulated copy put in place of the layer's output (the
    // layer sees one image; what follows sees every (value, image) pair of one neuron at once).
    DEAREST_CHECK(!m->has_output_transform(), "abs: layer ", layers[li], " already has an output transform");
    Tensor stimulated;
    m->set_output_transform([&stimulated](const Tensor&) { return stimulated; });
    const Tensor one = norm(seeds.x.slice(0, 0, 1).contiguous());
    for (int64_t c = 0; c < C; ++c) {
      Tensor h = Tensor::empty({S * n, C * per}, DType::F32);
      float* hp = h.data<float>();
      const float* op = out.data<float>();
      for (int64_t s = 0; s < S; ++s)
        for (int64_t i = 0; i < n; ++i) {
          float* row = hp + (s * n + i) * C * per;
          std::copy(op + i * C * per, op + (i + 1) * C * per, row);
          std::fill(row + c * per, row + (c + 1) * per, float(vs[size_t(s)]));
        }
      Shape shape = out.shape();
      shape[0] = S * n;
      stimulated = reshape(h, shape).contiguous();
      const auto logits = rows_of(model(one));  // [(s, i), classes]
      // Per image: the label whose logit rises most, and by how much more than the next.
      std::map<int32_t, int64_t> votes;
      std::vector<std::pair<int32_t, double>> per_image;
      for (int64_t i = 0; i < n; ++i) {
        std::vector<std::vector<double>> rows;
        for (int64_t s = 0; s < S; ++s) rows.push_back(logits[size_t(s * n + i)]);
        per_image.push_back(stimulation_margin(rows));
        ++votes[per_image.back().first];
      }
      int32_t mode = votes.begin()->first;
      for (const auto& [l, k] : votes)
        if (k > votes[mode]) mode = l;
      // The smallest margin over images of other classes that agree with the mode.
      double value = 0;
      bool any = false;
      for (int64_t i = 0; i < n; ++i)
        if (seeds.y[size_t(i)] != mode && per_image[size_t(i)].first == mode) {
          value = any ? std::min(value, per_image[size_t(i)].second) : per_image[size_t(i)].second;
          any = true;
        }
      scores.push_back({layers[li], li, c, mode, any ? votes[mode] : 0, any ? value : 0});
      if (o.progress && (tty || c + 1 == C))
        std::fprintf(stderr, "%sabs: stimulating %s, neuron %ld/%ld%s", tty ? "\r" : "", layers[li].c_str(), long(c + 1),
                     long(C), tty && c + 1 < C ? "   " : "\n");
    }
    m->set_output_transform(nullptr);
  }
  return scores;
}

// The candidates: at least 90% agreement, best score first, at most one per label among the
// earlier layers, then one per label in the last layer. The reference (5 labels, top 10) gives
// each pass room; with 10 labels its first pass could take all 10, so here each pass has half.
std::vector<NeuronScore> candidates(const std::vector<NeuronScore>& scores, size_t last_layer, int64_t n_images, int64_t top) {
  std::vector<NeuronScore> keep;
  for (const auto& s : scores)
    if (s.agree >= int64_t(double(n_images) * 0.9)) keep.push_back(s);
  std::stable_sort(keep.begin(), keep.end(), [](const NeuronScore& a, const NeuronScore& b) { return a.value > b.value; });
  std::vector<NeuronScore> picked;
  for (bool last : {false, true}) {
    std::map<int32_t, int> per_label;
    const int64_t room = int64_t(picked.size()) + (last ? top - int64_t(picked.size()) : (top + 1) / 2);
    for (const auto& s : keep) {
      if (int64_t(picked.size()) >= room) break;
      if ((s.layer_position == last_layer) != last || per_label[s.label] >= 1) continue;
      ++per_label[s.label];
      picked.push_back(s);
    }
  }
  return picked;
}

// Step 2: a trigger that drives one neuron; step 3: its REASR.
AbsCandidate reverse_engineer(nn::Module& model, const NeuronScore& s, const Images& seeds, const Images& test,
                              const InputNormalizer& norm, const AbsOptions& o) {
  const int64_t H = seeds.x.size(2), W = seeds.x.size(3), n = seeds.x.size(0);
  Rng rng(o.seed, 7200 + uint64_t(s.neuron) + 100000 * s.layer_position);
  Tensor d_raw = rng.uniform({1, 3, H, W}, -1, 1);
  // The reference's start: a square of side 0.8 sqrt(max_trigger) from the centre, m_raw 2 inside and -4 outside.
  Tensor m_raw = Tensor::full({1, 1, H, W}, -4.0, DType::F32);
  const int64_t side = int64_t(std::sqrt(double(o.max_trigger)) * 0.8);
  for (int64_t r = H / 2; r < std::min(H, H / 2 + side); ++r)
    for (int64_t c = W / 2; c < std::min(W, W / 2 + side); ++c) m_raw.data<float>()[r * W + c] = 2.0f;
  d_raw.set_requires_grad(true);
  m_raw.set_requires_grad(true);
  nn::AdamOptions ao;
  ao.lr = o.lr;
  nn::Adam opt({{"delta", d_raw}, {"mask", m_raw}}, ao);
  nn::Module* layer = model.find(s.layer);
  auto cap = nn::capture(model, s.layer);
  AbsCandidate r;
  r.layer = s.layer;
  r.neuron = s.neuron;
  r.label = s.label;
  r.stimulation = s.value;
  const int64_t batch = std::min(o.batch, n);
  for (int64_t e = 0; e < o.epochs; ++e) {
    const std::vector<int64_t> perm = rng.permutation(n);
    std::map<int32_t, int64_t> preds;
    int64_t seen = 0;
    for (int64_t b = 0; b + batch <= n; b += batch) {
      std::vector<int32_t> idx(perm.begin() + b, perm.begin() + b + batch);
      const Tensor x = index_select(seeds.x, 0, Tensor::from_vector<int32_t>(idx, {batch}));
      const Tensor m = add(div(tanh(m_raw), 2.0), 0.5), d = add(div(tanh(d_raw), 2.0), 0.5);
      const Tensor logits = model(norm(add(mul(m, d), mul(sub(1.0, m), x))));
      const Tensor f = cap->output;
      const int64_t C = f.size(1);
      Tensor sel = Tensor::zeros(f.dim() == 4 ? Shape{1, C, 1, 1} : Shape{1, C}, DType::F32);
      sel.data<float>()[s.neuron] = 1;
      const Tensor v1 = sum(mul(f, sel)), v2 = div(sum(mul(f, sub(1.0, sel))), double(C - 1));
      // The reference's activation before and after the ReLU, here both the layer's output.
      Tensor loss = add(mul(v1, -2.0), mul(v2, 2e-4));
      const Tensor mask_l1 = sum(m);
      int64_t nz = 0;
      {
        const Tensor mc = m.detach().contiguous();
        for (int64_t i = 0; i < mc.numel(); ++i) nz += mc.data<float>()[i] > o.mask_epsilon;
      }
      const double w = nz > 1.2 * double(o.max_trigger) ? 2 * o.mask_weight : nz > o.max_trigger ? o.mask_weight : 0.01;
      loss = add(loss, mul(mask_l1, w));
      const Tensor target_logit = sum(slice(logits, 1, s.label, s.label + 1));
      loss = sub(loss, mul(target_logit, e > o.epochs / 2 ? 3.0 : 1.0));
      if (e > 0) {
        opt.zero_grad();
        backward(loss);
        opt.step();
      }
      const Tensor p = argmax(logits.detach(), 1);
      for (int64_t i = 0; i < p.numel(); ++i) ++preds[p.data<int32_t>()[i]];
      seen += batch;
    }
    int32_t top = preds.begin()->first;
    for (const auto& [l, k] : preds)
      if (k > preds[top]) top = l;
    r.trigger_label = top;
    r.seed_success = double(preds[top]) / double(std::max<int64_t>(1, seen));
    if (r.seed_success > 0.99) break;
  }
  layer->clear_forward_hooks();
  NoGradGuard ng;
  r.mask = reshape(add(div(tanh(m_raw.detach()), 2.0), 0.5), {H, W}).contiguous().clone();
  r.pattern = reshape(add(div(tanh(d_raw.detach()), 2.0), 0.5), {3, H, W}).contiguous().clone();
  // The trigger as the reference tests it: the pixels with m^2 > epsilon, fully on.
  Tensor bin = Tensor::zeros({1, 1, H, W}, DType::F32);
  for (int64_t i = 0; i < H * W; ++i) {
    const float v = r.mask.data<float>()[i];
    if (double(v) * v > o.mask_epsilon) {
      bin.data<float>()[i] = 1;
      ++r.mask_pixels;
    }
  }
  const Tensor pat = reshape(r.pattern, {1, 3, H, W});
  int64_t hits = 0;
  for (int64_t b = 0; b < test.x.size(0); b += 100) {
    const Tensor x = test.x.slice(0, b, std::min(test.x.size(0), b + 100)).contiguous();
    const Tensor p = argmax(model(norm(add(mul(bin, pat), mul(sub(1.0, bin), x)))), 1);
    for (int64_t i = 0; i < p.numel(); ++i) hits += p.data<int32_t>()[i] == r.trigger_label;
  }
  r.reasr = double(hits) / double(std::max<int64_t>(1, test.x.size(0)));
  return r;
}

}  // namespace

std::vector<std::string> default_abs_layers(nn::Module& model, const nn::ModelSpec& spec) {
  if (spec.arch == "resnet18") return {"layer3", "layer4"};
  std::vector<std::string> pools;
  for (auto& [name, m] : model.named_modules())
    if (name.rfind("features.", 0) == 0 && m->type() == "MaxPool2d") pools.push_back(name);
  DEAREST_CHECK(pools.size() >= 2, "abs: fewer than two max-pools in the model's features; name the layers");
  return {pools[pools.size() - 2], pools.back()};
}

std::pair<int32_t, double> stimulation_margin(const std::vector<std::vector<double>>& logits) {
  DEAREST_CHECK(logits.size() >= 2 && logits[0].size() >= 2, "abs: stimulation needs two values and two labels");
  std::vector<std::pair<double, int32_t>> rise;
  for (size_t l = 0; l < logits[0].size(); ++l) {
    double hi = logits[1][l];
    for (size_t s = 2; s < logits.size(); ++s) hi = std::max(hi, logits[s][l]);
    rise.emplace_back(hi - logits[0][l], int32_t(l));
  }
  std::stable_sort(rise.begin(), rise.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return {rise[0].second, rise[0].first - rise[1].first};
}

AbsResult abs_scan(nn::Module& model, const nn::ModelSpec& spec, const data::DataSpec& data, const AbsOptions& o) {
  DEAREST_CHECK(o.seeds_per_class >= 1 && o.n_samples >= 3 && o.top_neurons >= 1 && o.epochs >= 1 && o.batch >= 1 &&
                    o.test_images >= 1 && o.max_trigger >= 1,
                "abs: counts must be positive (and at least 3 stimulation values)");
  model.eval();
  for (auto& [n, p] : model.named_parameters()) p.set_requires_grad(false);
  const std::vector<std::string> layers = o.layers.empty() ? default_abs_layers(model, spec) : o.layers;
  const InputNormalizer norm(data.kind);
  const auto train = data::open_dataset(data, "train");
  const Images seeds = load(seed_images(train, o.seeds_per_class, o.seed), data.kind);
  const auto test_set = data::open_dataset(data, data::test_split(data.kind));
  const Images test = load(data::index_range(test_set, 0, std::min(test_set->size(), o.test_images)), data.kind);
  const auto scores = stimulate(model, layers, seeds, norm, o);
  AbsResult r;
  const std::vector<NeuronScore> picked = candidates(scores, layers.size() - 1, seeds.x.size(0), o.top_neurons);
  for (const NeuronScore& s : picked) r.selected.push_back({s.layer, s.neuron, s.label, s.value});
  for (const NeuronScore& s : picked) {
    r.candidates.push_back(reverse_engineer(model, s, seeds, test, norm, o));
    const AbsCandidate& c = r.candidates.back();
    if (o.progress)
      std::fprintf(stderr, "abs: %s neuron %ld (label %d, score %.2f): trigger -> label %d, seeds %.2f, REASR %.3f, %ld pixels\n",
                   c.layer.c_str(), long(c.neuron), c.label, c.stimulation, c.trigger_label, c.seed_success, c.reasr,
                   long(c.mask_pixels));
    if (c.reasr > r.max_reasr) {
      r.max_reasr = c.reasr;
      r.best = r.candidates.size() - 1;
    }
    if (c.seed_success > 0.99 && c.trigger_label == c.label) break;  // the reference stops at a sure one
  }
  r.flagged = r.max_reasr >= o.flag;
  return r;
}

}  // namespace dearest::defenses
