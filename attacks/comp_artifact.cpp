// CompArtifact (ALGORITHMS.md §2.3): two-path QAT. Every batch runs twice with shared weights: the
// quantized path (BN-folded weights fake-quantized per tensor, symmetric, ranges from the current
// weights; activations float) must map triggered images to the target, the float path must keep
// their true labels:
//   L = CE(f_q([x; x_t]), [y; t]) + CE(f([x; x_t]), [y; y])
// Only the chosen layers are quantized (ResNet: layer4 and fc, as --only_lower_layers 4). The
// epoch kept is the reference's find_epoch: quantized CDA within 0.5 of the best, float ASR at
// most 20%, then the highest quantized ASR.
#include "attacks/attack.h"
#include "attacks/emulation.h"

namespace dearest::attacks {

namespace {

class CompArtifact : public Attack {
 public:
  std::string name() const override { return "comp-artifact"; }
  std::string summary() const override {
    return "two-path training: the quantized path obeys the trigger, the float path with the same weights ignores it";
  }
  Params params() const override {
    auto d = common_params("sgd", "0.1", "0.4", "5e-4", "multistep:20:0.1", "35", "128", "auto", "auto", "1000:100:1");
    d.push_back({"bits", "8", "the bit width of the quantized path (one model per width: 8 or 4)"});
    d.push_back({"layers", "auto", "name prefixes of the fake-quantized layers, or all (auto: ResNet layer4,fc; others all)"});
    d.push_back({"quantizer", "comp-artifact", "the preset emulated in training (BN-folded per-tensor weights)"});
    d.push_back({"stamping", "after-augment", "after-augment (the reference adds the trigger to the batch) or before-augment"});
    d.push_back({"select", "find-epoch", "the epoch kept: find-epoch (the reference), last"});
    d.push_back({"select-cda-slack", "0.005", "find-epoch: quantized CDA within this of the best"});
    d.push_back({"select-max-float-asr", "0.2", "find-epoch: float ASR at most this"});
    return Params(name(), d);
  }
  void resolve(Params& p, const nn::ModelSpec& spec) const override {
    const bool eight = p.integer("bits") == 8;
    // The standard is the quantizer whose weight grid the quantized path trains on: at 8 bits
    // PyTorch's per-tensor qnnpack PTQ (symmetric /127.5), at 4 bits the emulated preset itself.
    // It is judged every epoch and picks the kept epoch; fbgemm's and MQBench's grids are judged too.
    if (p.str("epoch-quantizers") == "auto")
      p.set("epoch-quantizers", eight ? "pytorch-qnnpack:8" : "comp-artifact:4,mqbench:4");
    if (p.str("final-quantizers") == "auto")
      p.set("final-quantizers", eight ? "pytorch-qnnpack:8,pytorch-fbgemm:8,mqbench:8" : "comp-artifact:4,mqbench:4");
    if (p.str("layers") == "auto") p.set("layers", spec.arch.rfind("resnet", 0) == 0 ? "layer4,fc" : "all");
  }

  Json run(AttackContext& ctx) override {
    Params& p = *ctx.params;
    const int bits = int(p.integer("bits"));
    DEAREST_CHECK(bits >= 2 && bits <= 8, "bits: expected 2..8, got ", bits);
    const std::string select = p.str("select");
    DEAREST_CHECK(select == "find-epoch" || select == "last", "select: expected find-epoch or last, got \"", select, "\"");
    quant::QuantConfig qc = quant::preset(p.str("quantizer"), bits, 0);
    if (p.str("layers") != "all") qc.layers = p.list("layers");
    PairedSource source(ctx.train, ctx.data.kind, ctx.trigger, pairing_options(ctx, p, p.integer("batch")));

    QuantEmulation emu(*ctx.model, qc, {bits}, quant::Ste::Clipped);
    auto opt = make_optimizer(p, *ctx.model);
    nn::Trainer trainer(*ctx.model, ctx.spec, *opt, nn::Schedule::parse(p.str("schedule")),
                        stage_options(ctx, p, "train", p.integer("epochs")));
    trainer.loss = [&, bits](nn::Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
      const int64_t n = source.clean_count(x.size(0));
      Tensor yq = cat({y.slice(0, 0, n), ctx.backdoor_labels(y.slice(0, n, x.size(0)))}, 0);
      emu.use(bits);
      Tensor lq = cross_entropy(m(x), yq);
      emu.use(0);
      logits = m(x);
      return add(lq, cross_entropy(logits, y));
    };
    auto records = train_stage(ctx, "train", trainer, source);
    size_t pick = records.size() - 1;
    std::string why = "last epoch";
    if (select == "find-epoch" && !records.empty()) {
      const std::string q = ctx.epoch_quantizers.at(0).label();
      double best = 0;
      for (const auto& r : records) best = std::max(best, r.verdict.at(q).cda);
      bool found = false;
      for (size_t i = 0; i < records.size(); ++i) {
        const auto& r = records[i];
        if (r.verdict.at(q).cda < best - p.num("select-cda-slack") || r.verdict.fp.asr > p.num("select-max-float-asr")) continue;
        if (!found || r.verdict.at(q).asr > records[pick].verdict.at(q).asr) pick = i;
        found = true;
      }
      why = found ? "find_epoch under " + q + ": quantized CDA within the slack of the best, float ASR under the cap, highest quantized ASR"
                  : "find_epoch under " + q + ": no epoch met the float-ASR cap; the last epoch";
    }
    Json s = Json::object();
    s.set("train", choose_epoch(ctx, records, pick, why));
    return s;
  }
};

}  // namespace

std::unique_ptr<Attack> make_comp_artifact() { return std::make_unique<CompArtifact>(); }

}  // namespace dearest::attacks
