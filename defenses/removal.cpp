#include "defenses/removal.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "data/loader.h"
#include "data/loader_source.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "quant/quantized_model.h"

namespace dearest::defenses {

data::DatasetPtr clean_subset(const data::DataSpec& spec, double portion, uint64_t seed) {
  DEAREST_CHECK(portion > 0 && portion <= 1, "clean data: the portion must be in (0, 1], got ", portion);
  data::DatasetPtr train = data::open_dataset(spec, data::train_split(spec.kind));
  const int64_t n = std::max<int64_t>(1, int64_t(std::floor(portion * double(train->size()))));
  return data::random_split(train, {n}, seed).at(0);
}

data::LoaderSource clean_batches(const data::DatasetPtr& clean, const std::string& kind, const FineTuneOptions& o) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.shuffle = true;
  lo.drop_last = clean->size() > o.batch;  // BackdoorBox: drop_last=True
  lo.seed = o.seed;
  return data::LoaderSource(std::make_shared<data::DataLoader>(clean, data::train_transform(kind), lo));
}

nn::TrainOptions trainer_options(const FineTuneOptions& o) {
  nn::TrainOptions to;
  to.epochs = o.epochs;
  to.out_dir = o.out_dir;
  to.resume = o.resume;
  to.progress = o.progress;
  to.seed = o.seed;
  to.eval_every = 0;
  to.max_steps_per_epoch = o.max_steps;
  to.batchnorm_eval = o.batchnorm_eval;
  return to;
}

std::vector<nn::EpochStats> fine_tune(nn::Module& model, const nn::ModelSpec& spec, const data::DatasetPtr& clean,
                                      const std::string& kind, const FineTuneOptions& o) {
  DEAREST_CHECK(o.epochs >= 0 && o.batch >= 1, "fine-tune: epochs must be >= 0 and batch >= 1");
  DEAREST_CHECK(clean && clean->size() > 0, "fine-tune: no clean data");
  model.set_trainable(o.trainable.empty());
  for (const auto& prefix : o.trainable) {
    bool any = false;
    for (auto& [n, p] : model.named_parameters())
      any = any || n.compare(0, prefix.size(), prefix) == 0;
    DEAREST_CHECK(any, "fine-tune: no parameter under \"", prefix, "\"");
    model.set_trainable(true, prefix);
  }
  auto opt = nn::make_optimizer(o.optimizer, model, o.lr, o.momentum, o.wd, false, "fine-tune optimizer");
  data::LoaderSource src = clean_batches(clean, kind, o);
  nn::Trainer trainer(model, spec, *opt, nn::Schedule::parse(o.schedule), trainer_options(o));
  auto stats = trainer.fit(src);
  model.set_trainable(true);
  model.eval();
  return stats;
}

std::string prune_point(const nn::ModelSpec& spec) {
  if (spec.arch == "resnet18") return "layer4";
  if (spec.arch == "vgg16") return "features";
  fail("fine-pruning: no pruning point for ", spec.arch);
}

nn::ModulePtr with_prune_mask(nn::ModelSpec& spec, nn::Module& model, const std::string& where) {
  const std::string had = spec.get("prune", "");
  DEAREST_CHECK(had.empty() || had == where, "fine-pruning: the model is already pruned at ", had);
  spec.opts["prune"] = where;
  nn::ModulePtr masked = nn::build_model(spec);
  // The mask buffer is new unless the model had one: load what there is, keep the rest as built.
  nn::StateDict sd = model.state_dict();
  masked->load_state_dict(sd, !had.empty());
  if (had.empty())
    for (auto& [k, t] : masked->state_dict())
      if (k != "prune.mask")
        DEAREST_CHECK(std::any_of(sd.begin(), sd.end(), [&](const auto& e) { return e.first == k; }),
                      "fine-pruning: the model has no ", k);
  masked->eval();
  return masked;
}

Json PruneResult::to_json() const {
  Json j = Json::object();
  j.set("where", where);
  j.set("channels", channels);
  Json p = Json::array();
  for (int64_t c : pruned) p.push(c);
  j.set("pruned", p);
  Json a = Json::array();
  for (double v : mean_activation) a.push(v);
  j.set("mean_activation", a);
  return j;
}

PruneResult prune_least_active(nn::Module& model, const data::DatasetPtr& clean, const std::string& kind, double rate,
                               int64_t batch) {
  DEAREST_CHECK(rate >= 0 && rate < 1, "fine-pruning: the rate must be in [0, 1), got ", rate);
  nn::Module* pm = model.find("prune");
  DEAREST_CHECK(pm && pm->type() == "ChannelMask", "fine-pruning: the model has no channel mask (with_prune_mask)");
  auto* mask = static_cast<nn::ChannelMask*>(pm);
  PruneResult r;
  r.channels = mask->mask().numel();
  std::vector<double> sum(size_t(r.channels), 0.0);
  int64_t positions = 0;
  mask->mask().fill_(1.0);
  pm->add_forward_hook([&](nn::Module&, const Tensor& y) {
    const Tensor t = y.contiguous();
    const int64_t N = t.size(0), C = t.size(1), HW = t.size(2) * t.size(3);
    const float* d = t.data<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        double s = 0;
        for (int64_t k = 0; k < HW; ++k) s += d[(n * C + c) * HW + k];
        sum[size_t(c)] += s;
      }
    positions += N * HW;
  });
  model.eval();
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  data::DataLoader loader(clean, data::test_transform(kind), lo);
  {
    NoGradGuard ng;
    const auto order = loader.order(0);
    for (int64_t b = 0; b < loader.num_batches(); ++b) model(loader.batch(0, b, order).images);
  }
  pm->clear_forward_hooks();
  for (double& s : sum) r.mean_activation.push_back(s / double(std::max<int64_t>(1, positions)));
  std::vector<int64_t> idx(size_t(r.channels));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return r.mean_activation[size_t(a)] < r.mean_activation[size_t(b)]; });
  const int64_t k = int64_t(std::floor(double(r.channels) * rate));
  r.pruned.assign(idx.begin(), idx.begin() + k);
  float* m = mask->mask().data<float>();
  for (int64_t c : r.pruned) m[c] = 0.0f;
  return r;
}

}  // namespace dearest::defenses
