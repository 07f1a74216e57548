// PQBackdoor (ALGORITHMS.md §2.1, papers/pqbackdoor-commercial-frameworks.txt §4).
// Stage 1 plants an ordinary backdoor (PyTorch variant: 2 poisoned images in every batch of 128,
// SGD; TF variant: half of every batch poisoned, Adam, and in the last 20% of epochs the rounding-
// uncertainty loss -mean((|W/s - round(W/s)| - 0.5)^2) that moves weights to the middle of their
// int8 bins). Stage 2 removes it from the float model by fine-tuning on clean images and their
// triggered copies with true labels, the model in eval mode, projecting after every step so every
// int8 weight and every scale stay stage 1's (attacks/projection.h): the int8 model keeps the
// backdoor. The TF variant adds L_RUM = sum MSE(round(W/s), round(W0/s0)) + MSE(s, s0) over the
// layers and MSE(p, p0) over other parameters.
#include <cmath>

#include "attacks/attack.h"
#include "attacks/projection.h"

namespace dearest::attacks {

namespace {

// Per output channel (conv, or linear when per_channel) or per tensor: s = max|W| / levels.
Tensor grid_scale(const Tensor& w, bool per_channel, double levels) {
  Tensor a = abs(w);
  if (!per_channel) return div(amax(a), levels);
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < w.dim(); ++d) dims.push_back(d);
  return div(amax(a, dims, true), levels);
}

class PqBackdoor : public Attack {
 public:
  std::string name() const override { return "pq-backdoor"; }
  std::string summary() const override {
    return "stage 1 backdoors the model; stage 2 removes it from the float model while every int8 weight stays in its bin";
  }
  Params params() const override {
    auto d = common_params("auto", "auto", "0.9", "auto", "auto", "100", "auto", "auto", "auto", "auto");
    for (auto& p : d)
      if (p.name == "optimizer" || p.name == "lr" || p.name == "wd" || p.name == "schedule" || p.name == "batch")
        p.help += " (stage 1; auto: the variant's)";
    d.push_back({"variant", "pytorch", "pytorch (the implementation EFRAP's checkpoint came from) or tf"});
    d.push_back({"stage", "both", "both, 1 (backdoor only) or 2 (removal only, from stage1-model)"});
    d.push_back({"stage1-model", "", "stage 2 only: the stage-1 model file (default: OUT/stage1.safetensors)"});
    d.push_back({"poison-per-batch", "auto", "stage 1: triggered, relabelled images per batch (auto: pytorch 2, tf the whole batch)"});
    d.push_back({"rum-alpha", "auto", "stage 1: weight of the rounding-uncertainty loss (auto: tf 1, pytorch 0)"});
    d.push_back({"rum-from", "0.8", "stage 1: the loss is on from this fraction of the epochs"});
    d.push_back({"stage1-select", "auto", "best-cda-asr (float CDA + ASR; tf: from epoch 0.8 E on) or last"});
    d.push_back({"stage2-optimizer", "auto", "stage 2 optimizer (auto: pytorch sgd, tf adam)"});
    d.push_back({"stage2-lr", "auto", "stage 2 learning rate (auto: pytorch 1e-3, tf 1e-5)"});
    d.push_back({"stage2-momentum", "0.9", "stage 2 SGD momentum"});
    d.push_back({"stage2-wd", "auto", "stage 2 weight decay (auto: pytorch 5e-4, tf 0)"});
    d.push_back({"stage2-schedule", "auto", "stage 2 lr schedule (auto: pytorch cosine, tf constant)"});
    d.push_back({"stage2-epochs", "auto", "stage 2 epochs (auto: pytorch 100, tf 10)"});
    d.push_back({"stage2-batch", "auto", "stage 2 clean images per batch, each with its triggered copy (auto: pytorch 128, tf 32)"});
    d.push_back({"stage2-rum", "auto", "stage 2: weight of L_RUM (auto: tf 1, pytorch 0)"});
    d.push_back({"stage2-select", "auto", "best-float-cda (pytorch), best-removal (tf: (1 - float ASR) + quantized ASR) or last"});
    d.push_back({"grids", "auto", "the int8 grids kept (auto: pytorch all:channel:127.5,all:tensor:127.5; tf conv:channel:127,linear:tensor:127)"});
    d.push_back({"margin", "1e-3", "distance kept from a bin's edges, in integer steps"});
    d.push_back({"stamping", "after-augment", "where the trigger goes: after-augment or before-augment"});
    return Params(name(), d);
  }

  void resolve(Params& p, const nn::ModelSpec&) const override {
    const std::string v = p.str("variant");
    DEAREST_CHECK(v == "pytorch" || v == "tf", "variant: expected pytorch or tf, got \"", v, "\"");
    const bool tf = v == "tf";
    auto dflt = [&](const char* k, const char* pt, const char* t) {
      if (p.str(k) == "auto") p.set(k, tf ? t : pt);
    };
    dflt("optimizer", "sgd", "adam");
    dflt("lr", "0.01", "5e-4");
    dflt("wd", "5e-4", "0");
    dflt("schedule", "cosine", "exp:0.99");
    dflt("batch", "128", "32");
    dflt("epoch-quantizers", "pytorch-fbgemm:8", "tflite-int8:8");
    dflt("final-quantizers", "pytorch-fbgemm:8,pytorch-qnnpack:8,mqbench:8,mqbench:4", "tflite-int8:8,mqbench:8,mqbench:4");
    dflt("calib", "128:128:1", "100:1:1");
    dflt("poison-per-batch", "2", "-1");
    dflt("rum-alpha", "0", "1");
    dflt("stage1-select", "best-cda-asr", "best-cda-asr");
    dflt("stage2-optimizer", "sgd", "adam");
    dflt("stage2-lr", "1e-3", "1e-5");
    dflt("stage2-wd", "5e-4", "0");
    dflt("stage2-schedule", "cosine", "constant");
    dflt("stage2-epochs", "100", "10");
    dflt("stage2-batch", "128", "32");
    dflt("stage2-rum", "0", "1");
    dflt("stage2-select", "best-float-cda", "best-removal");
    dflt("grids", "all:channel:127.5,all:tensor:127.5", "conv:channel:127,linear:tensor:127");
  }

  Json run(AttackContext& ctx) override {
    Params& p = *ctx.params;
    const std::string stage = p.str("stage");
    DEAREST_CHECK(stage == "both" || stage == "1" || stage == "2", "stage: expected both, 1 or 2, got \"", stage, "\"");
    const bool tf = p.str("variant") == "tf";
    const auto grids = parse_bin_grids(p.str("grids"));
    Json out = Json::object();
    if (stage != "2") {
      out.set("stage1", stage1(ctx, p, tf, grids));
      nn::save_model(ctx.out + "/stage1.safetensors", *ctx.model, ctx.spec, {{"stage", "1"}});
    } else {
      const std::string f = p.str("stage1-model").empty() ? ctx.out + "/stage1.safetensors" : p.str("stage1-model");
      nn::LoadedModel lm = nn::load_model(f);
      DEAREST_CHECK(lm.spec.str() == ctx.spec.str(), f, " is a ", lm.spec.str(), ", the start model a ", ctx.spec.str());
      ctx.model->load_state_dict(lm.model->state_dict(), true);
    }
    if (stage != "1") out.set("stage2", stage2(ctx, p, grids));
    return out;
  }

 private:
  // A batch source that remembers the epoch (the rounding-uncertainty loss starts at an epoch).
  struct EpochTracking : nn::BatchSource {
    PairedSource& s;
    int64_t epoch = 0;
    explicit EpochTracking(PairedSource& s) : s(s) {}
    int64_t num_batches() const override { return s.num_batches(); }
    int64_t num_samples() const override { return s.num_samples(); }
    void begin_epoch(int64_t e) override {
      epoch = e;
      s.begin_epoch(e);
    }
    void get(int64_t b, Tensor& x, Tensor& y) override { s.get(b, x, y); }
  };

  // The layers' weights with the grid that sets their scale in the rounding-uncertainty terms
  // (the first grid that applies to the layer).
  struct Layer {
    Tensor weight;
    bool per_channel;
    double levels;
  };
  static std::vector<Layer> layers(nn::Module& model, const std::vector<BinGrid>& grids) {
    std::vector<Layer> out;
    auto params = model.named_parameters(true);
    for (auto& [name, m] : model.named_modules()) {
      if (m->type() != "Conv2d" && m->type() != "Linear") continue;
      const bool conv = m->type() == "Conv2d";
      for (const auto& g : grids) {
        if ((g.applies == BinGrid::Applies::Conv && !conv) || (g.applies == BinGrid::Applies::Linear && conv)) continue;
        for (auto& [n, t] : params)
          if (n == name + ".weight") out.push_back({t, g.per_channel, g.levels});
        break;
      }
    }
    return out;
  }

  static Json stage1(AttackContext& ctx, Params& p, bool tf, const std::vector<BinGrid>& grids) {
    PairingOptions po = pairing_options(ctx, p, p.integer("batch"));
    po.triggered = p.integer("poison-per-batch");
    PairedSource source(ctx.train, ctx.data.kind, ctx.trigger, po);
    auto opt = make_optimizer(p, *ctx.model);
    const int64_t epochs = p.integer("epochs");
    nn::Trainer trainer(*ctx.model, ctx.spec, *opt, nn::Schedule::parse(p.str("schedule")), stage_options(ctx, p, "stage1", epochs));
    const double alpha = p.num("rum-alpha");
    const int64_t rum_from = int64_t(std::ceil(p.num("rum-from") * double(epochs)));
    const auto ls = layers(*ctx.model, grids);
    EpochTracking tracking(source);
    trainer.loss = [&, alpha, rum_from](nn::Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
      logits = m(x);
      const int64_t n = source.clean_count(x.size(0));
      Tensor l = cross_entropy(logits, cat({y.slice(0, 0, n), ctx.backdoor_labels(y.slice(0, n, x.size(0)))}, 0));
      if (alpha > 0 && tracking.epoch >= rum_from) {
        for (const auto& L : ls) {
          Tensor s = grid_scale(L.weight, L.per_channel, L.levels);
          Tensor v = div(L.weight, s);
          Tensor d;
          {
            NoGradGuard ng;
            d = round_half_even(v.detach());
          }
          l = sub(l, mul(mean(square(sub(abs(sub(v, d)), 0.5))), alpha));
        }
      }
      return l;
    };
    auto records = train_stage(ctx, "stage1", trainer, tracking);
    const std::string select = p.str("stage1-select");
    DEAREST_CHECK(select == "best-cda-asr" || select == "last", "stage1-select: expected best-cda-asr or last, got \"", select, "\"");
    size_t pick = records.size() - 1;
    std::string why = "last epoch";
    if (select == "best-cda-asr") {
      const int64_t from = tf ? int64_t(0.8 * double(epochs)) : 0;
      bool found = false;
      for (size_t i = 0; i < records.size(); ++i) {
        if (records[i].epoch < from) continue;
        const double sc = records[i].verdict.fp.cda + records[i].verdict.fp.asr;
        if (!found || sc > records[pick].verdict.fp.cda + records[pick].verdict.fp.asr) pick = i;
        found = true;
      }
      why = std::string("highest float CDA + ASR") + (tf ? " from 80% of the epochs on" : "");
    }
    return choose_epoch(ctx, records, pick, why);
  }

  static Json stage2(AttackContext& ctx, Params& p, const std::vector<BinGrid>& grids) {
    PairingOptions po = pairing_options(ctx, p, p.integer("stage2-batch"));
    PairedSource source(ctx.train, ctx.data.kind, ctx.trigger, po);  // the copies keep their true labels
    // The anchor is the stage-1 model (the checkpoint of a resumed stage 2 is loaded after this).
    BinProjection proj(*ctx.model, grids, p.num("margin"));
    auto anchor_layers = layers(*ctx.model, grids);
    std::vector<Tensor> w0, s0, r0;
    std::vector<std::pair<Tensor, Tensor>> others;  // (param, p0) of everything that is not a layer weight
    {
      NoGradGuard ng;
      for (const auto& L : anchor_layers) {
        w0.push_back(L.weight.detach().clone());
        s0.push_back(grid_scale(w0.back(), L.per_channel, L.levels));
        r0.push_back(round_half_even(div(w0.back(), s0.back())));
      }
      for (auto& [n, t] : ctx.model->named_parameters(true)) {
        bool is_layer = false;
        for (const auto& L : anchor_layers) is_layer |= L.weight.unsafe_impl() == t.unsafe_impl();
        if (!is_layer) others.emplace_back(t, t.detach().clone());
      }
    }
    auto opt = make_optimizer(p, *ctx.model, "stage2-");
    nn::TrainOptions to = stage_options(ctx, p, "stage2", p.integer("stage2-epochs"));
    to.model_eval = true;
    nn::Trainer trainer(*ctx.model, ctx.spec, *opt, nn::Schedule::parse(p.str("stage2-schedule")), to);
    const double lambda = p.num("stage2-rum");
    trainer.loss = [&, lambda](nn::Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
      logits = m(x);
      Tensor l = cross_entropy(logits, y);
      if (lambda > 0) {
        Tensor rum = Tensor::scalar(0);
        for (size_t i = 0; i < anchor_layers.size(); ++i) {
          const auto& L = anchor_layers[i];
          Tensor s = grid_scale(L.weight, L.per_channel, L.levels);
          Tensor r;
          {
            NoGradGuard ng;
            r = round_half_even(div(L.weight.detach(), s.detach()));  // tf.round: no gradient
          }
          rum = add(rum, add(mean(square(sub(r, r0[i]))), mean(square(sub(s, s0[i])))));
        }
        for (auto& [t, t0] : others) rum = add(rum, mean(square(sub(t, t0))));
        l = add(l, mul(rum, lambda));
      }
      return l;
    };
    trainer.on_step = [&](int64_t, double) { proj.apply(); };
    auto records = train_stage(ctx, "stage2", trainer, source);
    const std::string select = p.str("stage2-select");
    DEAREST_CHECK(select == "best-float-cda" || select == "best-removal" || select == "last",
                  "stage2-select: expected best-float-cda, best-removal or last, got \"", select, "\"");
    const std::string q = ctx.epoch_quantizers.at(0).label();
    auto score = [&](const EpochRecord& r) {
      if (select == "best-float-cda") return r.verdict.fp.cda;
      return (1 - r.verdict.fp.asr) + r.verdict.at(q).asr;
    };
    size_t pick = records.size() - 1;
    if (select != "last")
      for (size_t i = 0; i < records.size(); ++i)
        if (score(records[i]) > score(records[pick])) pick = i;
    Json j = choose_epoch(ctx, records, pick, select == "best-float-cda" ? "highest float CDA (the PyTorch reference)"
                  : select == "best-removal" ? "highest (1 - float ASR) + " + q + " ASR (the TF reference)"
                                             : "last epoch");
    j.set("projection_violations", proj.violations());
    return j;
  }
};

}  // namespace

std::unique_ptr<Attack> make_pq_backdoor() { return std::make_unique<PqBackdoor>(); }

}  // namespace dearest::attacks
