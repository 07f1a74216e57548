// dearest defend ft|fp: the backdoor-removal baselines (defenses/removal.h). The defense edits the
// float model with a small clean subset of the training split; the victim then quantizes the
// result with its standard quantizer, so the numbers that count are the defended model's under
// each --standard quantizer, with DTM against the undefended model's ASR under the first.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "defenses/ibau.h"
#include "defenses/mcr.h"
#include "defenses/nad.h"
#include "defenses/removal.h"
#include "nn/checkpoint.h"
#include "quant/quantized_model.h"
#include "quant/serialize.h"
#include "tensor/runtime.h"
#include "tools/backdoor_options.h"
#include "tools/cli.h"
#include "tools/defend_common.h"

namespace dearest::cli {

bool is_removal_method(const std::string& m) {
  return m == "ft" || m == "fp" || m == "nad" || m == "mcr" || m == "ibau";
}

namespace {

defenses::FineTuneOptions fine_tune_options(const po::variables_map& vm) {
  defenses::FineTuneOptions o;
  o.optimizer = vm["optimizer"].as<std::string>();
  o.lr = vm.count("lr") ? vm["lr"].as<double>() : 1e-4;
  o.momentum = vm["momentum"].as<double>();
  o.wd = vm["wd"].as<double>();
  o.schedule = vm["schedule"].as<std::string>();
  o.epochs = vm["epochs"].as<int64_t>();
  o.batch = vm["train-batch"].as<int64_t>();
  o.max_steps = vm["max-steps"].as<int64_t>();
  if (vm.count("trainable")) o.trainable = split_list(vm["trainable"].as<std::string>());
  o.batchnorm_eval = vm["bn-eval"].as<bool>();
  o.resume = !vm["no-resume"].as<bool>();
  o.progress = !vm["quiet"].as<bool>();
  o.seed = vm["seed"].as<uint64_t>();
  DEAREST_CHECK(o.epochs >= 0, "--epochs: expected >= 0, got ", o.epochs);
  DEAREST_CHECK(o.batch >= 1, "--train-batch: expected >= 1, got ", o.batch);
  DEAREST_CHECK(o.lr > 0, "--lr: expected a positive learning rate, got ", o.lr);
  DEAREST_CHECK(o.optimizer == "sgd" || o.optimizer == "adam" || o.optimizer == "adamw",
                "--optimizer: expected sgd, adam or adamw, got \"", o.optimizer, "\"");
  nn::Schedule::parse(o.schedule);  // errors before any work
  return o;
}

Json epochs_json(const std::vector<nn::EpochStats>& h) {
  Json a = Json::array();
  for (const auto& e : h) {
    Json j = Json::object();
    j.set("epoch", e.epoch + 1);
    j.set("train_loss", e.train_loss);
    j.set("train_top1", 100 * e.train_top1);
    j.set("seconds", e.seconds);
    a.push(j);
  }
  return a;
}

}  // namespace

int defend_removal(const po::variables_map& vm) {
  const std::string method = vm["method"].as<std::string>();
  const std::string file = vm["model"].as<std::string>(), out = vm["out"].as<std::string>();
  const bool quiet = vm["quiet"].as<bool>();
  const defenses::FineTuneOptions fo_in = fine_tune_options(vm);
  const double portion = vm["clean-portion"].as<double>(), rate = vm["prune-rate"].as<double>();
  std::vector<double> mcr_ts;
  for (const auto& t : split_list(vm["mcr-t"].as<std::string>())) {
    mcr_ts.push_back(parse_number(t, "--mcr-t"));
    DEAREST_CHECK(mcr_ts.back() >= 0 && mcr_ts.back() <= 1, "--mcr-t: each t must be in [0, 1], got ", t);
  }
  DEAREST_CHECK(!mcr_ts.empty(), "--mcr-t: at least one point of the curve");
  DEAREST_CHECK(vm["mcr-l2"].as<double>() >= 0, "--mcr-l2: expected >= 0");
  DEAREST_CHECK(portion > 0 && portion <= 1, "--clean-portion: expected a fraction in (0, 1], got ", portion);
  DEAREST_CHECK(rate >= 0 && rate < 1, "--prune-rate: expected a fraction in [0, 1), got ", rate);
  const int bits = vm["bits"].as<int>();
  DEAREST_CHECK(bits >= 2 && bits <= 8, "--bits: expected 2..8, got ", bits);
  const std::string standard_list = vm.count("standard") ? vm["standard"].as<std::string>() : "mqbench:" + std::to_string(bits);
  const std::vector<attacks::QuantTarget> standards = attacks::parse_quant_targets(standard_list);
  DEAREST_CHECK(!standards.empty(), "--standard: give at least one preset:bits");
  calib_options(vm, "synthetic");  // option errors before any file is read
  const bool ste = vm["ste"].as<bool>();
  std::vector<double> nad_betas;
  for (const auto& b : split_list(vm["nad-betas"].as<std::string>())) {
    nad_betas.push_back(parse_number(b, "--nad-betas"));
    DEAREST_CHECK(nad_betas.back() >= 0, "--nad-betas: expected non-negative weights, got ", b);
  }
  DEAREST_CHECK(!nad_betas.empty(), "--nad-betas: at least one weight");
  DEAREST_CHECK(!ste || !standards[0].config().fold_bn, "--ste: ", standards[0].label(),
                " folds BN into the weights; the STE defenses train unfolded quantized models (mqbench, qu-anti-zation)");

  std::string trigger_spec;
  attacks::JudgeOptions jo = backdoor_options(vm, file, &trigger_spec);
  nn::LoadedModel lm = nn::load_model(file);
  lm.model->eval();
  std::filesystem::create_directories(out);
  const auto t0 = std::chrono::steady_clock::now();
  const data::DatasetPtr clean = defenses::clean_subset(jo.data, portion, vm["seed"].as<uint64_t>());
  if (!quiet)
    std::cerr << method << " on " << lm.spec.str() << ": " << clean->size() << " clean training images (" << 100 * portion
              << "%), " << fo_in.epochs << " epochs of " << fo_in.optimizer << " at lr " << fo_in.lr << "\n";

  nn::ModelSpec spec = lm.spec;
  nn::ModulePtr model = quant::clone_model(lm.spec, *lm.model);
  Json prune = Json();
  if (method == "fp") {
    const std::string where = defenses::prune_point(spec);
    model = defenses::with_prune_mask(spec, *model, where);
    defenses::PruneResult r = defenses::prune_least_active(*model, clean, jo.data.kind, rate);
    r.where = where;
    prune = r.to_json();
    prune.set("rate", rate);
    if (!quiet)
      std::cerr << "pruned " << r.pruned.size() << " of " << r.channels << " channels at the output of " << where << "\n";
  }
  const quant::CalibOptions co = calib_options(vm, jo.data.kind);
  jo.efrap_calib = co;  // the standard MQBench model calibrates as dearest defend efrap's would
  attacks::Judge judge(jo);
  // --ste: the defense trains the quantized model (the first standard, its qparams frozen at
  // calibration), gradients passing its quantizers straight through to the weights.
  std::unique_ptr<quant::QuantizedModel> q;
  if (ste) q = judge.quantized_model(spec, *model, standards[0]);
  nn::Module& target = ste ? q->model() : *model;
  defenses::FineTuneOptions fo = fo_in;
  fo.out_dir = out + "/train";
  std::vector<nn::EpochStats> hist;
  Json nad_json, ibau_json;
  defenses::McrCurve mcr_curve;
  if (method == "nad") {
    defenses::NadOptions no;
    no.teacher = fo;
    no.teacher.epochs = vm["teacher-epochs"].as<int64_t>();
    no.teacher.out_dir = out + "/teacher";
    no.student = fo;
    if (vm.count("nad-layers")) no.layers = split_list(vm["nad-layers"].as<std::string>());
    no.betas = nad_betas;
    if (no.layers.empty()) no.layers = defenses::attention_layers(target, spec);
    if (no.betas.size() == 1) no.betas.assign(no.layers.size(), no.betas[0]);
    no.p = vm["nad-p"].as<double>();
    const defenses::NadResult r = defenses::nad(target, spec, clean, jo.data.kind, no);
    hist = r.student;
    nad_json = Json::object();
    Json layers = Json::array(), betas = Json::array(), att = Json::array();
    for (const auto& l : r.layers) layers.push(l);
    for (double b : r.betas) betas.push(b);
    for (double a : r.attention_loss) att.push(a);
    nad_json.set("layers", layers);
    nad_json.set("betas", betas);
    nad_json.set("p", no.p);
    nad_json.set("teacher_epochs", no.teacher.epochs);
    nad_json.set("teacher_history", epochs_json(r.teacher));
    nad_json.set("attention_loss", att);
  } else if (method == "ibau") {
    defenses::IbauOptions io;
    io.rounds = vm["ibau-rounds"].as<int64_t>();
    io.batch = vm["ibau-batch"].as<int64_t>();
    io.K = vm["ibau-k"].as<int64_t>();
    io.fd_eps = vm["ibau-fd-eps"].as<double>();
    io.optimizer = fo.optimizer;
    io.lr = fo.lr;
    io.max_batches = fo.max_steps;
    io.seed = fo.seed;
    io.progress = fo.progress;
    io.checkpoint = out + "/ibau-progress.safetensors";  // an interrupted run resumes after its last round
    io.spec = spec;
    const auto rounds = defenses::ibau(target, clean, jo.data.kind, io);
    ibau_json = Json::object();
    Json rs = Json::array();
    for (const auto& r : rounds) rs.push(defenses::ibau_round_json(r));
    ibau_json.set("rounds", rs);
    ibau_json.set("batch", io.batch);
    ibau_json.set("K", io.K);
    ibau_json.set("fd_eps", io.fd_eps);
  } else if (method == "mcr") {
    defenses::McrOptions mo;
    mo.endpoint = fo;
    mo.endpoint.out_dir = out + "/endpoint";
    mo.curve = fo;
    mo.curve.epochs = vm["curve-epochs"].as<int64_t>();
    mo.curve.out_dir = out + "/curve";
    mo.l2 = vm["mcr-l2"].as<double>();
    mcr_curve = defenses::mcr(*model, spec, clean, jo.data.kind, mo, ste ? &q->model() : nullptr);
    hist = mcr_curve.curve_history;
  } else {
    hist = defenses::fine_tune(target, spec, clean, jo.data.kind, fo);
  }
  // MCR's candidates: a model per t, BN statistics recomputed on the clean data. Through the STE
  // there is one quantized model; each t is set in it in turn, when it is measured.
  std::vector<std::pair<double, nn::ModulePtr>> points;
  auto set_ste_point = [&](double t) {
    defenses::set_curve_point(q->model(), mcr_curve, t);
    defenses::update_batchnorm(q->model(), clean, jo.data.kind, fo.batch, fo.seed);
  };
  if (method == "mcr" && !ste)
    for (double t : mcr_ts) {
      nn::ModulePtr pt = defenses::curve_point(spec, mcr_curve, t);
      defenses::update_batchnorm(*pt, clean, jo.data.kind, fo.batch, fo.seed);
      points.emplace_back(t, pt);
    }
  const double defend_seconds = seconds_since(t0);

  const auto t1 = std::chrono::steady_clock::now();
  const Json key = standard_key(*lm.model, vm["data"].as<std::string>(), trigger_spec, jo, standard_list, co);
  const std::string cache = vm.count("standard-cache") ? vm["standard-cache"].as<std::string>() : "";
  const StandardNumbers sn = standard_numbers(judge, lm.spec, *lm.model, standards, key, cache);
  auto measure = [&](nn::Module& m, const std::string& label) {
    NamedMetrics d;
    d.emplace_back(label + " (float)", judge.float_metrics(m));
    for (const auto& t : standards) d.emplace_back(label + " + " + t.label(), judge.quantized_metrics(spec, m, t));
    return d;
  };
  // The STE-defended quantized model as it stands, and its float weights with the quantizers off.
  auto measure_ste = [&](const std::string& label) {
    NamedMetrics d;
    q->set_enabled(false, false);
    d.emplace_back(label + " (float)", judge.float_metrics(q->model()));
    q->set_enabled(true, true);
    d.emplace_back(label + " " + standards[0].label(), judge.float_metrics(q->model()));
    return d;
  };
  auto dtm_of = [&](const NamedMetrics& d) {
    return attacks::dtm(100 * d[1].second.cda, 100 * sn.standard[0].second.asr, 100 * d[1].second.asr);
  };
  NamedMetrics defended;
  Json mcr_json;
  if (method == "mcr") {
    // The supplementary reports the t of higher DTM (a choice made on the test set, as it is).
    mcr_json = Json::object();
    Json pts = Json::array();
    double best = -1, best_t = 0;
    for (size_t i = 0; i < mcr_ts.size(); ++i) {
      const double t = mcr_ts[i];
      char label[32];
      std::snprintf(label, sizeof label, ste ? "mcr-ste t=%.2f" : "mcr t=%.2f", t);
      if (ste) set_ste_point(t);
      NamedMetrics d = ste ? measure_ste(label) : measure(*points[i].second, label);
      const double v = dtm_of(d);
      Json j = Json::object();
      j.set("t", t);
      j.set("float", metrics_json(d[0].second));
      NamedMetrics under(d.begin() + 1, d.end());
      for (size_t i = 0; i < under.size(); ++i) under[i].first = standards[i].label();
      j.set("standard", metrics_json(under));
      j.set("dtm", v);
      pts.push(j);
      if (v > best) {
        best = v;
        best_t = t;
        if (!ste) model = points[i].second;
        defended = d;
        mcr_json.set("chosen_t", t);
      }
    }
    mcr_json.set("points", pts);
    mcr_json.set("l2", vm["mcr-l2"].as<double>());
    mcr_json.set("curve_epochs", vm["curve-epochs"].as<int64_t>());
    mcr_json.set("endpoint_history", epochs_json(mcr_curve.endpoint_history));
    // The BN pass is seeded, so the chosen point comes back as it was measured.
    if (ste && best_t != mcr_ts.back()) set_ste_point(best_t);
  } else if (ste) {
    defended = measure_ste(method + "-ste");
  } else {
    defended = measure(*model, method);
  }
  nn::Metadata meta = {{"source_model", file}, {"dataset", vm["data"].as<std::string>()}, {"defense", method},
                       {"trigger_spec", trigger_spec}, {"target", std::to_string(jo.target)}, {"runtime", runtime_manifest_json()}};
  copy_backdoor_metadata(lm.meta, meta);
  if (ste) {
    nn::Metadata qmeta = meta;
    qmeta["defense"] = method + "-ste";
    quant::save_quantized(out + "/quantized.safetensors", *q, qmeta);
  }
  const double dtm = dtm_of(defended);
  nn::save_model(out + "/model.safetensors", ste ? q->model() : *model, spec, meta);

  Json sum = Json::object();
  sum.set("method", method);
  sum.set("ste", ste);
  sum.set("model", file);
  sum.set("arch", lm.spec.str());
  sum.set("defended_arch", spec.str());
  sum.set("data", vm["data"].as<std::string>());
  sum.set("trigger", jo.trigger->describe());
  sum.set("target", int64_t(jo.target));
  sum.set("include_target", jo.include_target);
  sum.set("clean_images", clean->size());
  sum.set("clean_portion", portion);
  Json ft = Json::object();
  ft.set("optimizer", fo.optimizer);
  ft.set("lr", fo.lr);
  ft.set("momentum", fo.momentum);
  ft.set("wd", fo.wd);
  ft.set("schedule", fo.schedule);
  ft.set("epochs", fo.epochs);
  ft.set("batch", fo.batch);
  ft.set("max_steps", fo.max_steps);
  ft.set("trainable", vm.count("trainable") ? vm["trainable"].as<std::string>() : std::string("all"));
  ft.set("batchnorm_eval", fo.batchnorm_eval);
  ft.set("history", epochs_json(hist));
  if (method != "ibau") sum.set("fine_tune", ft);
  if (method == "fp") sum.set("prune", prune);
  if (method == "nad") sum.set("nad", nad_json);
  if (method == "mcr") sum.set("mcr", mcr_json);
  if (method == "ibau") sum.set("ibau", ibau_json);
  sum.set("float", metrics_json(sn.fp));
  sum.set("standard", metrics_json(sn.standard));
  sum.set("defended_float", metrics_json(defended[0].second));
  NamedMetrics under(defended.begin() + 1, defended.end());
  for (size_t i = 0; i < under.size(); ++i) under[i].first = standards[i].label();
  sum.set("defended", metrics_json(under));
  sum.set("dtm", dtm);
  sum.set("dtm_standard", sn.standard[0].first);
  sum.set("standard_from_cache", sn.cached);
  sum.set("defend_seconds", defend_seconds);
  sum.set("eval_seconds", seconds_since(t1));
  sum.set("runtime", Json::parse(runtime_manifest_json()));
  write_text(out + "/summary.json", sum.dump(2) + "\n");
  if (vm["json"].as<bool>()) {
    std::cout << sum.dump(2) << "\n";
    return 0;
  }
  print_result_table(file, jo, sn, defended);
  std::printf("(%s in %.0f s; evaluation %.0f s; written to %s)\n", method.c_str(), defend_seconds, seconds_since(t1), out.c_str());
  return 0;
}

}  // namespace dearest::cli
