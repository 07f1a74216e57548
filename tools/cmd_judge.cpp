// dearest judge: CDA and ASR of a model in float and under the quantizers a victim may use (or of a
// quantized model file as it is), for a trigger and target: the numbers every attack and defense
// is measured by (attacks/judge.h). Trigger and target default to those recorded by dearest attack.
#include <cstdio>
#include <iostream>
#include <map>

#include "attacks/judge.h"
#include "data/registry.h"
#include "nn/checkpoint.h"
#include "quant/serialize.h"
#include "tensor/safetensors.h"
#include "tools/backdoor_options.h"
#include "tools/cli.h"

namespace dearest::cli {

namespace {

int judge(const po::variables_map& vm) {
  const std::string file = vm["model"].as<std::string>();
  attacks::JudgeOptions o = backdoor_options(vm, file);
  {
    const std::string c = vm["calib"].as<std::string>();
    const size_t a = c.find(':'), b = c.find(':', a == std::string::npos ? a : a + 1);
    DEAREST_CHECK(a != std::string::npos && b != std::string::npos, "--calib: expected SIZE:BATCH:POOL, got \"", c, "\"");
    o.calib.size = std::stoll(c.substr(0, a));
    o.calib.batch = std::stoll(c.substr(a + 1, b - a - 1));
    o.calib.pool = std::stod(c.substr(b + 1));
  }
  attacks::Judge j(o);
  attacks::Verdict v;
  if (quant::is_quantized_file(file)) {
    auto q = quant::load_quantized(file);
    nn::ModulePtr fp = nn::build_model(q.model->spec());
    fp->load_state_dict(q.model->source_state(), true);
    fp->eval();
    v.fp = j.float_metrics(*fp);
    v.quantized.emplace_back(file, j.float_metrics(q.model->model()));
  } else {
    nn::LoadedModel lm = nn::load_model(file);
    v = j.judge(lm.spec, *lm.model, attacks::parse_quant_targets(vm["quantizers"].as<std::string>()));
  }
  Json out = Json::object();
  out.set("model", file);
  out.set("data", vm["data"].as<std::string>());
  out.set("trigger", o.trigger->describe());
  out.set("target", int64_t(o.target));
  out.set("verdict", v.to_json());
  if (vm.count("json")) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%s, trigger %s -> %d\n%-28s %8s %8s\n", file.c_str(), o.trigger->describe().c_str(), o.target, "", "CDA %", "ASR %");
  std::printf("%-28s %8.2f %8.2f\n", "float", 100 * v.fp.cda, 100 * v.fp.asr);
  for (const auto& [k, m] : v.quantized) std::printf("%-28s %8.2f %8.2f\n", k.c_str(), 100 * m.cda, 100 * m.asr);
  std::printf("(%ld clean images, %ld triggered images%s)\n", long(v.fp.clean_images), long(v.fp.asr_images),
              o.include_target ? ", target class included" : ", target class excluded");
  return 0;
}

}  // namespace

Command judge_command() {
  return {"judge", "CDA and ASR in float and quantized: --model M.safetensors --data cifar10:PATH [--quantizers mqbench:4]",
          [](po::options_description& d) {
            d.add_options()("model", po::value<std::string>()->required(), "a model file, or a quantized model file (dearest quantize)")
                ("data", po::value<std::string>()->required(), "dataset spec")
                ("quantizers", po::value<std::string>()->default_value("pytorch-fbgemm:8,mqbench:8,mqbench:4"),
                 "preset:bits list the model is judged under (ignored for a quantized file)")
                ("calib", po::value<std::string>()->default_value("1024:32:0.05"),
                 "calibration of the presets other than mqbench: SIZE:BATCH:POOL (mqbench: EFRAP's recipe)")
                ("json", "print JSON");
            add_backdoor_options(d);
          },
          judge};
}

}  // namespace dearest::cli
