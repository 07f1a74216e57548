// dearest detect neural-cleanse|strip|abs: the backdoor detectors (defenses/neural_cleanse.h,
// defenses/strip.h, defenses/abs.h) on a float model, or on the same model under a victim's
// quantizer (--quantize preset:bits). Writes DIR/summary.json and the figures: Neural Cleanse's
// reverse-engineered mask, pattern and stamped pattern per label (PNG) and its norms (SVG);
// STRIP's entropy histograms of clean and triggered inputs (SVG); ABS's triggers (PNG).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "attacks/judge.h"
#include "data/image.h"
#include "defenses/abs.h"
#include "defenses/neural_cleanse.h"
#include "defenses/strip.h"
#include "nn/checkpoint.h"
#include "tensor/runtime.h"
#include "tools/backdoor_options.h"
#include "tools/cli.h"
#include "tools/defend_common.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace {

// Counts of `v` in `bins` equal bins over [lo, hi], as points (bin centre, fraction) of a line.
std::vector<std::pair<double, double>> histogram(const std::vector<double>& v, double lo, double hi, int bins) {
  std::vector<double> c(size_t(bins), 0.0);
  for (double x : v) {
    int b = hi > lo ? int((x - lo) / (hi - lo) * bins) : 0;
    c[size_t(std::min(bins - 1, std::max(0, b)))] += 1.0 / double(v.size());
  }
  std::vector<std::pair<double, double>> pts;
  for (int b = 0; b < bins; ++b) pts.emplace_back(lo + (b + 0.5) * (hi - lo) / bins, 100 * c[size_t(b)]);
  return pts;
}

Json numbers(const std::vector<double>& v) {
  Json a = Json::array();
  for (double x : v) a.push(x);
  return a;
}

int detect(const po::variables_map& vm) {
  const std::string method = vm["method"].as<std::string>();
  DEAREST_CHECK(method == "neural-cleanse" || method == "strip" || method == "abs", "detect: unknown detector \"", method,
                "\" (neural-cleanse, strip, abs)");
  const std::string file = vm["model"].as<std::string>(), out = vm["out"].as<std::string>();
  const bool quiet = vm["quiet"].as<bool>();
  std::vector<attacks::QuantTarget> quantize;
  if (vm.count("quantize")) {
    quantize = attacks::parse_quant_targets(vm["quantize"].as<std::string>());
    DEAREST_CHECK(quantize.size() == 1, "--quantize: one preset:bits");
  }
  defenses::NeuralCleanseOptions nc;
  nc.steps = vm["nc-steps"].as<int64_t>();
  nc.images = vm["nc-images"].as<int64_t>();
  nc.batch = vm["nc-batch"].as<int64_t>();
  nc.early_stop_patience = vm["nc-early-stop"].as<int64_t>();
  nc.threshold = vm["nc-threshold"].as<double>();
  nc.seed = vm["seed"].as<uint64_t>();
  nc.progress = !quiet;
  DEAREST_CHECK(nc.steps >= 1 && nc.images >= 1 && nc.batch >= 1, "--nc-steps, --nc-images, --nc-batch: positive");
  DEAREST_CHECK(nc.threshold > 0 && nc.threshold <= 1, "--nc-threshold: expected (0, 1]");
  defenses::StripOptions so;
  so.overlays = vm["strip-overlays"].as<int64_t>();
  so.inputs = vm["strip-inputs"].as<int64_t>();
  so.frr = vm["strip-frr"].as<double>();
  so.seed = vm["seed"].as<uint64_t>();
  DEAREST_CHECK(so.overlays >= 1 && so.inputs >= 1, "--strip-overlays, --strip-inputs: positive");
  DEAREST_CHECK(so.frr > 0 && so.frr < 1, "--strip-frr: expected a rate in (0, 1), got ", so.frr);
  const double flag_detection = vm["strip-flag"].as<double>();
  defenses::AbsOptions ao;
  if (vm.count("abs-layers")) ao.layers = split_list(vm["abs-layers"].as<std::string>());
  ao.seeds_per_class = vm["abs-seeds-per-class"].as<int64_t>();
  ao.n_samples = vm["abs-samples"].as<int64_t>();
  ao.top_neurons = vm["abs-top-neurons"].as<int64_t>();
  ao.max_trigger = vm["abs-max-trigger"].as<int64_t>();
  ao.mask_weight = vm["abs-mask-weight"].as<double>();
  ao.lr = vm["abs-lr"].as<double>();
  ao.epochs = vm["abs-epochs"].as<int64_t>();
  ao.batch = vm["abs-batch"].as<int64_t>();
  ao.test_images = vm["abs-images"].as<int64_t>();
  ao.flag = vm["abs-flag"].as<double>();
  ao.seed = vm["seed"].as<uint64_t>();
  ao.progress = !quiet;
  DEAREST_CHECK(ao.seeds_per_class >= 1 && ao.top_neurons >= 1 && ao.max_trigger >= 1 && ao.epochs >= 1 && ao.batch >= 1 &&
                    ao.test_images >= 1,
                "--abs-seeds-per-class, --abs-top-neurons, --abs-max-trigger, --abs-epochs, --abs-batch, --abs-images: positive");
  DEAREST_CHECK(ao.n_samples >= 3, "--abs-samples: at least 3 (0 and two stimulation values)");
  DEAREST_CHECK(ao.flag > 0 && ao.flag <= 1, "--abs-flag: expected (0, 1]");

  // Neural Cleanse and ABS need no trigger: a model without one (a clean model) is scanned as it is.
  const auto meta = file_metadata(file);
  const bool known_backdoor = vm.count("trigger") || meta.count("trigger_spec") || meta.count("attack_params");
  std::string trigger_spec;
  attacks::JudgeOptions jo = backdoor_options(vm, file, &trigger_spec, method == "strip" ? "" : "square:size=1");
  nn::LoadedModel lm = nn::load_model(file);
  lm.model->eval();
  attacks::Judge judge(jo);
  std::unique_ptr<quant::QuantizedModel> q;
  nn::Module* model = lm.model.get();
  if (!quantize.empty()) {
    q = judge.quantized_model(lm.spec, *lm.model, quantize[0]);
    model = &q->model();
  }
  const std::string what = quantize.empty() ? std::string("float") : quantize[0].label();
  std::filesystem::create_directories(out);
  const auto t0 = std::chrono::steady_clock::now();
  Json sum = Json::object();
  sum.set("detector", method);
  sum.set("model", file);
  sum.set("arch", lm.spec.str());
  sum.set("data", vm["data"].as<std::string>());
  sum.set("as", what);
  if (known_backdoor) {
    sum.set("trigger", jo.trigger->describe());
    sum.set("target", int64_t(jo.target));
  } else {
    sum.set("trigger", Json());
    sum.set("target", Json());
  }
  if (method == "neural-cleanse") {
    const auto clean = data::open_dataset(jo.data, data::test_split(jo.data.kind));
    std::vector<int32_t> labels;
    for (int32_t k = 0; k < int32_t(clean->num_classes()); ++k) labels.push_back(k);
    std::vector<double> l1;
    Json per = Json::array();
    std::filesystem::create_directories(out + "/masks");
    Series norms{"|m|_1 per label", {}};
    std::vector<std::vector<Tensor>> sheet(3);
    for (int32_t k : labels) {
      const defenses::ReversedTrigger t = defenses::reverse_engineer(*model, clean, jo.data.kind, k, nc);
      l1.push_back(t.l1);
      norms.points.emplace_back(k, t.l1);
      Json j = Json::object();
      j.set("label", int64_t(k));
      j.set("l1", t.l1);
      j.set("success", t.success);
      j.set("reached", t.reached);
      j.set("steps", t.steps);
      per.push(j);
      const std::string base = out + "/masks/label-" + std::to_string(k);
      const int64_t H = t.mask.size(0), W = t.mask.size(1);
      const Tensor m3 = expand(reshape(t.mask, {1, H, W}), {3, H, W}).contiguous();
      data::write_png(base + "-mask.png", m3);
      data::write_png(base + "-pattern.png", t.pattern);
      data::write_png(base + "-fusion.png", mul(m3, t.pattern).contiguous());
      const int64_t f = H < 64 ? 4 : 1;
      sheet[0].push_back(data::upscale_nearest(m3.to(DType::F32), f));
      sheet[1].push_back(data::upscale_nearest(t.pattern.contiguous(), f));
      sheet[2].push_back(data::upscale_nearest(mul(m3, t.pattern).contiguous(), f));
    }
    // One sheet: masks, patterns and their products, a column per label.
    data::write_png(out + "/masks.png", data::image_grid(sheet));
    const defenses::MadResult mad = defenses::mad_outliers(l1);
    sum.set("labels", per);
    sum.set("median", mad.median);
    sum.set("mad", mad.mad);
    sum.set("anomaly_index", numbers(mad.index));
    Json flagged = Json::array();
    for (size_t i : mad.flagged) flagged.push(int64_t(labels[i]));
    sum.set("flagged_labels", flagged);
    sum.set("min_norm_label", int64_t(labels[mad.min_position]));
    sum.set("model_anomaly_index", mad.model_index);
    sum.set("flagged", mad.model_index > 2);
    write_line_chart(out + "/norms.svg", "Neural Cleanse on " + file + " (" + what + ")", "label", "|m|_1", {norms});
    if (!quiet) {
      std::printf("Neural Cleanse, %s (%s): min-norm label %d, anomaly index %.2f -> %s\n", file.c_str(), what.c_str(),
                  labels[mad.min_position], mad.model_index, mad.model_index > 2 ? "FLAGGED" : "not flagged");
      for (size_t i = 0; i < labels.size(); ++i)
        std::printf("  label %d: |m|_1 %.1f, index %.2f%s\n", labels[i], l1[i], mad.index[i], mad.index[i] > 2 ? " *" : "");
    }
  } else if (method == "abs") {
    const defenses::AbsResult r = defenses::abs_scan(*model, lm.spec, jo.data, ao);
    Json cands = Json::array();
    std::vector<std::vector<Tensor>> sheet(3);
    for (const auto& c : r.candidates) {
      Json j = Json::object();
      j.set("layer", c.layer);
      j.set("neuron", c.neuron);
      j.set("stimulated_label", int64_t(c.label));
      j.set("stimulation_score", c.stimulation);
      j.set("trigger_label", int64_t(c.trigger_label));
      j.set("seed_success", c.seed_success);
      j.set("reasr", c.reasr);
      j.set("mask_pixels", c.mask_pixels);
      cands.push(j);
      const int64_t H = c.mask.size(0), W = c.mask.size(1), f = H < 64 ? 4 : 1;
      const Tensor m3 = expand(reshape(c.mask, {1, H, W}), {3, H, W}).contiguous();
      sheet[0].push_back(data::upscale_nearest(m3, f));
      sheet[1].push_back(data::upscale_nearest(c.pattern.contiguous(), f));
      sheet[2].push_back(data::upscale_nearest(mul(m3, c.pattern).contiguous(), f));
    }
    if (!r.candidates.empty()) data::write_png(out + "/triggers.png", data::image_grid(sheet));
    sum.set("layers", [&] {
      Json a = Json::array();
      for (const auto& l : ao.layers.empty() ? defenses::default_abs_layers(*model, lm.spec) : ao.layers) a.push(l);
      return a;
    }());
    Json sel = Json::array();
    for (const auto& n : r.selected) {
      Json j = Json::object();
      j.set("layer", n.layer);
      j.set("neuron", n.neuron);
      j.set("label", int64_t(n.label));
      j.set("score", n.score);
      sel.push(j);
    }
    sum.set("selected", sel);
    sum.set("candidates", cands);
    sum.set("max_reasr", r.max_reasr);
    if (!r.candidates.empty()) sum.set("max_reasr_label", int64_t(r.candidates[r.best].trigger_label));
    sum.set("flag_reasr", ao.flag);
    sum.set("flagged", r.flagged);
    if (!quiet)
      std::printf("ABS, %s (%s): %zu candidate neurons, max REASR %.3f%s -> %s\n", file.c_str(), what.c_str(),
                  r.candidates.size(), r.max_reasr,
                  r.candidates.empty() ? "" : (" (label " + std::to_string(r.candidates[r.best].trigger_label) + ")").c_str(),
                  r.flagged ? "FLAGGED" : "not flagged");
  } else {
    const attacks::TriggerPtr trig = jo.trigger;
    const defenses::StripResult r =
        defenses::strip(*model, jo.data, [trig](const Tensor& x) { return trig->apply(x); }, jo.target, so);
    double lo = 1e300, hi = -1e300;
    for (double h : r.clean) lo = std::min(lo, h), hi = std::max(hi, h);
    for (double h : r.triggered) lo = std::min(lo, h), hi = std::max(hi, h);
    write_line_chart(out + "/entropy.svg", "STRIP on " + file + " (" + what + ")", "entropy (bits)", "% of inputs",
                     {{"clean", histogram(r.clean, lo, hi, 30)}, {"triggered", histogram(r.triggered, lo, hi, 30)}});
    sum.set("overlays", so.overlays);
    sum.set("frr_asked", so.frr);
    sum.set("threshold", r.threshold);
    sum.set("frr", r.frr);
    sum.set("far", r.far);
    sum.set("detection", r.detection);
    sum.set("flag_detection", flag_detection);
    sum.set("flagged", r.detection >= flag_detection);
    sum.set("clean_entropy", numbers(r.clean));
    sum.set("triggered_entropy", numbers(r.triggered));
    if (!quiet)
      std::printf("STRIP, %s (%s): threshold %.4f at FRR %.2f%%, FAR %.2f%% (detection %.2f%%) -> %s\n", file.c_str(),
                  what.c_str(), r.threshold, 100 * r.frr, 100 * r.far, 100 * r.detection,
                  r.detection >= flag_detection ? "FLAGGED" : "not flagged");
  }
  sum.set("seconds", seconds_since(t0));
  sum.set("runtime", Json::parse(runtime_manifest_json()));
  write_text(out + "/summary.json", sum.dump(2) + "\n");
  if (vm["json"].as<bool>()) std::cout << sum.dump(2) << "\n";
  return 0;
}

}  // namespace

Command detect_command() {
  return {"detect", "backdoor detectors: detect neural-cleanse|strip|abs --model M --data D [--quantize preset:bits] --out DIR",
          [](po::options_description& d) {
            d.add_options()("method", po::value<std::string>()->required(), "neural-cleanse, strip or abs")
                ("model", po::value<std::string>()->required(), "the float model")
                ("data", po::value<std::string>()->required(), "dataset spec (test split: clean images; training split: STRIP's overlays)")
                ("out", po::value<std::string>()->required(), "output folder: summary.json and the figures")
                ("quantize", po::value<std::string>(), "detect on the model under this quantizer (preset:bits) instead of in float")
                ("seed", po::value<uint64_t>()->default_value(0), "draws of images and starts")
                ("nc-steps", po::value<int64_t>()->default_value(1000), "neural-cleanse: steps per label (passes over --nc-images)")
                ("nc-images", po::value<int64_t>()->default_value(1000), "neural-cleanse: clean test images per step")
                ("nc-batch", po::value<int64_t>()->default_value(32), "neural-cleanse: batch")
                ("nc-threshold", po::value<double>()->default_value(0.99, "0.99"), "neural-cleanse: attack success that counts")
                ("nc-early-stop", po::value<int64_t>()->default_value(25), "neural-cleanse: early-stop patience (steps)")
                ("strip-overlays", po::value<int64_t>()->default_value(100), "strip: clean images superimposed on each input")
                ("strip-inputs", po::value<int64_t>()->default_value(500), "strip: clean test inputs (and as many triggered)")
                ("strip-frr", po::value<double>()->default_value(0.01, "0.01"), "strip: the false rejection rate that sets the threshold")
                ("strip-flag", po::value<double>()->default_value(0.5, "0.5"), "strip: the model is flagged when at least this share of triggered inputs is detected")
                ("abs-layers", po::value<std::string>(), "abs: the layers whose neurons are stimulated, comma separated (default: ResNet layer3,layer4; VGG its last two max-pools)")
                ("abs-seeds-per-class", po::value<int64_t>()->default_value(5), "abs: seed images per class (training split)")
                ("abs-samples", po::value<int64_t>()->default_value(5), "abs: stimulation values (0, then max/2, max, 2 max, ...)")
                ("abs-top-neurons", po::value<int64_t>()->default_value(10), "abs: candidate neurons whose trigger is reverse-engineered")
                ("abs-max-trigger", po::value<int64_t>()->default_value(64), "abs: trigger size bound in pixels (the reference's CIFAR setting)")
                ("abs-mask-weight", po::value<double>()->default_value(50, "50"), "abs: weight of the mask size once above the bound")
                ("abs-lr", po::value<double>()->default_value(0.4, "0.4"), "abs: Adam learning rate of the mask and pattern")
                ("abs-epochs", po::value<int64_t>()->default_value(50), "abs: passes over the seed images per candidate")
                ("abs-batch", po::value<int64_t>()->default_value(10), "abs: batch of the reverse engineering")
                ("abs-images", po::value<int64_t>()->default_value(500), "abs: clean test images the REASR is measured on")
                ("abs-flag", po::value<double>()->default_value(0.88, "0.88"), "abs: the model is flagged when the max REASR reaches this")
                ("quiet", po::value<bool>()->default_value(false)->implicit_value(true), "no progress")
                ("json", po::value<bool>()->default_value(false)->implicit_value(true), "print the summary as JSON");
            add_backdoor_options(d);
          },
          detect,
          {"method"}};
}

}  // namespace dearest::cli
