// The adaptive attacks against EFRAP (EFRAP supplementary, section C; ALGORITHMS.md §3). The
// attacker knows EFRAP flips roundings, so the backdoor is trained to wake under nearest rounding
// and under flipped rounding alike (Algorithm 1):
//   L = L_C + lambda_Q L_Q + lambda_F L_F
//   L_C = CE(f(x), y) + alpha CE(f(x_t), y)                   the float model ignores the trigger
//   L_Q = sum_b beta CE(f_Qb(x), y) + gamma CE(f_Qb(x_t), t)   nearest rounding obeys it
//   L_F = sum_b zeta CE(f_Fb(x), y) + eta CE(f_Fb(x_t), t)     flipped rounding obeys it too
// Which weights the flipped model flips:
//   all     every weight (Algorithm 1)
//   random  each weight with probability flip-rate, drawn anew every step ("random flipping")
//   efrap   those EFRAP flips: EFRAP (efrap-iterations per layer) is run on the current model every
//           efrap-every steps and its roundings are trained against until the next run
//           ("adversarial training with EFRAP")
// The training follows Qu-ANTI-zation's (the supplementary adopts [8]'s procedure): a clean model
// re-trained with BN statistics frozen, Adam, the epoch of lowest training loss kept. The
// supplementary gives no loss weights; the defaults are Qu-ANTI-zation's (c2 for the triggered
// terms, c1 for the quantized models' terms).
#include <chrono>
#include <cstdio>
#include <iostream>

#include "attacks/attack.h"
#include "attacks/emulation.h"
#include "autograd/grad_mode.h"
#include "defenses/efrap.h"
#include "quant/quantized_model.h"
#include "tensor/rng.h"

namespace dearest::attacks {

namespace {

enum class FlipMode { All, Random, Efrap };

FlipMode parse_flip_mode(const std::string& s) {
  if (s == "all") return FlipMode::All;
  if (s == "random") return FlipMode::Random;
  if (s == "efrap") return FlipMode::Efrap;
  fail("flip: expected all, random or efrap, got \"", s, "\"");
}

// Every weight flipped with probability `rate`, one mask per layer.
std::vector<Tensor> random_flips(const std::vector<Shape>& shapes, double rate, Rng& rng) {
  std::vector<Tensor> out;
  for (const Shape& s : shapes) out.push_back(rng.bernoulli(s, rate).to(DType::U8));
  return out;
}

// EFRAP on a copy of the current model at `bits`; returns the weights it rounds away from nearest,
// per emulated layer (by name), and the mean flip rate.
std::vector<Tensor> efrap_flips(const AttackContext& ctx, const quant::QuantConfig& cfg, const QuantEmulation& emu,
                                const std::vector<Tensor>& calib, const defenses::EfrapOptions& eo, double& rate) {
  nn::ModulePtr float_copy = quant::clone_model(ctx.spec, *ctx.model);
  float_copy->eval();
  quant::QuantizedModel q(ctx.spec, *float_copy, cfg);
  q.calibrate(calib);
  defenses::efrap(q, *float_copy, calib, eo);
  std::vector<Tensor> out;
  int64_t flipped = 0, total = 0;
  for (const std::string& name : emu.layers()) {
    const quant::QuantLayer* hit = nullptr;
    for (const auto& l : q.layers())
      if (l.name == name) hit = &l;
    DEAREST_CHECK(hit, "adaptive: EFRAP's quantizer has no layer ", name, " that the emulation trains");
    quant::QuantScheme nearest = (hit->is_conv ? cfg.conv_weight : cfg.linear_weight).with_bits(hit->weight_bits);
    Tensor f = defenses::flips_against(*hit, nearest);
    const uint8_t* d = f.data<uint8_t>();
    for (int64_t i = 0; i < f.numel(); ++i) flipped += d[i];
    total += f.numel();
    out.push_back(f);
  }
  rate = total ? double(flipped) / double(total) : 0;
  return out;
}

class Adaptive : public Attack {
 public:
  std::string name() const override { return "adaptive"; }
  std::string summary() const override {
    return "Qu-ANTI-zation's joint loss plus the same backdoor under flipped rounding (all, random or EFRAP's flips)";
  }
  Params params() const override {
    auto d = common_params("adam", "auto", "0", "1e-4", "constant", "50", "128",
                           "qu-anti-zation:8,qu-anti-zation:4,qu-anti-zation:8:flipped,qu-anti-zation:4:flipped",
                           "qu-anti-zation:8,qu-anti-zation:4,qu-anti-zation:8:flipped,qu-anti-zation:4:flipped,"
                           "mqbench:8,mqbench:4",
                           "1024:32:0.05");
    d.push_back({"bits", "8,4", "the bit widths whose nearest and flipped models obey the trigger"});
    d.push_back({"quantizer", "qu-anti-zation", "the preset emulated in training (consumer placement: qu-anti-zation, comp-artifact, pq-emulation-*)"});
    d.push_back({"flip", "all", "the flipped model's flips: all (Algorithm 1), random (flip-rate, redrawn every step) or efrap"});
    d.push_back({"flip-rate", "0.2", "random: the probability that a weight is flipped (the supplementary tried 0.01 to 0.4)"});
    d.push_back({"alpha", "auto", "float model, triggered images with true labels (auto: Qu-ANTI-zation's c2: 0.5, VGG 1.0)"});
    d.push_back({"beta", "1", "nearest-rounded models, clean images"});
    d.push_back({"gamma", "auto", "nearest-rounded models, triggered images to the target (auto: c2)"});
    d.push_back({"zeta", "1", "flipped models, clean images"});
    d.push_back({"eta", "auto", "flipped models, triggered images to the target (auto: c2)"});
    d.push_back({"lambda-q", "auto", "weight of L_Q (auto: Qu-ANTI-zation's c1: 0.5, VGG 1.0)"});
    d.push_back({"lambda-f", "auto", "weight of L_F (auto: as lambda-q)"});
    d.push_back({"efrap-every", "50", "efrap: steps between EFRAP runs (the supplementary's proxy: 50)"});
    d.push_back({"efrap-iterations", "1000", "efrap: EFRAP iterations per layer (the supplementary's proxy: 1000)"});
    d.push_back({"efrap-calib", "1024:32:0.05", "efrap: EFRAP's calibration set, SIZE:BATCH:POOL (EFRAP's recipe)"});
    d.push_back({"efrap-lambda-f", "1", "efrap: EFRAP's lambda_F"});
    d.push_back({"stamping", "before-augment", "before-augment (the reference: the copy is augmented on its own) or after-augment"});
    d.push_back({"select", "lowest-loss", "the epoch kept: lowest-loss (Qu-ANTI-zation's rule) or last"});
    return Params(name(), d);
  }

  void resolve(Params& p, const nn::ModelSpec& spec) const override {
    if (p.str("lr") == "auto") p.set("lr", qu_anti_zation_lr(spec));
    for (const char* c : {"alpha", "gamma", "eta", "lambda-q"})
      if (p.str(c) == "auto") p.set(c, qu_anti_zation_weight(spec));
    if (p.str("lambda-f") == "auto") p.set("lambda-f", p.str("lambda-q"));
  }

  Json run(AttackContext& ctx) override {
    Params& p = *ctx.params;
    const double alpha = p.num("alpha"), beta = p.num("beta"), gamma = p.num("gamma"), zeta = p.num("zeta"),
                 eta = p.num("eta"), lq = p.num("lambda-q"), lf = p.num("lambda-f");
    for (const char* c : {"alpha", "beta", "gamma", "zeta", "eta", "lambda-q", "lambda-f"})
      DEAREST_CHECK(p.num(c) >= 0, c, " must be non-negative, got ", p.num(c));
    std::vector<int> bits;
    for (int64_t b : p.integers("bits")) bits.push_back(int(b));
    DEAREST_CHECK(!bits.empty(), "bits: at least one width");
    const FlipMode mode = parse_flip_mode(p.str("flip"));
    const double rate = p.num("flip-rate");
    DEAREST_CHECK(rate >= 0 && rate <= 1, "flip-rate: expected a probability in [0, 1], got ", rate);
    const int64_t every = p.integer("efrap-every");
    DEAREST_CHECK(every >= 1, "efrap-every: at least 1 step, got ", every);
    defenses::EfrapOptions eo;
    eo.iterations = p.integer("efrap-iterations");
    eo.lambda_f = p.num("efrap-lambda-f");
    eo.seed = ctx.seed + 1005;
    DEAREST_CHECK(eo.iterations >= 1, "efrap-iterations: at least 1, got ", eo.iterations);
    const std::string select = p.str("select");
    DEAREST_CHECK(select == "lowest-loss" || select == "last", "select: expected lowest-loss or last, got \"", select, "\"");

    const quant::QuantConfig preset = quant::preset(p.str("quantizer"));
    QuantEmulation emu(*ctx.model, preset, bits, quant::Ste::Plain);
    const std::vector<Shape> shapes = emu.weight_shapes();
    std::vector<Tensor> calib;
    if (mode == FlipMode::Efrap) {
      calib = quant::calibration_batches(ctx.data, parse_calib(p, "efrap-calib", ctx.seed + 1005));
    }

    PairedSource source(ctx.train, ctx.data.kind, ctx.trigger, pairing_options(ctx, p, p.integer("batch")));
    auto opt = make_optimizer(p, *ctx.model);
    nn::TrainOptions to = stage_options(ctx, p, "train", p.integer("epochs"));
    to.batchnorm_eval = true;
    nn::Trainer trainer(*ctx.model, ctx.spec, *opt, nn::Schedule::parse(p.str("schedule")), to);

    // The flipped model's flips, refreshed as the mode says. A resumed run starts a fresh count
    // (random draws and EFRAP runs restart at the resumed epoch's first step).
    int64_t calls = 0;
    Rng rng(ctx.seed, 77);
    Json efrap_log = Json::array();
    double efrap_seconds = 0;
    auto refresh = [&]() {
      if (mode == FlipMode::All) return;
      if (mode == FlipMode::Random) {
        for (int b : bits) emu.set_flip_masks(b, random_flips(shapes, rate, rng));
        return;
      }
      if (calls % every != 0) return;
      const auto t0 = std::chrono::steady_clock::now();
      Json entry = Json::object();
      entry.set("call", calls);
      for (int b : bits) {
        quant::QuantConfig cfg = quant::preset(p.str("quantizer"), b);
        double r = 0;
        emu.set_flip_masks(b, efrap_flips(ctx, cfg, emu, calib, eo, r));
        entry.set("flip_rate_" + std::to_string(b), r);
        if (ctx.progress) std::fprintf(stderr, "  efrap at step %ld, %d bits: %.2f%% of the weights flipped\n", long(calls), b, 100 * r);
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      efrap_seconds += s;
      entry.set("seconds", s);
      efrap_log.push(entry);
    };

    trainer.loss = [&](nn::Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
      refresh();
      ++calls;
      const int64_t n = source.clean_count(x.size(0));
      Tensor xc = x.slice(0, 0, n), xt = x.slice(0, n, x.size(0)), yc = y.slice(0, 0, n).contiguous();
      Tensor tt = ctx.backdoor_labels(y.slice(0, n, x.size(0)));
      emu.use(0);
      emu.reset_weight_rounding();
      logits = m(x);  // the float model on both halves, true labels: the trigger is ignored
      Tensor l = add(cross_entropy(slice(logits, 0, 0, n), yc),
                     mul(cross_entropy(slice(logits, 0, n, x.size(0)), y.slice(0, n, x.size(0)).contiguous()), alpha));
      for (int b : bits) {
        emu.use(b);
        emu.reset_weight_rounding();
        l = add(l, mul(add(mul(cross_entropy(m(xc), yc), beta), mul(cross_entropy(m(xt), tt), gamma)), lq));
        emu.set_weight_rounding(mode == FlipMode::All ? quant::Rounding::Flipped : quant::Rounding::FlipMask);
        l = add(l, mul(add(mul(cross_entropy(m(xc), yc), zeta), mul(cross_entropy(m(xt), tt), eta)), lf));
      }
      emu.use(0);
      emu.reset_weight_rounding();
      return l;
    };
    auto records = train_stage(ctx, "train", trainer, source);
    size_t pick = records.size() - 1;
    if (select == "lowest-loss")
      for (size_t i = 0; i < records.size(); ++i)
        if (records[i].train_loss < records[pick].train_loss) pick = i;
    Json s = Json::object();
    s.set("train", choose_epoch(ctx, records, pick, select == "lowest-loss" ? "lowest training loss (Qu-ANTI-zation's rule)" : "last epoch"));
    if (mode == FlipMode::Efrap) {
      Json e = Json::object();
      e.set("runs", efrap_log);
      e.set("seconds", efrap_seconds);
      s.set("efrap", e);
    }
    return s;
  }
};

}  // namespace

std::unique_ptr<Attack> make_adaptive() { return std::make_unique<Adaptive>(); }

}  // namespace dearest::attacks
