// dearest demo: the whole story in minutes on the built-in synthetic dataset (or CIFAR-10 with
// --data): a clean model is trained, a Qu-ANTI-zation backdoor planted, the float model shown
// clean and the victim's 4-bit model backdoored, then EFRAP quantizes it with learned flipped
// rounding and the backdoor is gone. Each stage is an ordinary dearest subcommand (tools/pipeline.h)
// whose command line lands in the report, so every number can be reproduced by hand.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "attacks/metrics.h"
#include "data/image.h"
#include "data/registry.h"
#include "defenses/efrap.h"
#include "tensor/error.h"
#include "tools/cli.h"
#include "tools/defend_common.h"
#include "tools/pipeline.h"
#include "tools/run_figures.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace {

namespace fs = std::filesystem;

struct Row {
  std::string name, what;
  double cda = NAN, asr = NAN, dtm = NAN;
};


std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return std::isfinite(v) ? b : "";
}

int demo(const po::variables_map& vm) {
  const std::string data = vm["data"].as<std::string>(), out = vm["out"].as<std::string>();
  const std::string model = vm["model"].as<std::string>();
  const int bits = vm["bits"].as<int>();
  const bool quiet = vm["quiet"].as<bool>();
  DEAREST_CHECK(bits >= 2 && bits <= 8, "--bits: expected 2..8, got ", bits);
  DEAREST_CHECK(vm["seed"].as<int64_t>() >= 0, "--seed: expected a whole number >= 0, got ", vm["seed"].as<int64_t>());
  const data::DataSpec dspec = data::parse_data_spec(data);
  const bool synthetic = dspec.kind == "synthetic";
  if (vm["fresh"].as<bool>() && fs::exists(out)) {
    DEAREST_CHECK(fs::exists(out + "/demo.json") || fs::is_empty(out), "--fresh: ", out,
                  " is not a demo folder (no demo.json); not removing it");
    fs::remove_all(out);
  }
  fs::create_directories(out + "/report");
  const std::string B = std::to_string(bits), quantizer = "qu-anti-zation:" + B, label = "qu-anti-zation@" + B;
  // The synthetic set's first 5% is too small for EFRAP's 1024 calibration images: 256 (at most a
  // fifth of the set) from its first fifth.
  std::string calib_size = "1024", calib_pool = "0.05";
  if (synthetic) {
    const int64_t n = dspec.path.empty() ? 10000 : std::stoll(dspec.path);
    DEAREST_CHECK(n >= 160, "--data: the demo needs at least 160 synthetic images, got ", n);
    calib_size = std::to_string(std::min<int64_t>(256, n / 5));
    calib_pool = "0.2";
  }
  std::vector<std::string> engine;
  if (vm.count("threads")) engine = {"--threads", std::to_string(vm["threads"].as<int>())};
  for (const auto& a : forwarded_engine_args(vm)) engine.push_back(a);

  std::vector<Step> steps;
  auto step = [&](const std::string& lbl, const std::string& dir, const std::string& done, std::vector<std::string> args) {
    args.insert(args.end(), engine.begin(), engine.end());
    steps.push_back({lbl, args, out + "/" + dir, out + "/" + dir + "/" + done});
  };
  const std::string seed = std::to_string(vm["seed"].as<int64_t>());
  step("clean model", "1-clean", "summary.json",
       {"train", "--data", data, "--model", model, "--epochs", std::to_string(vm["epochs"].as<int>()), "--seed", seed,
        "--out", out + "/1-clean"});
  step("backdoored model", "2-attack", "summary.json",
       {"attack", "qu-anti-zation", "--model", out + "/1-clean/model.safetensors", "--data", data, "--out",
        out + "/2-attack", "--set", "bits=" + B, "--set", "epochs=" + std::to_string(vm["attack-epochs"].as<int>()),
        "--set", "lr=" + vm["attack-lr"].as<std::string>(), "--set", "c1=1", "--set", "c2=1", "--set", "batch=32", "--set",
        "calib=" + calib_size + ":32:" + calib_pool, "--set", "mqbench-calib=" + calib_size + ":32:" + calib_pool,
        "--set", "epoch-quantizers=" + quantizer, "--set", "final-quantizers=" + quantizer + ",mqbench:" + B, "--seed", seed});
  const std::vector<std::pair<std::string, std::string>> methods = {
      {"nearest", "the victim's quantizer: nearest rounding"},
      {"flipped", "every weight rounded the other way"},
      {"efrap", "EFRAP: learned, error-guided flipped rounding"}};
  for (size_t i = 0; i < methods.size(); ++i) {
    const std::string m = methods[i].first, dir = std::to_string(3 + i) + "-" + m;
    std::vector<std::string> a = {"defend", m, "--model", out + "/2-attack/model.safetensors", "--data", data,
                                  "--preset", "qu-anti-zation", "--bits", B, "--standard", quantizer, "--standard-cache",
                                  out + "/standard.json", "--calib-size", calib_size, "--calib-pool", calib_pool,
                                  "--out", out + "/" + dir};
    if (m == "efrap") {
      a.push_back("--iterations");
      a.push_back(std::to_string(vm["iterations"].as<int>()));
    }
    step(m == "efrap" ? "EFRAP" : m + " rounding", dir, "summary.json", a);
  }
  // Figures 4 and 5 of the supplementary: where the models look on triggered images, and how they
  // arrange clean and triggered ones.
  const std::string nearest_q = out + "/3-nearest/quantized.safetensors", efrap_q = out + "/5-efrap/quantized.safetensors";
  step("Grad-CAM", "6-gradcam", "gradcam.json",
       {"explain", "gradcam", "--model", nearest_q + "," + efrap_q, "--labels", B + "-bit nearest," + B + "-bit EFRAP",
        "--data", data, "--out", out + "/6-gradcam"});
  step("t-SNE", "7-tsne", "tsne.json",
       {"explain", "tsne", "--model", out + "/2-attack/model.safetensors," + nearest_q + "," + efrap_q, "--labels",
        "float," + B + "-bit nearest," + B + "-bit EFRAP", "--data", data, "--images", "300", "--out", out + "/7-tsne"});

  // A finished step is reused only when it was made by the same command: a rerun with another
  // option (epochs, seed, threads...) would otherwise mix the old step's outputs into the new table.
  for (const Step& s : steps) {
    const std::string made_by = s.dir + "/command.txt";
    if (!fs::exists(made_by)) continue;
    const std::string was = data::read_file(made_by);
    const std::string now = "dearest " + shell_line(s.args) + "\n";
    DEAREST_CHECK(was == now, s.dir, " was made by another command:\n  ", was, "this run's:\n  ", now,
                  "run with --fresh to start over, or give another --out");
  }

  Json demo_json = Json::object();
  demo_json.set("data", data);
  demo_json.set("model", model);
  demo_json.set("bits", int64_t(bits));
  demo_json.set("seed", vm["seed"].as<int64_t>());
  write_text(out + "/demo.json", demo_json.dump(2) + "\n");
  if (!quiet)
    std::cerr << "dearest demo: " << steps.size() << " steps in " << out << " (finished ones are reused)\n";
  double total = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    char head[48];
    std::snprintf(head, sizeof head, "[%zu/%zu] ", i + 1, steps.size());
    const std::string prefix = head + steps[i].label + ": ";
    const StepOutcome o = run_step(steps[i], prefix, !quiet);
    total += o.seconds;
    if (!quiet) {
      char b[64];
      std::snprintf(b, sizeof b, "%.0f s", o.seconds);
      std::cerr << prefix << (o.cached ? std::string("done before, reused") : std::string(b)) << "\n";
    }
  }
  if (!quiet) std::cerr << "dearest demo: the steps ran for " << int64_t(std::lround(total)) << " s\n";

  // The story, from the steps' own summaries.
  const Json train = read_json(out + "/1-clean/summary.json");
  const Json attack = read_json(out + "/2-attack/summary.json");
  const Json efrap = read_json(out + "/5-efrap/summary.json");
  std::vector<Row> rows;
  // dearest attack's summaries hold fractions, dearest defend's percentages.
  const double asr_std = efrap["standard"][label]["asr"].as_number();
  auto row = [&](const std::string& name, const std::string& what, const Json& m, double scale, bool with_dtm) {
    Row r{name, what, scale * m["cda"].as_number(), scale * m["asr"].as_number(), NAN};
    if (with_dtm) r.dtm = attacks::dtm(r.cda, asr_std, r.asr);
    rows.push_back(r);
  };
  row("clean model, float", "before the attack", attack["start_verdict"]["float"], 100, false);
  // What the victim's quantizer costs a model with no backdoor: the accuracy a defense can keep.
  const bool clean_quantized = attack["start_verdict"].contains(label);
  if (clean_quantized)
    row("clean model, " + B + "-bit nearest", "the victim's quantizer without a backdoor", attack["start_verdict"][label], 100, false);
  const size_t first_backdoored = rows.size();
  row("backdoored, float", "what the attacker publishes", efrap["float"], 1, false);
  for (size_t i = 0; i < methods.size(); ++i) {
    const Json s = read_json(out + "/" + std::to_string(3 + i) + "-" + methods[i].first + "/summary.json");
    row("backdoored, " + B + "-bit " + methods[i].first, methods[i].second, s["defended"], 1, true);
  }

  const std::string seed_note = seed == "0" ? "" : ", seed " + seed;
  std::printf("\ndearest demo: a Qu-ANTI-zation backdoor on %s, %s, %d-bit%s\n\n", data.c_str(), model.c_str(), bits,
              seed_note.c_str());
  std::printf("%-28s %8s %8s %8s   %s\n", "", "CDA %", "ASR %", "DTM", "");
  for (const Row& r : rows)
    std::printf("%-28s %8s %8s %8s   %s\n", r.name.c_str(), fmt(r.cda).c_str(), fmt(r.asr).c_str(), fmt(r.dtm).c_str(),
                r.what.c_str());
  const Row &fl = rows[first_backdoored], &nr = rows[first_backdoored + 1], &ef = rows[first_backdoored + 3];
  // The demo's claim, checked rather than asserted: it prints which part failed at these settings.
  std::vector<std::string> broken;
  if (!(fl.asr < 20)) broken.push_back("the float model already obeys the trigger");
  if (!(nr.asr > 50)) broken.push_back("the victim's quantizer did not wake the backdoor (train the attack longer)");
  if (!(ef.asr < 20)) broken.push_back("EFRAP left the backdoor awake");
  if (!(ef.cda > nr.cda - 5)) broken.push_back("EFRAP lost more than 5 points of clean accuracy");
  std::printf("\nFloat model: ASR %.1f%%. The victim's %d-bit quantizer: ASR %.1f%%. EFRAP, %d-bit: ASR %.1f%% at CDA %.1f%% "
              "(nearest rounding: %.1f%%",
              fl.asr, bits, nr.asr, bits, ef.asr, ef.cda, nr.cda);
  if (clean_quantized) std::printf("; the clean model at %d bits: %.1f%%", bits, rows[1].cda);
  std::printf(").\n");
  if (broken.empty())
    std::printf("The backdoor sleeps in float, wakes under standard quantization, and EFRAP puts it back to sleep.\n");
  for (const auto& b : broken) std::printf("Not shown at these settings: %s.\n", b.c_str());
  std::printf("CDA: clean accuracy; ASR: triggered images sent to the target class (target class excluded); DTM: "
              "EFRAP's defense trade-off metric.\n");

  // The report folder: the table, the figures, and the commands that made them.
  const std::string rep = out + "/report";
  fs::copy_file(out + "/1-clean/curve.svg", rep + "/clean-training.svg", fs::copy_options::overwrite_existing);
  write_attack_curve(attack, rep + "/attack.svg");
  {
    std::vector<std::string> cats;
    BarSeries cda{"CDA %", {}}, asr{"ASR %", {}};
    for (const Row& r : rows) cats.push_back(r.name), cda.values.push_back(r.cda), asr.values.push_back(r.asr);
    write_bar_chart(rep + "/results.svg", "clean accuracy and attack success", "%", cats, {cda, asr}, 0, 100);
  }
  write_efrap_figures(rep, defenses::efrap_reports_from_json(read_json(out + "/5-efrap/report.json")));
  fs::copy_file(out + "/6-gradcam/gradcam.png", rep + "/gradcam.png", fs::copy_options::overwrite_existing);
  for (int k = 1; k <= 3; ++k) {
    const std::string f = "/tsne-" + std::to_string(k) + ".svg";
    fs::copy_file(out + "/7-tsne" + f, rep + f, fs::copy_options::overwrite_existing);
  }
  std::string md = "# dearest demo\n\nA Qu-ANTI-zation backdoor on `" + data + "`, `" + model + "`, " + B +
                   "-bit" + seed_note + ", quantized by the attack's own quantizer (`" + quantizer + "`), then by EFRAP on the same grid.\n\n";
  md += "| | CDA % | ASR % | DTM | |\n|---|---|---|---|---|\n";
  for (const Row& r : rows) md += "| " + r.name + " | " + fmt(r.cda) + " | " + fmt(r.asr) + " | " + fmt(r.dtm) + " | " + r.what + " |\n";
  md += "\n![results](results.svg)\n\n![clean training](clean-training.svg)\n\n![attack](attack.svg)\n\n"
        "![flip rate](flip-rate.svg)\n\n![EFRAP's activation error](loss.svg)\n\n"
        "Grad-CAM on triggered test images (row 1): where the " + B + "-bit model with nearest rounding looks (row 2) and "
        "where EFRAP's looks (row 3), each for the class it predicts.\n\n![Grad-CAM](gradcam.png)\n\n"
        "t-SNE of the penultimate features of 300 clean test images (colours: classes) and 300 triggered ones "
        "(crosses): the float model, nearest rounding, EFRAP.\n\n![t-SNE float](tsne-1.svg) ![t-SNE nearest](tsne-2.svg) "
        "![t-SNE EFRAP](tsne-3.svg)\n\n## The commands\n\nEach step is a "
        "dearest command; its folder keeps its logs, summary.json and outputs.\n\n```\n";
  for (const Step& s : steps) md += "dearest " + shell_line(s.args) + "\n";
  md += "```\n";
  const double clean_test = train.contains("final_test_top1") ? 100 * train["final_test_top1"].as_number() : NAN;
  if (std::isfinite(clean_test)) md += "\nThe clean model's test accuracy after training: " + fmt(clean_test) + "%.\n";
  write_text(rep + "/README.md", md);
  Json res = Json::array();
  for (const Row& r : rows) {
    Json j = Json::object();
    j.set("row", r.name);
    j.set("cda", r.cda);
    j.set("asr", r.asr);
    if (std::isfinite(r.dtm)) j.set("dtm", r.dtm);
    res.push(j);
  }
  demo_json.set("results", res);
  demo_json.set("story_holds", broken.empty());
  write_text(out + "/demo.json", demo_json.dump(2) + "\n");
  std::printf("\nreport: %s/README.md (figures beside it); every step's folder is under %s\n", rep.c_str(), out.c_str());
  return 0;
}

}  // namespace

Command demo_command() {
  return {"demo", "the whole story in minutes: train, plant a backdoor, quantize it awake, EFRAP puts it to sleep",
          [](po::options_description& d) {
            d.add_options()
                ("data", po::value<std::string>()->default_value("synthetic:6000"), "synthetic[:N[:SEED]] (no files needed) or cifar10:PATH")
                ("out", po::value<std::string>()->default_value("dearest-demo"), "the demo's folder: each step's outputs and report/")
                ("model", po::value<std::string>()->default_value("resnet18:width=8"), "architecture of the clean model")
                ("epochs", po::value<int>()->default_value(10), "clean training epochs")
                ("attack-epochs", po::value<int>()->default_value(6), "Qu-ANTI-zation epochs (batches of 32, weights c1 = c2 = 1)")
                ("attack-lr", po::value<std::string>()->default_value("2e-4"), "Qu-ANTI-zation's Adam learning rate")
                ("bits", po::value<int>()->default_value(4), "the victim's weight and activation bits")
                ("iterations", po::value<int>()->default_value(3000), "EFRAP iterations per layer")
                ("seed", po::value<int64_t>()->default_value(0), "seed of the clean training and of the attack (EFRAP keeps the reference's calibration seed, 1005)")
                ("fresh", po::bool_switch()->default_value(false), "start over: remove the demo folder first")
                ("quiet", po::bool_switch()->default_value(false), "no progress on stderr");
          },
          demo};
}

}  // namespace dearest::cli
