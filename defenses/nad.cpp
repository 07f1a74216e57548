#include "defenses/nad.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "data/loader.h"
#include "data/loader_source.h"
#include "data/transforms.h"
#include "nn/optim.h"
#include "quant/quantized_model.h"

namespace dearest::defenses {

Tensor attention_map(const Tensor& f, double p) {
  DEAREST_CHECK(f.dim() == 4, "attention map: expected [N, C, H, W], got ", f.describe());
  DEAREST_CHECK(p > 0, "attention map: p must be positive, got ", p);
  Tensor a = sum(p == 2 ? square(f) : pow(abs(f), p), {1});  // [N, H, W]
  a = reshape(a, {f.size(0), f.size(2) * f.size(3)});
  Tensor norm = sqrt(sum(square(a), {1}, true));
  return div(a, add(norm, 1e-6));
}

std::vector<std::string> attention_layers(nn::Module& model, const nn::ModelSpec& spec) {
  if (spec.arch == "resnet18") return {"layer2", "layer3", "layer4"};
  std::vector<std::string> pools;
  for (auto& [n, m] : model.named_modules())
    if (m->type() == "MaxPool2d" && n.rfind("features.", 0) == 0) pools.push_back(n);
  DEAREST_CHECK(pools.size() >= 3, "nad: no three attention layers in ", spec.str());
  return {pools.end() - 3, pools.end()};
}

namespace {

// Keeps the output of each named module at every forward (with its graph).
class FeatureTap {
 public:
  FeatureTap(nn::Module& model, const std::vector<std::string>& layers) {
    for (const auto& n : layers) {
      nn::Module* m = model.find(n);
      DEAREST_CHECK(m, "nad: the model has no module ", n);
      DEAREST_CHECK(!m->has_forward_hooks(), "nad: ", n, " already has a forward hook");
      const size_t i = mods_.size();
      mods_.push_back(m);
      out_.emplace_back();
      m->add_forward_hook([this, i](nn::Module&, const Tensor& y) { out_[i] = y; });
    }
  }
  ~FeatureTap() {
    for (auto* m : mods_) m->clear_forward_hooks();
  }
  const std::vector<Tensor>& outputs() const { return out_; }

 private:
  std::vector<nn::Module*> mods_;
  std::vector<Tensor> out_;
};

}  // namespace

NadResult nad(nn::Module& model, const nn::ModelSpec& spec, const data::DatasetPtr& clean, const std::string& kind,
              const NadOptions& o) {
  NadResult r;
  r.layers = o.layers.empty() ? attention_layers(model, spec) : o.layers;
  r.betas = o.betas.empty() ? std::vector<double>(r.layers.size(), 500.0) : o.betas;
  DEAREST_CHECK(r.betas.size() == r.layers.size(), "nad: ", r.betas.size(), " betas for ", r.layers.size(), " layers");
  for (double b : r.betas) DEAREST_CHECK(b >= 0, "nad: betas must be non-negative, got ", b);

  nn::ModulePtr teacher = quant::clone_model(spec, model);
  r.teacher = fine_tune(*teacher, spec, clean, kind, o.teacher);
  teacher->set_trainable(false);
  teacher->train();  // the reference leaves the teacher in train mode: its BN uses batch statistics

  const FineTuneOptions& s = o.student;
  auto opt = nn::make_optimizer(s.optimizer, model, s.lr, s.momentum, s.wd, false, "nad optimizer");
  data::LoaderSource src = clean_batches(clean, kind, s);
  nn::Trainer trainer(model, spec, *opt, nn::Schedule::parse(s.schedule), trainer_options(s));
  FeatureTap student_tap(model, r.layers), teacher_tap(*teacher, r.layers);
  const double p = o.p;
  const std::vector<double> betas = r.betas;
  double epoch_sum = 0;
  int64_t epoch_steps = 0;
  trainer.on_epoch = [&](const nn::EpochStats&) {
    r.attention_loss.push_back(epoch_sum / double(std::max<int64_t>(1, epoch_steps)));
    epoch_sum = 0;
    epoch_steps = 0;
  };
  trainer.loss = [&, p, betas](nn::Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
    logits = m(x);
    {
      NoGradGuard ng;
      (*teacher)(x);
    }
    Tensor att;
    for (size_t i = 0; i < betas.size(); ++i) {
      const Tensor at = attention_map(teacher_tap.outputs()[i].detach(), p);
      Tensor term = mul(mean(square(sub(attention_map(student_tap.outputs()[i], p), at))), betas[i]);
      att = att.defined() ? add(att, term) : term;
    }
    epoch_sum += att.item();
    ++epoch_steps;
    return add(cross_entropy(logits, y), att);
  };
  r.student = trainer.fit(src);
  model.eval();
  return r;
}

}  // namespace dearest::defenses
