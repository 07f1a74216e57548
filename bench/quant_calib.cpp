// How long quantization takes: calibrating a model under a preset (activation observers over the
// calibration batches, then the weights), the median of several runs. Calibration images are the
// CIFAR-10 calibration set when --data is given, else normal noise of the same shape (the observers'
// work does not depend on the pixel values).
//
//   bench_quant_calib [--model resnet18:width=64] [--preset mqbench] [--bits 4] [--images 1024]
//                     [--batch 32] [--reps 3] [--data cifar10:PATH] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "nn/init.h"
#include "nn/models.h"
#include "quant/calibration.h"
#include "quant/quantized_model.h"
#include "tensor/json.h"
#include "tensor/rng.h"
#include "tensor/runtime.h"

using namespace dearest;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

int main(int argc, char** argv) {
  std::string model = "resnet18:width=64", preset = "mqbench", data;
  int bits = 4, reps = 3;
  int64_t images = 1024, batch = 32;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model") model = next();
    else if (a == "--preset") preset = next();
    else if (a == "--bits") bits = std::stoi(next());
    else if (a == "--images") images = std::stoll(next());
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--data") data = next();
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: bench_quant_calib [--model SPEC] [--preset P] [--bits B] [--images N] [--batch N] [--reps N] [--data SPEC] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  nn::ModelSpec spec = nn::ModelSpec::parse(model);
  nn::set_init_seed(0);
  nn::ModulePtr m = nn::build_model(spec);
  m->eval();
  std::vector<Tensor> calib;
  if (!data.empty()) {
    quant::CalibOptions o;
    o.size = images;
    o.batch = batch;
    calib = quant::calibration_batches(data::parse_data_spec(data), o);
  } else {
    const int64_t in = spec.get("input", 32);
    for (int64_t b = 0; b * batch < images; ++b) calib.push_back(Rng(7, uint64_t(b)).normal({std::min(batch, images - b * batch), 3, in, in}));
  }
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    quant::QuantizedModel q(spec, *m, quant::preset(preset, bits));
    q.calibrate(calib);
    times.push_back(now() - t0);
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  if (json) {
    Json j = Json::object();
    j.set("model", spec.str());
    j.set("preset", preset);
    j.set("bits", bits);
    j.set("images", images);
    j.set("batch", batch);
    j.set("reps", reps);
    j.set("median_seconds", med);
    j.set("min_seconds", times.front());
    j.set("max_seconds", times.back());
    j.set("threads", num_threads());
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s, %s W%d, %lld calibration images (batch %lld), %d threads: median %.2f s (min %.2f, max %.2f) over %d runs\n",
                spec.str().c_str(), preset.c_str(), bits, (long long)images, (long long)batch, num_threads(), med,
                times.front(), times.back(), reps);
  }
  return 0;
}
