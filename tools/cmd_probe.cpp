// dearest probe: one forward (and backward) of a model on a given batch, everything written to a
// safetensors file for auditing or for comparing with another framework step by step:
//   logits, loss (mean cross-entropy, when the input file has labels), grad.<param> for every
//   parameter, <buffer> for every running statistic after the step, act.<module> for each module
//   named in --activations.
#include <iostream>
#include <sstream>

#include "nn/checkpoint.h"
#include "nn/probe.h"
#include "tensor/json.h"
#include "tensor/runtime.h"
#include "tensor/safetensors.h"
#include "tools/cli.h"

namespace dearest::cli {

namespace {

int probe(const po::variables_map& vm) {
  nn::LoadedModel lm = nn::load_model(vm["model"].as<std::string>(), vm.count("arch") ? vm["arch"].as<std::string>() : "",
                                      !vm["non-strict"].as<bool>());
  SafetensorsFile in = read_safetensors(vm["input"].as<std::string>());
  DEAREST_CHECK(in.has("input"), vm["input"].as<std::string>(), ": needs a tensor named \"input\" [N, 3, H, W]");
  Tensor x = in.get("input").to(DType::F32);
  const std::string mode = vm["mode"].as<std::string>();
  DEAREST_CHECK(mode == "eval" || mode == "train", "--mode: expected eval or train, got \"", mode, "\"");
  nn::Module& m = *lm.model;
  std::vector<std::string> acts;
  if (vm.count("activations")) {
    std::istringstream names(vm["activations"].as<std::string>());
    std::string n;
    while (std::getline(names, n, ','))
      if (!n.empty()) acts.push_back(n);
  }
  nn::StateDict out = nn::probe(m, x, in.has("labels") ? in.get("labels") : Tensor(), mode == "train", acts);
  write_safetensors(vm["out"].as<std::string>(), out,
                    {{"what", "dearest probe"}, {"arch", lm.spec.str()}, {"mode", mode},
                     {"fingerprint", nn::fingerprint(m)}, {"runtime", runtime_manifest_json()}});
  std::cout << "wrote " << out.size() << " tensors to " << vm["out"].as<std::string>() << " (" << lm.spec.str() << ", "
            << mode << " mode" << (in.has("labels") ? ", loss " + std::to_string(out[1].second.item()) : "") << ")\n";
  return 0;
}

}  // namespace

Command probe_command() {
  return {"probe", "one step of a model on a batch, every tensor written out: --model M --input IN --out OUT",
          [](po::options_description& d) {
            d.add_options()("model", po::value<std::string>()->required(), "weights (safetensors, torchvision names)")
                ("arch", po::value<std::string>(), "architecture for files without dearest metadata, e.g. resnet18:width=8")
                ("input", po::value<std::string>()->required(), "safetensors with \"input\" [N,3,H,W] and optional \"labels\" [N]")
                ("out", po::value<std::string>()->required(), "output safetensors")
                ("mode", po::value<std::string>()->default_value("train"), "train (batch statistics) or eval")
                ("activations", po::value<std::string>(), "comma-separated module names whose outputs to write")
                ("non-strict", po::value<bool>()->default_value(false)->implicit_value(true), "load weights even if some keys do not match");
          },
          probe};
}

}  // namespace dearest::cli
