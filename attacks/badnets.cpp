// BadNets (Gu et al.): the conventional, always-on backdoor by data poisoning. A seeded fraction
// of the training images carries the trigger (stamped on the stored image, so it moves with the
// augmentation) and the target label; an optional cover set carries the trigger with true labels.
// Plain cross-entropy training; the last epoch is kept. The backdoor answers in float and
// quantized alike: the reference point that the quantization-conditioned attacks hide from, and
// what the detectors must flag.
#include "attacks/attack.h"
#include "attacks/poison.h"
#include "data/loader_source.h"
#include "data/transforms.h"

namespace dearest::attacks {

namespace {

class BadNets : public Attack {
 public:
  std::string name() const override { return "badnets"; }
  std::string summary() const override {
    return "data poisoning: a fraction of the training images carry the trigger and the target label (active in float too)";
  }
  Params params() const override {
    auto d = common_params("sgd", "0.01", "0.9", "5e-4", "cosine", "10", "128", "pytorch-fbgemm:8",
                           "pytorch-fbgemm:8,mqbench:8,mqbench:4", "1000:100:1");
    for (auto& def : d)
      if (def.name == "batch") def.help = "images per batch (poisoned ones among them)";
    d.push_back({"poison-rate", "0.1", "fraction of the eligible training images (not of the target class; of the source classes if given) poisoned"});
    d.push_back({"cover-rate", "0", "fraction triggered with their true labels (of the non-source classes for a source-specific backdoor)"});
    return Params(name(), d);
  }
  void resolve(Params& p, const nn::ModelSpec&) const override {
    // Checked here, before the start model is judged: a bad rate stops the run before any work.
    for (const char* r : {"poison-rate", "cover-rate"})
      DEAREST_CHECK(p.num(r) >= 0 && p.num(r) <= 1, r, " must be in [0, 1], got ", p.str(r));
    // Without source classes both sets come from the same eligible images.
    DEAREST_CHECK(!p.str("source-classes").empty() || p.num("poison-rate") + p.num("cover-rate") <= 1,
                  "poison-rate + cover-rate exceed 1 (", p.str("poison-rate"), " + ", p.str("cover-rate"),
                  "): both are drawn from the same images");
  }

  Json run(AttackContext& ctx) override {
    Params& p = *ctx.params;
    PoisonOptions po;
    po.rate = p.num("poison-rate");
    po.cover_rate = p.num("cover-rate");
    po.target = ctx.target;
    po.seed = ctx.seed;
    po.source_classes = ctx.sources;
    const PoisonSplit split = poison_split(*ctx.train, po);
    auto tf = data::train_transform(ctx.data.kind);
    if (!p.str("jpeg-augment").empty()) tf = tf->with_front(data::parse_random_jpeg(p.str("jpeg-augment"), "jpeg-augment"));
    data::LoaderOptions lo;
    lo.batch_size = p.integer("batch");
    lo.shuffle = true;
    lo.seed = ctx.seed;
    data::LoaderSource source(std::make_shared<data::DataLoader>(
        poisoned_view(ctx.train, ctx.trigger, split, ctx.target), tf, lo));

    auto opt = make_optimizer(p, *ctx.model);
    nn::Trainer trainer(*ctx.model, ctx.spec, *opt, nn::Schedule::parse(p.str("schedule")),
                        stage_options(ctx, p, "train", p.integer("epochs")));
    auto records = train_stage(ctx, "train", trainer, source);
    Json s = Json::object();
    Json t = choose_epoch(ctx, records, records.size() - 1, "last epoch");
    t.set("poisoned_images", int64_t(split.poison.size()));
    t.set("cover_images", int64_t(split.cover.size()));
    s.set("train", t);
    return s;
  }
};

}  // namespace

std::unique_ptr<Attack> make_badnets() { return std::make_unique<BadNets>(); }

}  // namespace dearest::attacks
