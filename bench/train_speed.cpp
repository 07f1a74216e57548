// Training and inference throughput of one model, the figures the PyTorch comparison needs:
// images/s for training steps (batch 128, Adam, cross-entropy) and for inference (batch 256,
// eval, no autograd), and the peak resident memory of this process. One model per process, so the
// peak belongs to that model alone.
//
//   bench_train_speed --model resnet18:width=64 [--batch 128] [--infer-batch 256] [--steps 6]
//                     [--reps 3] [--json]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "nn/init.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "tensor/json.h"
#include "tensor/rng.h"
#include "tensor/runtime.h"

using namespace dearest;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  std::string model = "resnet18:width=64";
  int64_t batch = 128, infer_batch = 256, steps = 6;
  int reps = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model") model = next();
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--infer-batch") infer_batch = std::stoll(next());
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: bench_train_speed --model SPEC [--batch N] [--infer-batch N] [--steps N] [--reps N] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  nn::ModelSpec spec = nn::ModelSpec::parse(model);
  nn::set_init_seed(0);
  nn::ModulePtr m = nn::build_model(spec);
  const int64_t input = spec.get("input", 32), classes = spec.get("classes", 10);
  Tensor x = Rng(1).normal({batch, 3, input, input}), y = Rng(2).integers({batch}, 0, classes);
  nn::Adam opt(m->named_parameters(), {});
  m->train();
  auto step = [&] {
    opt.zero_grad();
    backward(cross_entropy((*m)(x), y));
    opt.step();
  };
  step();  // warm-up: primitive creation, first touch of memory
  std::vector<double> train_ips;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    for (int64_t s = 0; s < steps; ++s) step();
    train_ips.push_back(double(batch * steps) / (now() - t0));
  }
  m->eval();
  Tensor xi = Rng(3).normal({infer_batch, 3, input, input});
  std::vector<double> infer_ips;
  {
    NoGradGuard ng;
    (*m)(xi);
    for (int r = 0; r < reps; ++r) {
      const double t0 = now();
      for (int64_t s = 0; s < std::max<int64_t>(1, steps / 2); ++s) (*m)(xi);
      infer_ips.push_back(double(infer_batch * std::max<int64_t>(1, steps / 2)) / (now() - t0));
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  Json out = Json::object();
  out.set("framework", "dearest");
  out.set("model", spec.str());
  out.set("threads", num_threads());
  out.set("train_images_per_second", median(train_ips));
  out.set("infer_images_per_second", median(infer_ips));
  out.set("peak_rss_mib", double(ru.ru_maxrss) / 1024.0);
  out.set("runtime", Json::parse(runtime_manifest_json()));
  if (json) std::printf("%s\n", out.dump().c_str());
  else
    std::printf("%s: train %.1f img/s (batch %ld, Adam), inference %.1f img/s (batch %ld), peak RSS %.0f MiB\n",
                spec.str().c_str(), median(train_ips), batch, median(infer_ips), infer_batch, double(ru.ru_maxrss) / 1024.0);
  return 0;
}
