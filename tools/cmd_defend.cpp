// dearest defend: quantize a possibly backdoored model with a defense and measure what is left of
// the backdoor. efrap learns every weight's rounding (defenses/efrap.h); nearest, flipped, omse,
// ocs and aciq are the standard and robust quantizers it is compared with. Writes the quantized
// model, the per-layer report (EFRAP) and a JSON summary with CDA, ASR and DTM against the
// standard quantizer's ASR. An interrupted EFRAP run resumes at the next layer. The removal
// defenses (ft, fp) run in tools/defend_removal.cpp.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "attacks/judge.h"
#include "defenses/efrap.h"
#include "nn/checkpoint.h"
#include "quant/calibration.h"
#include "quant/serialize.h"
#include "tensor/runtime.h"
#include "tensor/safetensors.h"
#include "tools/backdoor_options.h"
#include "tools/cli.h"
#include "tools/defend_common.h"
#include "tools/observer_options.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace {


const std::vector<std::string> kMethods = {"efrap", "nearest", "flipped", "omse", "ocs", "aciq", "ft", "fp", "nad", "mcr", "ibau"};

quant::QuantConfig method_config(const std::string& method, const std::string& grid, int bits, int abits, int first_last) {
  const bool robust = method == "omse" || method == "ocs" || method == "aciq";
  DEAREST_CHECK(!robust || grid == "mqbench", "--preset: ", method, " is its own quantizer; --preset applies to efrap, nearest and flipped");
  quant::QuantConfig c = quant::preset(robust ? method : grid, bits, abits);
  if (first_last >= 0) c.first_last_bits = first_last;
  if (method == "flipped") c.conv_weight.rounding = c.linear_weight.rounding = quant::Rounding::Flipped;
  return c;
}

defenses::EfrapOptions efrap_options(const po::variables_map& vm) {
  defenses::EfrapOptions o;
  o.iterations = vm["iterations"].as<int64_t>();
  o.lr = vm.count("lr") ? vm["lr"].as<double>() : 1e-3;
  o.lambda_a = vm["lambda-a"].as<double>();
  o.lambda_f = vm["lambda-f"].as<double>();
  o.lambda_p = vm["lambda-p"].as<double>();
  o.weighting = defenses::parse_error_weighting(vm["error-weighting"].as<std::string>());
  o.plateau_window = vm["plateau-window"].as<int64_t>();
  o.plateau_tol = vm["plateau-tol"].as<double>();
  o.seed = vm["seed"].as<uint64_t>();
  o.curve_every = vm["curve-every"].as<int64_t>();
  o.block_wise = vm["preserve"].as<std::string>() == "block";
  DEAREST_CHECK(o.block_wise || vm["preserve"].as<std::string>() == "layer", "--preserve: expected layer or block, got \"",
                vm["preserve"].as<std::string>(), "\"");
  o.objective = defenses::parse_objective_kind(vm["objective"].as<std::string>());
  o.gram_budget_mb = vm["gram-budget-mb"].as<int64_t>();
  return o;
}

// What identifies an EFRAP run for resuming: the model's weights, the quantizer, the options,
// the calibration set.
std::string run_identity(nn::Module& model, const quant::QuantConfig& cfg, const defenses::EfrapOptions& o,
                         const quant::CalibOptions& c, const std::string& data) {
  Json j = Json::object();
  j.set("weights", nn::fingerprint(model));
  j.set("quantizer", quant::config_to_json(cfg));
  j.set("efrap", o.to_json());
  j.set("calib", std::to_string(c.size) + ":" + std::to_string(c.batch) + ":" + std::to_string(c.pool) + ":" +
                     std::to_string(c.seed) + ":" + (c.augment ? "aug" : "plain") + ":" + data +
                     (c.split.empty() || c.split == "train" ? "" : ":" + c.split));  // older runs: no split field
  return j.dump();
}

std::string progress_path(const std::string& out) { return out + "/efrap-progress.safetensors"; }

void save_progress(const std::string& out, const std::string& identity, quant::QuantizedModel& q, size_t done,
                   const std::vector<defenses::EfrapLayerReport>& reports) {
  std::vector<std::pair<std::string, Tensor>> masks;
  for (size_t i = 0; i < done; ++i) masks.emplace_back(q.layers()[i].name, q.layers()[i].weight->up_mask);
  const Json r = defenses::efrap_reports_json(reports);
  write_safetensors(progress_path(out), masks, {{"identity", identity}, {"layers_done", std::to_string(done)}, {"reports", r.dump()}});
}

// Restores the layers a previous run finished; returns how many.
size_t load_progress(const std::string& out, const std::string& identity, quant::QuantizedModel& q,
                     std::vector<defenses::EfrapLayerReport>& reports) {
  if (!std::filesystem::exists(progress_path(out))) return 0;
  SafetensorsFile f = read_safetensors(progress_path(out));
  std::map<std::string, std::string> meta(f.metadata.begin(), f.metadata.end());
  DEAREST_CHECK(meta["identity"] == identity, progress_path(out),
                " belongs to another run (model, quantizer, options or calibration differ): use another --out or --no-resume");
  const size_t done = std::stoul(meta["layers_done"]);
  DEAREST_CHECK(done <= q.layers().size(), progress_path(out), ": ", done, " layers done of ", q.layers().size());
  for (size_t i = 0; i < done; ++i) defenses::set_learned_rounding(q.layers()[i], f.get(q.layers()[i].name));
  reports = defenses::efrap_reports_from_json(Json::parse(meta["reports"]));
  return done;
}

int defend(const po::variables_map& vm) {
  const std::string method = vm["method"].as<std::string>();
  DEAREST_CHECK(std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end(), "defend: unknown method \"", method,
                "\" (efrap, nearest, flipped, omse, ocs, aciq, ft, fp, nad, mcr, ibau)");
  DEAREST_CHECK(!observer_options_given(vm) || method == "efrap" || method == "nearest" || method == "flipped",
                "--weight-observer, --act-observer: apply to efrap, nearest and flipped; ", method,
                is_removal_method(method) ? " is compared under the --standard quantizers as they are" : " sets its own ranges");
  if (is_removal_method(method)) return defend_removal(vm);
  const int bits = vm["bits"].as<int>();
  const int abits = vm["abits"].as<int>() < 0 ? -1 : vm["abits"].as<int>();  // -1: the preset's own choice
  DEAREST_CHECK(bits >= 2 && bits <= 8, "--bits: expected 2..8, got ", bits);
  DEAREST_CHECK(abits <= 0 || (abits >= 2 && abits <= 8), "--abits: expected 0 (float) or 2..8, got ", abits);
  const int first_last = vm["first-last-bits"].as<int>();
  DEAREST_CHECK(first_last < 0 || first_last == 0 || (first_last >= 2 && first_last <= 8),
                "--first-last-bits: expected 0 (like the others) or 2..8, got ", first_last);
  const std::string file = vm["model"].as<std::string>(), out = vm["out"].as<std::string>();
  const bool quiet = vm["quiet"].as<bool>();
  defenses::EfrapOptions eo = efrap_options(vm);  // option errors before any file is read
  quant::QuantConfig cfg = method_config(method, vm["preset"].as<std::string>(), bits, abits, first_last);
  apply_observer_options(vm, cfg);
  if (vm.count("layers")) cfg.layers = split_list(vm["layers"].as<std::string>());
  if (vm.count("skip")) cfg.skip = split_list(vm["skip"].as<std::string>());
  calib_options(vm, "synthetic");  // option errors before any file is read
  const std::string standard_list = vm.count("standard") ? vm["standard"].as<std::string>() : "mqbench:" + std::to_string(bits);
  const std::vector<attacks::QuantTarget> standards = attacks::parse_quant_targets(standard_list);
  DEAREST_CHECK(!standards.empty(), "--standard: give at least one preset:bits");
  std::string trigger_spec;
  attacks::JudgeOptions jo = backdoor_options(vm, file, &trigger_spec);
  nn::LoadedModel lm = nn::load_model(file);
  lm.model->eval();
  const int64_t in = lm.spec.get("input", 32);
  DEAREST_CHECK(in == data::image_size_of(jo.data.kind), "defend: the model takes ", in, "x", in, " inputs but ",
                jo.data.kind, " images are ", data::image_size_of(jo.data.kind), "x", data::image_size_of(jo.data.kind));
  const quant::CalibOptions co = calib_options(vm, jo.data.kind);
  std::filesystem::create_directories(out);

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> calib = quant::calibration_batches(jo.data, co);
  DEAREST_CHECK(!calib.empty(), "defend: the calibration set is empty");
  quant::QuantizedModel q(lm.spec, *lm.model, cfg);
  q.calibrate(calib);
  if (!quiet) std::cerr << method << " on " << lm.spec.str() << ": " << cfg.describe() << ", " << q.layers().size() << " layers, "
                        << calib.size() << " calibration batches of " << calib[0].size(0) << "\n";

  std::vector<defenses::EfrapLayerReport> reports;
  if (method == "efrap") {
    const std::string identity = run_identity(*lm.model, cfg, eo, co, vm["data"].as<std::string>());
    if (vm["no-resume"].as<bool>()) std::filesystem::remove(progress_path(out));
    const size_t done = load_progress(out, identity, q, reports);
    if (done > 0 && !quiet) std::cerr << "resuming " << progress_path(out) << ": " << done << " layers done\n";
    if (!quiet) std::cerr << "efrap: " << eo.describe() << "\n";
    const auto te = std::chrono::steady_clock::now();
    defenses::EfrapProgress pr;
    const int64_t print_every = std::max<int64_t>(1, vm["print-every"].as<int64_t>());
    pr.on_window = [&](size_t li, size_t n, const defenses::CurvePoint& c) {
      if (quiet || (c.iteration % print_every != 0 && c.iteration != eo.iterations)) return;
      std::fprintf(stderr, "layer %zu/%zu %s it %ld/%ld  L_A %.5g  L_F %.5g  L_P %.5g  (%.0f s)\n", li + 1, n,
                   q.layers()[li].name.c_str(), long(c.iteration), long(eo.iterations), c.act, c.flip, c.round,
                   seconds_since(te));
    };
    pr.on_layer = [&](size_t li, const defenses::EfrapLayerReport& r, bool resumable) {
      reports.push_back(r);
      if (resumable) save_progress(out, identity, q, li + 1, reports);
      if (!quiet)
        std::fprintf(stderr, "layer %zu done: %s  flip rate %.2f%%  L_A %.5g -> %.5g  %.1f s\n", li + 1, r.unit.c_str(),
                     100 * r.flip_rate, r.act_error_nearest, r.act_error_learned, r.seconds);
    };
    defenses::efrap(q, *lm.model, calib, eo, pr, done);
  }
  const double defend_seconds = seconds_since(t0);
  std::map<std::string, std::string> qmeta = {{"source_model", file}, {"dataset", vm["data"].as<std::string>()},
                                              {"defense", method}, {"trigger_spec", trigger_spec},
                                              {"target", std::to_string(jo.target)}, {"runtime", runtime_manifest_json()}};
  copy_backdoor_metadata(lm.meta, qmeta);  // the source classes, the attack's name and parameters
  if (method == "efrap") qmeta["efrap_report"] = defenses::efrap_reports_json(reports).dump();
  quant::save_quantized(out + "/quantized.safetensors", q, qmeta);

  // The numbers: float, the standard quantizers the defense is compared with, the defended model.
  const auto t1 = std::chrono::steady_clock::now();
  jo.efrap_calib = co;  // a standard mqbench model calibrates as the defended one did
  attacks::Judge judge(jo);
  const attacks::BackdoorMetrics def = judge.float_metrics(q.model());
  // The float model and the standard quantizers do not depend on the defense: several defenses of
  // one model can share them through --standard-cache.
  const Json key = standard_key(*lm.model, vm["data"].as<std::string>(), trigger_spec, jo, standard_list, co);
  const std::string cache = vm.count("standard-cache") ? vm["standard-cache"].as<std::string>() : "";
  const StandardNumbers sn = standard_numbers(judge, lm.spec, *lm.model, standards, key, cache);
  const attacks::BackdoorMetrics& fp = sn.fp;
  const NamedMetrics& std_metrics = sn.standard;
  const bool cached = sn.cached;
  const double dtm = attacks::dtm(100 * def.cda, 100 * std_metrics[0].second.asr, 100 * def.asr);
  const double eval_seconds = seconds_since(t1);

  Json sum = Json::object();
  sum.set("method", method);
  sum.set("model", file);
  sum.set("arch", lm.spec.str());
  sum.set("data", vm["data"].as<std::string>());
  sum.set("trigger", jo.trigger->describe());
  sum.set("target", int64_t(jo.target));
  sum.set("include_target", jo.include_target);
  sum.set("quantization", cfg.describe());
  sum.set("config", quant::config_to_json(cfg));
  if (method == "efrap") sum.set("efrap", eo.to_json());
  sum.set("calibration_images", int64_t(calib.size()) * calib[0].size(0));
  sum.set("calibration_split", co.split);
  sum.set("calibration_augment", co.augment);
  sum.set("float", metrics_json(fp));
  sum.set("standard", metrics_json(std_metrics));
  sum.set("defended", metrics_json(def));
  sum.set("dtm", dtm);
  sum.set("dtm_standard", std_metrics[0].first);
  sum.set("standard_from_cache", cached);
  sum.set("defend_seconds", defend_seconds);
  sum.set("eval_seconds", eval_seconds);
  sum.set("runtime", Json::parse(runtime_manifest_json()));
  if (method == "efrap") {
    write_text(out + "/report.json", defenses::efrap_reports_json(reports).dump(1) + "\n");
    write_text(out + "/report.md", defenses::efrap_layer_table(reports));
    write_efrap_figures(out, reports);
  }
  write_text(out + "/summary.json", sum.dump(2) + "\n");
  if (vm["json"].as<bool>()) {
    std::cout << sum.dump(2) << "\n";
    return 0;
  }
  if (method == "efrap") std::cout << defenses::efrap_layer_table(reports) << "\n";
  print_result_table(file, jo, sn, {{method + "@" + std::to_string(bits), def}});
  std::printf("(%s in %.0f s; evaluation %.0f s; written to %s)\n", method.c_str(), defend_seconds, eval_seconds, out.c_str());
  return 0;
}

}  // namespace

Command defend_command() {
  return {"defend", "defend a model: defend efrap|nearest|flipped|omse|ocs|aciq|ft|fp|nad|mcr|ibau --model M --data D --bits 4 --out DIR",
          [](po::options_description& d) {
            d.add_options()("method", po::value<std::string>()->required(), "efrap, nearest, flipped, omse, ocs, aciq (quantizers); ft, fp, nad, mcr, ibau (removal, then --standard)")
                ("model", po::value<std::string>()->required(), "the (possibly backdoored) float model")
                ("data", po::value<std::string>()->required(), "dataset spec: calibration (training split) and evaluation (test split)")
                ("out", po::value<std::string>()->required(), "output folder: quantized.safetensors, summary.json, report.json/md")
                ("preset", po::value<std::string>()->default_value("mqbench"),
                 "the quantizer efrap, nearest and flipped round on (mqbench as EFRAP's reference code; efrap-standard as its README's logs; e.g. qu-anti-zation: the attack's own grid)")
                ("bits", po::value<int>()->default_value(4), "weight bits (2..8)")
                ("abits", po::value<int>()->default_value(-1), "activation bits (0 = float; -1 = the preset's: as --bits for mqbench, qu-anti-zation and efrap-standard, 8 for the PyTorch and TFLite presets, float for comp-artifact)")
                ("first-last-bits", po::value<int>()->default_value(-1), "bits of the first conv and last linear (-1: the preset's, 8 for EFRAP)")
                ("layers", po::value<std::string>(), "quantize only layers under these comma-separated name prefixes")
                ("skip", po::value<std::string>(), "never quantize layers under these prefixes (they stay float)");
            add_observer_options(d);
            d.add_options()("standard", po::value<std::string>(), "preset:bits list the defense is compared with; DTM uses the first (default mqbench:BITS)")
                ("standard-cache", po::value<std::string>(), "JSON file keeping the float and standard numbers for other defenses of the same model")
                ("calib-size", po::value<int64_t>()->default_value(1024), "calibration images (EFRAP: 1024)")
                ("calib-batch", po::value<int64_t>()->default_value(32), "calibration batch; EFRAP draws one per iteration")
                ("calib-pool", po::value<double>()->default_value(0.05, "0.05"), "draw them from this leading fraction of the split")
                ("calib-split", po::value<std::string>()->default_value("train"), "the split the calibration images come from: train (EFRAP) or test")
                ("calib-augment", po::value<bool>()->default_value(true), "calibration images with the training transforms (EFRAP: true) or the test ones")
                ("seed", po::value<uint64_t>()->default_value(1005), "calibration and EFRAP batch-draw seed")
                ("iterations", po::value<int64_t>()->default_value(10000), "EFRAP: Adam iterations per layer")
                ("lr", po::value<double>(), "learning rate (EFRAP's Adam: 1e-3; ft, fp: 1e-4)")
                ("lambda-a", po::value<double>()->default_value(1.0, "1.0"), "EFRAP: weight of the activation term L_A")
                ("lambda-f", po::value<double>()->default_value(1.0, "1.0"), "EFRAP: weight of the flip term L_F (0: activation-preserving rounding only)")
                ("lambda-p", po::value<double>()->default_value(0.01, "0.01"), "EFRAP: weight of the discreteness term L_P")
                ("error-weighting", po::value<std::string>()->default_value("element"),
                 "EFRAP: flip term weights: element (reference), neuron-l1, neuron-l2 (paper), none (no error guidance)")
                ("preserve", po::value<std::string>()->default_value("layer"),
                 "EFRAP: activation preservation per layer (reference) or per residual block (layers of a block learned together)")
                ("objective", po::value<std::string>()->default_value("auto"),
                 "EFRAP: how L_A is computed: auto, gram (affine units), fused, graph; the same function, different speed")
                ("gram-budget-mb", po::value<int64_t>()->default_value(3072), "EFRAP: memory the Gram form may use per layer")
                ("plateau-window", po::value<int64_t>()->default_value(0), "EFRAP: stop a layer when the loss over this many iterations stops falling (0: off)")
                ("plateau-tol", po::value<double>()->default_value(1e-3, "1e-3"), "EFRAP: the relative drop that counts as falling")
                ("curve-every", po::value<int64_t>()->default_value(100), "EFRAP: loss curve resolution (iterations)")
                ("print-every", po::value<int64_t>()->default_value(1000), "EFRAP: progress line every this many iterations")
                ("clean-portion", po::value<double>()->default_value(0.05, "0.05"), "ft, fp: the defender's clean data, a seeded random fraction of the training split")
                ("epochs", po::value<int64_t>()->default_value(50), "ft, fp: fine-tuning epochs")
                ("train-batch", po::value<int64_t>()->default_value(64), "ft, fp, nad, mcr: fine-tuning batch")
                ("optimizer", po::value<std::string>()->default_value("adam"), "ft, fp: sgd, adam or adamw")
                ("momentum", po::value<double>()->default_value(0.9, "0.9"), "ft, fp: SGD momentum")
                ("wd", po::value<double>()->default_value(0.0, "0.0"), "ft, fp: weight decay")
                ("schedule", po::value<std::string>()->default_value("constant"), "ft, fp: lr schedule (as dearest train)")
                ("trainable", po::value<std::string>(), "ft, fp: train only the layers under these comma-separated prefixes (default: all)")
                ("bn-eval", po::value<bool>()->default_value(false)->implicit_value(true), "ft, fp: keep the BN statistics frozen")
                ("max-steps", po::value<int64_t>()->default_value(0), "ft, fp: at most this many steps per epoch (0: all)")
                ("prune-rate", po::value<double>()->default_value(0.4, "0.4"), "fp: the fraction of the last stage's channels pruned")
                ("teacher-epochs", po::value<int64_t>()->default_value(50), "nad: the teacher's fine-tuning epochs (--epochs: the student's)")
                ("nad-betas", po::value<std::string>()->default_value("500,500,500"), "nad: attention weight per layer (one value: every layer)")
                ("nad-layers", po::value<std::string>(), "nad: the modules whose outputs are compared (default: layer2,layer3,layer4; VGG: the last three max-pools)")
                ("nad-p", po::value<double>()->default_value(2.0, "2.0"), "nad: the attention map's power p")
                ("curve-epochs", po::value<int64_t>()->default_value(100), "mcr: epochs of the curve's bend (--epochs: the fine-tuned end point's)")
                ("mcr-t", po::value<std::string>()->default_value("0.1,0.9"), "mcr: the points of the curve evaluated; the one of higher DTM is kept")
                ("mcr-l2", po::value<double>()->default_value(5e-4, "5e-4"), "mcr: the curve's l2 regulariser (l2/2 |theta(t)|^2)")
                ("ste", po::value<bool>()->default_value(false)->implicit_value(true), "ft, fp, nad, mcr, ibau: defend the quantized model (the first --standard) through the straight-through estimator")
                ("ibau-rounds", po::value<int64_t>()->default_value(3), "ibau: rounds of (perturbation, unlearning pass) (the supplementary: 3)")
                ("ibau-batch", po::value<int64_t>()->default_value(100), "ibau: unlearning batch")
                ("ibau-k", po::value<int64_t>()->default_value(5), "ibau: fixed-point iterations of the hypergradient")
                ("ibau-fd-eps", po::value<double>()->default_value(1e-3, "1e-3"), "ibau: difference step of the Hessian-vector products (relative)")
                ("no-resume", po::value<bool>()->default_value(false)->implicit_value(true), "start over even if OUT has progress (EFRAP layers, fine-tuning epochs)")
                ("quiet", po::value<bool>()->default_value(false)->implicit_value(true), "no progress on stderr")
                ("json", po::value<bool>()->default_value(false)->implicit_value(true), "print the summary as JSON");
            add_backdoor_options(d);
          },
          defend,
          {"method"}};
}

}  // namespace dearest::cli
