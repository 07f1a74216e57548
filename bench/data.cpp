// Data-loading benchmark: images per second through the full training pipeline (read, decode,
// augment, normalise, batch) for CIFAR-10 (in memory) and Tiny-ImageNet (JPEG decode per image),
// synchronous (parallel over the batch on the OpenMP pool) and with a prefetch thread, next to
// what ResNet18-CIFAR training consumes on this machine (measured here on the same threads).
//
//   bench_data [--cifar DIR] [--tiny DIR] [--batches 40] [--reps 3] [--json]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "autograd/ops.h"
#include "data/cifar10.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "data/tinyimagenet.h"
#include "tensor/json.h"
#include "tensor/rng.h"
#include "tensor/runtime.h"

using namespace dearest;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median over reps of the images per second of reading `batches` batches of an epoch.
double images_per_second(const data::DataLoader& l, int64_t batches, int reps) {
  std::vector<double> r;
  for (int rep = 0; rep < reps; ++rep) {
    auto ep = l.epoch(rep);
    data::Batch b;
    int64_t n = 0;
    const double t0 = now();
    for (int64_t k = 0; k < batches && ep.next(b); ++k) n += b.images.size(0);
    r.push_back(double(n) / (now() - t0));
  }
  std::sort(r.begin(), r.end());
  return r[r.size() / 2];
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Training consumption of ResNet18-CIFAR: one forward+backward of its conv/BN/ReLU stack at
// batch 128 (the convs dominate), measured rather than quoted.
double resnet18_train_images_per_second() {
  Rng r(1);
  struct Conv {
    int64_t ic, oc, hw, s;
    int count;
  };
  std::vector<Conv> convs = {{3, 64, 32, 1, 1},  {64, 64, 32, 1, 4},   {64, 128, 32, 2, 1}, {128, 128, 16, 1, 3},
                             {128, 256, 16, 2, 1}, {256, 256, 8, 1, 3}, {256, 512, 8, 2, 1}, {512, 512, 4, 1, 3}};
  double total = 0;
  for (const Conv& c : convs) {
    Tensor x = r.normal({128, c.ic, c.hw, c.hw}).set_requires_grad();
    Tensor w = r.normal({c.oc, c.ic, 3, 3}, 0, 0.05).set_requires_grad();
    Tensor g = Tensor::ones({c.oc}).set_requires_grad(), b = Tensor::zeros({c.oc}).set_requires_grad();
    Conv2dParams p;
    p.stride_h = p.stride_w = c.s;
    p.pad_h = p.pad_w = 1;
    auto step = [&] {
      Tensor y = batch_norm(conv2d(x, w, Tensor(), p), Tensor(), Tensor(), g, b, true, 0.1, 1e-5, true);
      backward(sum(y));
    };
    step();
    const double t0 = now();
    step();
    total += (now() - t0) * c.count;
  }
  return 128.0 / total;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cifar = "../shared/data/cifar10", tiny = "../shared/data/tiny-imagenet-200";
  int64_t batches = 40;
  int reps = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--cifar") cifar = next();
    else if (a == "--tiny") tiny = next();
    else if (a == "--batches") batches = std::stoll(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "usage: bench_data [--cifar DIR] [--tiny DIR] [--batches N] [--reps N] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  Json out = Json::object();
  out.set("manifest", Json::parse(runtime_manifest_json()));
  const double consume = resnet18_train_images_per_second();
  out.set("resnet18_cifar_train_images_per_second", consume);
  if (!json) std::printf("ResNet18-CIFAR training consumes %.1f images/s (conv+BN+ReLU fwd+bwd, batch 128, measured)\n\n", consume);
  Json rows = Json::array();
  auto run = [&](const std::string& name, const data::DatasetPtr& ds, const data::TransformPtr& tf) {
    for (bool prefetch : {false, true}) {
      data::LoaderOptions o;
      o.batch_size = 128;
      o.prefetch = prefetch;
      data::DataLoader l(ds, tf, o);
      const double ips = images_per_second(l, std::min<int64_t>(batches, l.num_batches()), reps);
      Json j = Json::object();
      j.set("pipeline", name);
      j.set("mode", prefetch ? "prefetch thread" : "parallel over batch");
      j.set("images_per_second", ips);
      j.set("times_training_consumption", ips / consume);
      rows.push(j);
      if (!json)
        std::printf("%-44s %-20s %10.0f img/s  (%5.0fx training)\n", name.c_str(), prefetch ? "prefetch thread" : "parallel over batch",
                    ips, ips / consume);
    }
  };
  data::SyntheticOptions so;
  so.size = 10000;
  run("synthetic (generate + crop/flip/normalize)", data::open_synthetic("train", so), data::train_transform("synthetic"));
  if (std::filesystem::exists(cifar)) {
    const long before = rss_kib();
    data::DatasetPtr c = data::open_cifar10(cifar, "train");
    const long after = rss_kib();
    out.set("cifar10_train_rss_increase_kib", after - before);
    out.set("cifar10_train_raw_bytes_kib", long(c->size() * 3073 / 1024));
    if (!json)
      std::printf("CIFAR-10 train in memory: RSS grew by %ld KiB for %ld KiB of raw batch files\n", after - before,
                  long(c->size() * 3073 / 1024));
    run("cifar10 train (crop/flip/normalize)", c, data::train_transform("cifar10"));
  } else if (!json) {
    std::printf("(no CIFAR-10 at %s: skipped)\n", cifar.c_str());
  }
  if (std::filesystem::exists(tiny))
    run("tiny-imagenet train (JPEG decode + crop/flip/normalize)", data::open_tiny_imagenet(tiny, "train"),
        data::train_transform("tiny-imagenet"));
  else if (!json)
    std::printf("(no Tiny-ImageNet at %s: skipped)\n", tiny.c_str());
  out.set("pipelines", rows);
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
