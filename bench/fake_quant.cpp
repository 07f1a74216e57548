// Fake-quantization speed: the round trip x -> integer -> x̂ (with the in-range mask the clipped
// straight-through estimator needs) and the per-tensor / per-channel range, on the tensors the
// attacks and EFRAP quantize every step: whole activations (one scale) and conv weights (one scale
// per output channel). Figures are medians of --reps runs after a warm-up, with the effective
// GB/s (bytes read + written) next to a plain copy of the same tensor.
//
//   bench_fake_quant [--reps 11] [--threads N] [--json]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "quant/fake_quant.h"
#include "quant/presets.h"
#include "quant/qparams.h"
#include "tensor/json.h"
#include "tensor/rng.h"
#include "tensor/runtime.h"

using namespace dearest;

namespace {

double median_seconds(int reps, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Case {
  std::string name;
  Shape shape;
  quant::QuantScheme scheme;
  bool mask;
};

}  // namespace

int main(int argc, char** argv) {
  int reps = 11, threads = 0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: bench_fake_quant [--reps 11] [--threads N] [--json]\n");
      return 2;
    }
  }
  if (threads > 0) omp_set_num_threads(threads);
  const quant::QuantConfig qu = quant::preset("qu-anti-zation", 8), mq = quant::preset("mqbench", 4);
  const std::vector<Case> cases = {
      {"activation 128x16x32x32, qu-anti-zation A8 (per tensor, x*S-Z, half up), mask", {128, 16, 32, 32}, qu.act, true},
      {"activation 128x64x32x32, mqbench A4 (per tensor, x*(1/s), half even)", {128, 64, 32, 32}, mq.act, false},
      {"conv weight 512x512x3x3, mqbench W4 (per channel)", {512, 512, 3, 3}, mq.conv_weight, false},
      {"conv weight 512x512x3x3, qu-anti-zation W8 (per tensor), mask", {512, 512, 3, 3}, qu.conv_weight, true},
  };
  Json out = Json::array();
  std::printf("%-80s %10s %8s %10s %8s %9s\n", "case", "fq ms", "GB/s", "range ms", "GB/s", "copy GB/s");
  for (const auto& c : cases) {
    Tensor x = Rng(7, 1).normal(c.shape);
    auto [mn, mx] = quant::tensor_range(c.scheme, x);
    const quant::QParams qp = quant::qparams_from_range(c.scheme, mn, mx);
    const double n = double(x.numel());
    const double t_fq = median_seconds(reps, [&] { quant::fake_quantize_raw(x, c.scheme, qp, {}, false, c.mask); });
    const double t_range = median_seconds(reps, [&] { quant::tensor_range(c.scheme, x); });
    const double t_copy = median_seconds(reps, [&] { x.clone(); });
    const double fq_gbs = n * (8 + (c.mask ? 1 : 0)) / t_fq / 1e9, range_gbs = n * 4 / t_range / 1e9,
                 copy_gbs = n * 8 / t_copy / 1e9;
    std::printf("%-80s %10.3f %8.1f %10.3f %8.1f %9.1f\n", c.name.c_str(), t_fq * 1e3, fq_gbs, t_range * 1e3, range_gbs,
                copy_gbs);
    Json j = Json::object();
    j.set("case", c.name);
    j.set("fake_quantize_ms", t_fq * 1e3);
    j.set("fake_quantize_gb_per_s", fq_gbs);
    j.set("range_ms", t_range * 1e3);
    j.set("range_gb_per_s", range_gbs);
    j.set("copy_gb_per_s", copy_gbs);
    out.push(j);
  }
  std::printf("threads %d\n", omp_get_max_threads());
  if (json) {
    Json r = Json::object();
    r.set("threads", int64_t(omp_get_max_threads()));
    r.set("cases", out);
    r.set("runtime", Json::parse(runtime_manifest_json()));
    std::printf("%s\n", r.dump(2).c_str());
  }
  return 0;
}
