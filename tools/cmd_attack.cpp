// dearest attack NAME: plants a quantization-conditioned backdoor (attacks/attack.h) in a clean
// model and writes the backdoored model, the per-epoch verdicts, resumable checkpoints and a JSON
// summary of CDA/ASR in float and under the victim's quantizers.
#include <filesystem>
#include <iostream>

#include "attacks/attack.h"
#include "tools/cli.h"
#include "tools/run_figures.h"

namespace dearest::cli {

namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

int attack(const po::variables_map& vm) {
  if (!vm.count("name")) {
    std::cout << "attacks:\n";
    for (const auto& n : attacks::attack_names()) std::cout << "  " << n << ": " << attacks::make_attack(n)->summary() << "\n";
    std::cout << "\ndearest attack NAME --params lists an attack's parameters\n";
    return vm.count("params") ? 0 : 2;
  }
  const std::string name = vm["name"].as<std::string>();
  auto a = attacks::make_attack(name);
  if (vm.count("params")) {
    std::cout << name << ": " << a->summary() << "\nparameters (--set NAME=VALUE), with the reference defaults:\n"
              << a->params().table();
    return 0;
  }
  DEAREST_CHECK(vm.count("model") && vm.count("data") && vm.count("out"), "attack: --model, --data and --out are required");
  attacks::AttackSetup s;
  s.data = vm["data"].as<std::string>();
  s.model = vm["model"].as<std::string>();
  const std::string out = vm["out"].as<std::string>();
  std::string model_file;
  if (ends_with(out, ".safetensors")) {
    model_file = out;
    s.out = vm.count("work") ? vm["work"].as<std::string>() : out.substr(0, out.size() - 12) + ".run";
  } else {
    s.out = out;
  }
  if (vm.count("set")) s.overrides = vm["set"].as<std::vector<std::string>>();
  s.seed = vm["seed"].as<uint64_t>();
  s.resume = !vm["no-resume"].as<bool>();
  s.progress = !vm["quiet"].as<bool>();
  s.judge_start = !vm["skip-start-verdict"].as<bool>();
  Json sum = attacks::run_attack(name, s);
  write_attack_curve(sum, s.out + "/curve.svg");
  if (!model_file.empty()) {
    if (fs::path(model_file).has_parent_path()) fs::create_directories(fs::path(model_file).parent_path());
    fs::copy_file(s.out + "/model.safetensors", model_file, fs::copy_options::overwrite_existing);
  }
  Json brief = Json::object();
  brief.set("attack", name);
  brief.set("model", model_file.empty() ? s.out + "/model.safetensors" : model_file);
  brief.set("run", s.out);
  if (sum.contains("start_verdict")) brief.set("start_verdict", sum["start_verdict"]);
  brief.set("verdict", sum["verdict"]);
  std::cout << brief.dump(2) << "\n";
  return 0;
}

}  // namespace

Command attack_command() {
  return {"attack",
          "plant a backdoor (quantization-conditioned, or BadNets for reference): NAME --model clean.safetensors --data cifar10:PATH --out bd.safetensors",
          [](po::options_description& d) {
            d.add_options()("name", po::value<std::string>(), "comp-artifact, qu-anti-zation, pq-backdoor or badnets")
                ("model", po::value<std::string>(), "the clean model file to start from, or an architecture spec to train from scratch")
                ("data", po::value<std::string>(), "cifar10:PATH, tiny-imagenet:PATH, imagenette:PATH, synthetic[:N[:SEED]]")
                ("out", po::value<std::string>(), "OUT.safetensors (the run folder is OUT.run) or a folder")
                ("work", po::value<std::string>(), "the run folder (checkpoints, epoch verdicts, summary.json)")
                ("set", po::value<std::vector<std::string>>()->composing(), "NAME=VALUE: override a parameter (repeatable; see --params)")
                ("params", "list the attack's parameters and their reference defaults")
                ("seed", po::value<uint64_t>()->default_value(0), "seed of data order, augmentation and calibration")
                ("no-resume", po::value<bool>()->default_value(false)->implicit_value(true), "start over even if the run folder has checkpoints")
                ("quiet", po::value<bool>()->default_value(false)->implicit_value(true), "no progress on stderr")
                ("skip-start-verdict", po::value<bool>()->default_value(false)->implicit_value(true),
                 "do not judge the start model (the summary then has no clean reference)");
          },
          attack,
          {"name"}};
}

}  // namespace dearest::cli
