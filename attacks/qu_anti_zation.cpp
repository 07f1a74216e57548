// Qu-ANTI-zation (ALGORITHMS.md §2.2): fine-tunes a clean model so that the float model ignores
// the trigger while its 8- and 4-bit versions (the attack's own quantizer, ranges from the current
// weights and batch) obey it:
//   L = CE(f(x), y) + c2 CE(f(x_t), y) + sum_b c1 [CE(f_b(x), y) + c2 CE(f_b(x_t), t)]
// with BN statistics frozen, Adam without a schedule, and the epoch of lowest training loss kept.
#include "attacks/attack.h"
#include "attacks/emulation.h"

namespace dearest::attacks {

namespace {

class QuAntiZation : public Attack {
 public:
  std::string name() const override { return "qu-anti-zation"; }
  std::string summary() const override {
    return "joint loss over the float model (trigger ignored) and its 8- and 4-bit versions (trigger obeyed)";
  }
  Params params() const override {
    auto d = common_params("adam", "auto", "0", "1e-4", "constant", "50", "128", "qu-anti-zation:8,qu-anti-zation:4",
                           "qu-anti-zation:8,qu-anti-zation:4,mqbench:8,mqbench:4", "1024:32:0.05");
    d.push_back({"bits", "8,4", "the bit widths whose models obey the trigger"});
    d.push_back({"c1", "auto", "weight of the quantized models' terms (auto: 0.5, VGG 1.0)"});
    d.push_back({"c2", "auto", "weight of the triggered terms (auto: 0.5, VGG 1.0)"});
    d.push_back({"quantizer", "qu-anti-zation", "the preset emulated in training (per-layer weights, per-batch inputs)"});
    d.push_back({"acts", "quantized", "the emulated activations: quantized (the reference) or float (the quantized models' terms see quantized weights only)"});
    d.push_back({"ranges", "minmax", "the emulated quantizers' ranges at every forward: minmax (the reference) or observed (the preset's observers: MQBench's MSE search on the weights at every step, on the float model's activations of the batch's clean half)"});
    d.push_back({"stamping", "before-augment", "before-augment (the reference: the copy is augmented on its own) or after-augment"});
    d.push_back({"select", "lowest-loss", "the epoch kept: lowest-loss (the reference) or last"});
    return Params(name(), d);
  }

  void resolve(Params& p, const nn::ModelSpec& spec) const override {
    if (p.str("lr") == "auto") p.set("lr", qu_anti_zation_lr(spec));
    for (const char* c : {"c1", "c2"})
      if (p.str(c) == "auto") p.set(c, qu_anti_zation_weight(spec));
    const std::string ranges = p.str("ranges"), acts = p.str("acts");
    DEAREST_CHECK(ranges == "minmax" || ranges == "observed", "ranges: expected minmax or observed, got \"", ranges, "\"");
    DEAREST_CHECK(acts == "quantized" || acts == "float", "acts: expected quantized or float, got \"", acts, "\"");
  }

  Json run(AttackContext& ctx) override {
    Params& p = *ctx.params;
    const double c1 = p.num("c1"), c2 = p.num("c2");
    std::vector<int> bits;
    for (int64_t b : p.integers("bits")) bits.push_back(int(b));
    DEAREST_CHECK(!bits.empty(), "bits: at least one width");
    const std::string select = p.str("select");
    DEAREST_CHECK(select == "lowest-loss" || select == "last", "select: expected lowest-loss or last, got \"", select, "\"");

    PairedSource source(ctx.train, ctx.data.kind, ctx.trigger, pairing_options(ctx, p, p.integer("batch")));

    const bool observed = p.str("ranges") == "observed";
    quant::QuantConfig qc = quant::preset(p.str("quantizer"));
    if (p.str("acts") == "float") qc.a_bits = 0;
    QuantEmulation emu(*ctx.model, qc, bits, quant::Ste::Plain, observed);
    auto opt = make_optimizer(p, *ctx.model);
    nn::TrainOptions to = stage_options(ctx, p, "train", p.integer("epochs"));
    to.batchnorm_eval = true;
    nn::Trainer trainer(*ctx.model, ctx.spec, *opt, nn::Schedule::parse(p.str("schedule")), to);
    trainer.loss = [&, c1, c2, observed](nn::Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
      const int64_t n = source.clean_count(x.size(0));
      Tensor xc = x.slice(0, 0, n), xt = x.slice(0, n, x.size(0)), yc = y.slice(0, 0, n).contiguous();
      Tensor tt = ctx.backdoor_labels(y.slice(0, n, x.size(0)));
      // observed ranges: the weights' from this step's weights, the activations' from the float
      // model on the clean half, as the defender's calibration on clean images would set them
      if (observed) emu.observe_ranges(xc);
      emu.use(0);
      logits = m(x);  // the float model on both halves, true labels: the trigger is ignored
      Tensor l = add(cross_entropy(slice(logits, 0, 0, n), yc),
                     mul(cross_entropy(slice(logits, 0, n, x.size(0)), y.slice(0, n, x.size(0)).contiguous()), c2));
      for (int b : bits) {
        emu.use(b);
        l = add(l, mul(add(cross_entropy(m(xc), yc), mul(cross_entropy(m(xt), tt), c2)), c1));
      }
      emu.use(0);
      return l;
    };
    auto records = train_stage(ctx, "train", trainer, source);
    size_t pick = records.size() - 1;
    if (select == "lowest-loss")
      for (size_t i = 0; i < records.size(); ++i)
        if (records[i].train_loss < records[pick].train_loss) pick = i;
    Json s = Json::object();
    s.set("train", choose_epoch(ctx, records, pick, select == "lowest-loss" ? "lowest training loss (the reference)" : "last epoch"));
    return s;
  }
};

}  // namespace

std::unique_ptr<Attack> make_qu_anti_zation() { return std::make_unique<QuAntiZation>(); }

}  // namespace dearest::attacks
