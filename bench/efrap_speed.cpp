// EFRAP's speed on ResNet18-CIFAR (W4A4, batch 32, 32 cached calibration batches, as the
// reference): every layer runs a sample of iterations; the per-iteration time and the per-layer
// set-up (inputs through the partly quantized model, float targets) are extrapolated to the full
// 10,000 iterations per layer, the same way bench/efrap_peer.py extrapolates the PyTorch peer.
// The data are random images: the time does not depend on them.
//
//   bench_efrap_speed [--width 64] [--sample 40] [--iterations 10000] [--threads N] [--conv direct|winograd]
//                     [--objective auto|gram|fused|graph] [--json]
// --objective forces one way of computing L_A on every unit (each must allow it; auto: EFRAP's choice).
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "autograd/ops.h"
#include "defenses/efrap.h"
#include "nn/init.h"
#include "nn/models.h"
#include "quant/presets.h"
#include "tensor/json.h"
#include "tensor/rng.h"
#include "tensor/error.h"
#include "tensor/runtime.h"

using namespace dearest;

int main(int argc, char** argv) {
  int64_t width = 64, sample = 40, iterations = 10000;
  int threads = 0;
  bool json = false;
  std::string conv = "direct", objective = "auto";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--width") width = std::stoll(next());
    else if (a == "--sample") sample = std::stoll(next());
    else if (a == "--iterations") iterations = std::stoll(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--conv") conv = next();
    else if (a == "--objective") objective = next();
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_efrap_speed [--width 64] [--sample 40] [--iterations 10000] [--threads N] "
                   "[--conv direct|winograd] [--objective auto|gram|fused|graph] [--json]\n");
      return 2;
    }
  }
  defenses::ObjectiveKind kind = defenses::ObjectiveKind::Auto;
  try {
    set_conv_algorithm(parse_conv_algorithm(conv));
    kind = defenses::parse_objective_kind(objective);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_efrap_speed: %s\n", e.what());
    return 2;
  }
  if (threads > 0) omp_set_num_threads(threads);
  const nn::ModelSpec spec = nn::ModelSpec::parse("resnet18:width=" + std::to_string(width));
  nn::set_init_seed(1);
  nn::ModulePtr model = nn::build_model(spec);
  Rng rng(7, 0);
  {
    NoGradGuard ng;
    model->train();
    for (int i = 0; i < 2; ++i) (*model)(rng.normal({32, 3, 32, 32}));
  }
  model->eval();
  std::vector<Tensor> calib;
  for (int i = 0; i < 32; ++i) calib.push_back(rng.normal({32, 3, 32, 32}));
  quant::QuantizedModel q(spec, *model, quant::preset("mqbench", 4));
  q.calibrate(calib);
  defenses::EfrapOptions o;
  o.iterations = sample;
  o.curve_every = sample;
  o.objective = kind;
  auto reps = defenses::efrap(q, *model, calib, o);
  double total = 0, setup = 0;
  Json layers = Json::array();
  if (!json) std::printf("%-24s %-7s %10s %12s %14s\n", "layer", "form", "setup s", "ms/iter", "extrapolated s");
  for (auto& r : reps) {
    const double per = r.loop_seconds / double(r.iterations);
    const double ext = r.setup_seconds + per * double(iterations);
    total += ext;
    setup += r.setup_seconds;
    if (!json)
      std::printf("%-24s %-7s %10.2f %12.2f %14.0f\n", r.name.c_str(), r.objective.c_str(), r.setup_seconds, 1e3 * per, ext);
    Json l = Json::object();
    l.set("layer", r.name);
    l.set("objective", r.objective);
    l.set("setup_seconds", r.setup_seconds);
    l.set("ms_per_iteration", 1e3 * per);
    l.set("extrapolated_seconds", ext);
    layers.push(l);
  }
  if (json) {
    Json j = Json::object();
    j.set("bench", "efrap_speed");
    j.set("model", spec.str());
    j.set("sample_iterations", sample);
    j.set("iterations", iterations);
    j.set("objective", objective);
    j.set("threads", int64_t(omp_get_max_threads()));
    j.set("extrapolated_seconds", total);
    j.set("setup_seconds", setup);
    j.set("layers", layers);
    j.set("runtime", Json::parse(runtime_manifest_json()));
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("total %.0f s = %.2f h for %ld iterations per layer (set-up %.0f s), %d threads, %s convolutions\n",
                total, total / 3600, long(iterations), setup, omp_get_max_threads(), conv.c_str());
  }
  return 0;
}
