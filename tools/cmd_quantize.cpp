// dearest quantize: a float model -> its quantized twin under a preset (with overrides),
// calibrated on the reference calibration set; writes the quantized model file, the audit and a
// JSON summary with float and quantized top-1 (CDA).
// dearest audit: what a quantized model file does, layer by layer (JSON lines and a table).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "data/loader_source.h"
#include "defenses/efrap.h"
#include "data/registry.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "nn/trainer.h"
#include "quant/audit.h"
#include "quant/calibration.h"
#include "quant/integer_model.h"
#include "quant/serialize.h"
#include "tensor/runtime.h"
#include "tools/backdoor_options.h"
#include "tools/cli.h"
#include "tools/observer_options.h"

namespace dearest::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

quant::QuantConfig config_from_options(const po::variables_map& vm) {
  quant::QuantConfig c = quant::preset(vm["preset"].as<std::string>(), vm["bits"].as<int>(), vm["abits"].as<int>());
  if (vm["first-last-bits"].as<int>() >= 0) {
    const int f = vm["first-last-bits"].as<int>();
    DEAREST_CHECK(f == 0 || (f >= 2 && f <= 8), "--first-last-bits: expected 0 (like the others) or 2..8, got ", f);
    c.first_last_bits = f;
  }
  const std::string fold = vm["fold-bn"].as<std::string>();
  DEAREST_CHECK(fold == "auto" || fold == "true" || fold == "false", "--fold-bn: expected auto, true or false, got \"", fold, "\"");
  if (fold != "auto") c.fold_bn = fold == "true";
  if (vm.count("layers")) c.layers = split_list(vm["layers"].as<std::string>());
  if (vm.count("skip")) c.skip = split_list(vm["skip"].as<std::string>());
  if (vm.count("rounding")) {
    const quant::Rounding r = quant::parse_rounding(vm["rounding"].as<std::string>());
    DEAREST_CHECK(!quant::uses_mask(r), "--rounding: ", quant::rounding_name(r), " rounding needs a per-weight mask (EFRAP, the adaptive attacks), not an option");
    c.conv_weight.rounding = c.linear_weight.rounding = r;
  }
  apply_observer_options(vm, c);
  if (vm.count("placement")) {
    const std::string p = vm["placement"].as<std::string>();
    DEAREST_CHECK(p == "producer" || p == "consumer", "--placement: expected producer or consumer, got \"", p, "\"");
    c.placement = p == "producer" ? quant::Placement::Producer : quant::Placement::Consumer;
  }
  return c;
}

quant::CalibOptions calib_from_options(const po::variables_map& vm) {
  quant::CalibOptions o;
  o.size = vm["calib-size"].as<int64_t>();
  o.batch = vm["calib-batch"].as<int64_t>();
  o.pool = vm["calib-pool"].as<double>();
  o.augment = vm["calib-augment"].as<bool>();
  if (vm.count("calib-split")) o.split = vm["calib-split"].as<std::string>();
  o.seed = vm["seed"].as<uint64_t>();
  return o;
}

nn::EvalResult evaluate_on(nn::Module& m, const data::DataSpec& dspec, int64_t batch, int64_t limit) {
  data::DatasetPtr ds = data::open_dataset(dspec, data::test_split(dspec.kind));
  if (limit > 0 && limit < ds->size()) ds = data::index_range(ds, 0, limit);
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  data::LoaderSource src(std::make_shared<data::DataLoader>(ds, data::test_transform(dspec.kind), lo));
  return nn::evaluate(m, src, false);
}

void write_audit(const std::string& dir, const std::vector<quant::WeightAudit>& w,
                 const std::vector<quant::ActivationAudit>& a) {
  std::ofstream jl(dir + "/audit.jsonl.tmp");
  for (auto& x : w) jl << quant::to_json(x).dump() << "\n";
  for (auto& x : a) jl << quant::to_json(x).dump() << "\n";
  jl.close();
  std::filesystem::rename(dir + "/audit.jsonl.tmp", dir + "/audit.jsonl");
  std::ofstream t(dir + "/audit.txt.tmp");
  t << quant::weight_table(w) << "\n" << quant::activation_table(a);
  t.close();
  std::filesystem::rename(dir + "/audit.txt.tmp", dir + "/audit.txt");
}

int quantize(const po::variables_map& vm) {
  quant::QuantConfig cfg = config_from_options(vm);  // option errors before any file is read
  nn::LoadedModel lm = nn::load_model(vm["model"].as<std::string>(), vm.count("arch") ? vm["arch"].as<std::string>() : "");
  const data::DataSpec dspec = data::parse_data_spec(vm["data"].as<std::string>());
  const std::string out = vm["out"].as<std::string>();
  const int64_t in = lm.spec.get("input", 32);
  DEAREST_CHECK(in == data::image_size_of(dspec.kind), "quantize: the model takes ", in, "x", in, " inputs but ", dspec.kind,
                " images are ", data::image_size_of(dspec.kind), "x", data::image_size_of(dspec.kind));
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> calib;
  if (cfg.a_bits > 0 && !cfg.dynamic_acts) calib = quant::calibration_batches(dspec, calib_from_options(vm));
  const double t_data = seconds_since(t0);
  auto t1 = std::chrono::steady_clock::now();
  quant::QuantizedModel q(lm.spec, *lm.model, cfg);
  q.calibrate(calib);
  const double t_calib = seconds_since(t1);
  std::cerr << "quantized " << lm.spec.str() << ": " << cfg.describe() << "\n  " << q.layers().size() << " layers, "
            << q.activation_quantizers().size() << " activation quantizers, calibration " << t_calib << " s on "
            << calib.size() << " batches\n";
  std::filesystem::create_directories(out);
  std::map<std::string, std::string> qmeta = {{"source_model", vm["model"].as<std::string>()},
                                              {"dataset", vm["data"].as<std::string>()},
                                              {"quantize_config", config_text(vm)},
                                              {"runtime", runtime_manifest_json()}};
  copy_backdoor_metadata(lm.meta, qmeta);
  quant::save_quantized(out + "/quantized.safetensors", q, qmeta);
  auto wa = quant::audit_weights(q);
  std::vector<Tensor> audit_batches(calib.begin(), calib.begin() + std::min<size_t>(calib.size(), 4));
  auto aa = quant::audit_activations(q, audit_batches);
  write_audit(out, wa, aa);
  Json sum = Json::object();
  sum.set("model", vm["model"].as<std::string>());
  sum.set("arch", lm.spec.str());
  sum.set("quantization", cfg.describe());
  sum.set("config", quant::config_to_json(cfg));
  sum.set("layers", int64_t(q.layers().size()));
  sum.set("activation_quantizers", int64_t(q.activation_quantizers().size()));
  sum.set("calibration_images", int64_t(calib.empty() ? 0 : calib.size() * calib[0].size(0)));
  sum.set("calibration_data_seconds", t_data);
  sum.set("calibration_seconds", t_calib);
  if (vm["eval"].as<bool>()) {
    const int64_t eb = vm["eval-batch"].as<int64_t>(), lim = vm["eval-limit"].as<int64_t>();
    auto t2 = std::chrono::steady_clock::now();
    nn::EvalResult f = evaluate_on(*lm.model, dspec, eb, lim);
    nn::EvalResult r = evaluate_on(q.model(), dspec, eb, lim);
    sum.set("float_top1", f.top1);
    sum.set("quantized_top1", r.top1);
    sum.set("eval_images", r.samples);
    sum.set("eval_seconds", seconds_since(t2));
    std::cerr << "  top-1 float " << 100 * f.top1 << "%, quantized " << 100 * r.top1 << "% (" << r.samples
              << " test images)\n";
  }
  sum.set("runtime", Json::parse(runtime_manifest_json()));
  {
    std::ofstream s(out + "/summary.json.tmp");
    s << sum.dump(2) << "\n";
  }
  std::filesystem::rename(out + "/summary.json.tmp", out + "/summary.json");
  std::cout << sum.dump(2) << "\n";
  return 0;
}

int audit(const po::variables_map& vm) {
  quant::LoadedQuantized lq = quant::load_quantized(vm["quantized"].as<std::string>());
  quant::QuantizedModel& q = *lq.model;
  auto wa = quant::audit_weights(q);
  std::vector<Tensor> batches;
  if (vm.count("data")) {
    quant::CalibOptions o;
    o.size = vm["images"].as<int64_t>();
    o.batch = std::min<int64_t>(o.size, 64);
    o.augment = false;
    o.pool = 1.0;
    o.split = data::test_split(data::parse_data_spec(vm["data"].as<std::string>()).kind);
    batches = quant::calibration_batches(data::parse_data_spec(vm["data"].as<std::string>()), o);
  }
  auto aa = quant::audit_activations(q, batches);
  const std::string why = quant::IntegerModel::unsupported_reason(q);
  quant::IntegerComparison ic;
  const bool integer = !batches.empty() && why.empty() && vm["integer"].as<bool>();
  const std::string rq = vm["requant"].as<std::string>();
  DEAREST_CHECK(rq == "gemmlowp" || rq == "single", "--requant: expected gemmlowp or single, got \"", rq, "\"");
  if (integer) ic = quant::compare_integer(q, batches, rq == "gemmlowp" ? quant::Requant::Gemmlowp : quant::Requant::Single);
  if (vm.count("json")) {
    for (auto& x : wa) std::cout << quant::to_json(x).dump() << "\n";
    for (auto& x : aa) std::cout << quant::to_json(x).dump() << "\n";
    if (integer) std::cout << quant::to_json(ic).dump() << "\n";
    if (lq.meta.count("efrap_report"))
      for (auto& r : Json::parse(lq.meta.at("efrap_report")).items()) std::cout << r.dump() << "\n";
  } else {
    std::cout << q.spec().str() << ": " << q.config().describe() << "\n\n"
              << quant::weight_table(wa) << "\n"
              << quant::activation_table(aa);
    if (batches.empty()) std::cout << "(activation clamping and SQNR, and the integer-only comparison, need --data)\n";
    else if (!why.empty()) std::cout << "\nno integer-only comparison: " << why << "\n";
    else if (integer) std::cout << "\n" << quant::integer_table(ic);
    if (lq.meta.count("efrap_report"))
      std::cout << "\nEFRAP's learned rounding, per layer (flip rate: weights whose integer differs from nearest rounding's;\n"
                   "L_A: the unit's activation error on the calibration set):\n\n"
                << defenses::efrap_layer_table(defenses::efrap_reports_from_json(Json::parse(lq.meta.at("efrap_report"))));
  }
  return 0;
}

}  // namespace

Command quantize_command() {
  return {"quantize", "quantize a model: --model M --data cifar10:PATH --preset mqbench --bits 4 --out DIR",
          [](po::options_description& d) {
            d.add_options()("model", po::value<std::string>()->required(), "float model (safetensors)")
                ("arch", po::value<std::string>(), "architecture, for files without dearest metadata")
                ("data", po::value<std::string>()->required(), "dataset spec: calibration and evaluation data")
                ("out", po::value<std::string>()->required(), "output folder: quantized.safetensors, summary.json, audit")
                ("preset", po::value<std::string>()->default_value("mqbench"),
                 "mqbench, qu-anti-zation, tflite-int8, tflite-dynamic, pytorch-fbgemm, pytorch-qnnpack, comp-artifact")
                ("bits", po::value<int>()->default_value(8), "weight bits (2..8)")
                ("abits", po::value<int>()->default_value(-1), "activation bits (2..8; 0 = float; -1 = the preset's)")
                ("first-last-bits", po::value<int>()->default_value(-1), "bits of the first conv and last linear (0 = like the others; -1 = the preset's)")
                ("fold-bn", po::value<std::string>()->default_value("auto"), "fold batch norm into convs: auto (the preset's), true, false")
                ("layers", po::value<std::string>(), "quantize only layers under these comma-separated name prefixes")
                ("skip", po::value<std::string>(), "never quantize layers under these prefixes")
                ("rounding", po::value<std::string>(), "weight rounding: half-even, half-up, half-away, floor, ceil, flipped");
            add_observer_options(d);
            d.add_options()("placement", po::value<std::string>(), "activation quantizers: producer (MQBench) or consumer")
                ("calib-size", po::value<int64_t>()->default_value(1024), "calibration images")
                ("calib-batch", po::value<int64_t>()->default_value(32), "calibration batch size")
                ("calib-pool", po::value<double>()->default_value(0.05, "0.05"), "draw them from this leading fraction of the split")
                ("calib-augment", po::value<bool>()->default_value(true), "training augmentation on calibration images")
                ("calib-split", po::value<std::string>(), "split to calibrate on (default: the training split)")
                ("seed", po::value<uint64_t>()->default_value(1005), "calibration shuffle and augmentation seed")
                ("eval", po::value<bool>()->default_value(true), "evaluate float and quantized top-1 on the test split")
                ("eval-batch", po::value<int64_t>()->default_value(256), "evaluation batch size (matters for per-batch presets)")
                ("eval-limit", po::value<int64_t>()->default_value(0), "evaluate on the first N test images only (0 = all)");
          },
          quantize};
}

Command audit_command() {
  return {"audit", "per-layer report of a quantized model: --quantized DIR/quantized.safetensors [--data ...]",
          [](po::options_description& d) {
            d.add_options()("quantized", po::value<std::string>()->required(), "quantized model file (dearest quantize)")
                ("data", po::value<std::string>(), "dataset spec: activation statistics on its test images")
                ("images", po::value<int64_t>()->default_value(256), "test images for the activation statistics and the integer comparison")
                ("integer", po::value<bool>()->default_value(true), "compare the integer-only model with the emulation (when the scheme allows)")
                ("requant", po::value<std::string>()->default_value("gemmlowp"),
                 "integer requantization: gemmlowp (TFLite's two roundings) or single (one rounding)")
                ("json", "JSON lines instead of the table");
          },
          audit};
}

}  // namespace dearest::cli
