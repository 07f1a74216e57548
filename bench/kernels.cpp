// Kernel benchmark: GFLOP/s of every convolution of ResNet18-CIFAR (forward, backward-data,
// backward-weights) at batch 128, next to the machine's measured SGEMM GFLOP/s; effective GB/s of
// batch-norm, ReLU, pooling and the residual add, next to a plain streaming copy's.
//
//   bench_kernels [--batch 128] [--reps 5] [--threads N] [--json] [--width 64] [--conv direct|winograd]
//
// Every figure is the median of --reps timed runs after one warm-up run. Run it twice and compare:
// the machine is shared and noisy.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tensor/json.h"
#include "tensor/kernels/blas.h"
#include "tensor/ops/batchnorm.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/rng.h"
#include "tensor/error.h"
#include "tensor/runtime.h"

using namespace dearest;

namespace {

double median_seconds(int reps, const std::function<void()>& f) {
  f();  // warm-up: primitive creation, first touch of memory
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct ConvLayer {
  std::string name;
  int64_t ic, oc, hw, k, stride;
  int count;  // how many times it occurs in ResNet18-CIFAR
};

std::vector<ConvLayer> resnet18_cifar_convs(int64_t w) {
  return {{"conv1 3->w 32x32 3x3 s1", 3, w, 32, 3, 1, 1},
          {"l1 w->w 32x32 3x3 s1", w, w, 32, 3, 1, 4},
          {"l2 w->2w 32x32 3x3 s2", w, 2 * w, 32, 3, 2, 1},
          {"l2 2w->2w 16x16 3x3 s1", 2 * w, 2 * w, 16, 3, 1, 3},
          {"l2 short w->2w 1x1 s2", w, 2 * w, 32, 1, 2, 1},
          {"l3 2w->4w 16x16 3x3 s2", 2 * w, 4 * w, 16, 3, 2, 1},
          {"l3 4w->4w 8x8 3x3 s1", 4 * w, 4 * w, 8, 3, 1, 3},
          {"l3 short 2w->4w 1x1 s2", 2 * w, 4 * w, 16, 1, 2, 1},
          {"l4 4w->8w 8x8 3x3 s2", 4 * w, 8 * w, 8, 3, 2, 1},
          {"l4 8w->8w 4x4 3x3 s1", 8 * w, 8 * w, 4, 3, 1, 3},
          {"l4 short 4w->8w 1x1 s2", 4 * w, 8 * w, 8, 1, 2, 1}};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 128, width = 64;
  int reps = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_kernels: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--batch") batch = std::stoll(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--width") width = std::stoll(next());
    else if (a == "--threads") set_num_threads(std::stoi(next()));
    else if (a == "--json") json = true;
    else if (a == "--conv") {
      try {
        set_conv_algorithm(parse_conv_algorithm(next()));
      } catch (const Error& e) {
        std::fprintf(stderr, "bench_kernels: %s\n", e.what());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_kernels [--batch N] [--reps N] [--width W] [--threads N] [--conv direct|winograd] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  Json out = Json::object();
  out.set("manifest", Json::parse(runtime_manifest_json()));
  out.set("batch", batch);
  out.set("reps", reps);

  // ---- SGEMM peak (OpenBLAS, square 2048) ---------------------------------------------------
  const int64_t n = 2048;
  Tensor A = Rng(1).normal({n, n}), B = Rng(2).normal({n, n}), C = Tensor::empty({n, n});
  double t_gemm = median_seconds(reps, [&] {
    blas_sgemm(false, false, n, n, n, 1.f, A.data<float>(), n, B.data<float>(), n, 0.f, C.data<float>(), n);
  });
  const double sgemm_gflops = 2.0 * n * n * n / t_gemm / 1e9;
  out.set("sgemm_gflops", sgemm_gflops);
  if (!json) std::printf("SGEMM %ldx%ldx%ld (OpenBLAS, %d threads): %.1f GFLOP/s\n\n", n, n, n, num_threads(), sgemm_gflops);

  // ---- convolutions ----------------------------------------------------------------------------
  if (!json)
    std::printf("%-26s %5s %9s %9s %9s %9s  %s\n", "ResNet18-CIFAR conv", "count", "fwd GF/s", "bwd_d", "bwd_w",
                "fwd+bwd", "ms (fwd/bwd_d/bwd_w)");
  Json convs = Json::array();
  double s1_flops = 0, s1_time = 0, all_flops = 0, all_time = 0;
  for (const ConvLayer& L : resnet18_cifar_convs(width)) {
    Conv2dParams p;
    p.stride_h = p.stride_w = L.stride;
    p.pad_h = p.pad_w = L.k / 2;
    Tensor x = Rng(3).normal({batch, L.ic, L.hw, L.hw});
    Tensor w = Rng(4).normal({L.oc, L.ic, L.k, L.k}, 0, 0.05);
    // Inputs in the layout the previous layer hands over (blocked), except the image.
    Tensor xb = L.ic == 3 ? x : raw::conv2d(x, Tensor::zeros({L.ic, L.ic, 1, 1}), Tensor(), {});
    Tensor y = raw::conv2d(xb, w, Tensor(), p);
    Tensor gy = raw::conv2d(Rng(5).normal({batch, L.oc, L.hw / L.stride, L.hw / L.stride}),
                            Tensor::zeros({L.oc, L.oc, 1, 1}), Tensor(), {});
    const int64_t oh = y.size(2);
    const double flops = 2.0 * batch * L.oc * oh * oh * L.ic * L.k * L.k;
    double tf = median_seconds(reps, [&] { raw::conv2d(xb, w, Tensor(), p); });
    double td = L.ic == 3 ? 0 : median_seconds(reps, [&] { raw::conv2d_backward_data(gy, w, xb.shape(), false, p); });
    double tw = median_seconds(reps, [&] { raw::conv2d_backward_weights(gy, xb, w.shape(), false, p); });
    const double passes = L.ic == 3 ? 2 : 3;  // the image needs no input gradient
    const double total = flops * passes / (tf + td + tw) / 1e9;
    if (L.stride == 1 && L.k == 3 && L.ic != 3) {
      s1_flops += flops * 3 * L.count;
      s1_time += (tf + td + tw) * L.count;
    }
    all_flops += flops * passes * L.count;
    all_time += (tf + td + tw) * L.count;
    Json j = Json::object();
    j.set("layer", L.name);
    j.set("count", L.count);
    j.set("fwd_gflops", flops / tf / 1e9);
    j.set("bwd_data_gflops", td > 0 ? Json(flops / td / 1e9) : Json());
    j.set("bwd_weights_gflops", flops / tw / 1e9);
    j.set("all_passes_gflops", total);
    Json ms = Json::array();
    for (double t : {tf, td, tw}) ms.push(t * 1e3);
    j.set("ms", ms);
    convs.push(j);
    if (!json)
      std::printf("%-26s %5d %9.1f %9.0f %9.1f %9.1f  %.1f/%.1f/%.1f\n", L.name.c_str(), L.count, flops / tf / 1e9,
                  td > 0 ? flops / td / 1e9 : 0.0, flops / tw / 1e9, total, tf * 1e3, td * 1e3, tw * 1e3);
  }
  const double s1_gflops = s1_flops / s1_time / 1e9;
  out.set("convs", convs);
  out.set("stride1_3x3_all_passes_gflops", s1_gflops);
  out.set("stride1_3x3_fraction_of_sgemm", s1_gflops / sgemm_gflops);
  out.set("all_convs_all_passes_gflops", all_flops / all_time / 1e9);
  out.set("conv_seconds_per_batch", all_time);
  if (!json)
    std::printf("\nstride-1 3x3 convs, fwd+bwd_d+bwd_w, weighted by occurrence: %.1f GFLOP/s = %.0f%% of SGEMM\n"
                "all convs, all passes: %.1f GFLOP/s, %.2f s per batch of %ld (conv-only %.1f img/s)\n\n",
                s1_gflops, 100 * s1_gflops / sgemm_gflops, all_flops / all_time / 1e9, all_time, batch,
                batch / all_time);

  // ---- memory-bound ops: effective GB/s (bytes read + written once) ---------------------------
  Tensor big = Rng(6).normal({batch, width, 32, 32});
  Tensor bigb = raw::conv2d(big, Tensor::zeros({width, width, 1, 1}), Tensor(), {});  // blocked, as in a network
  const double bytes = double(big.nbytes());
  Tensor dst = Tensor::empty(big.shape());
  double t_copy = median_seconds(reps, [&] {
    const float* s = big.data<float>();
    float* d = dst.data<float>();
    const int64_t N = big.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; ++i) d[i] = s[i];
  });
  const double copy_gbs = 2 * bytes / t_copy / 1e9;
  out.set("stream_copy_gbs", copy_gbs);
  Json mem = Json::array();
  auto memop = [&](const std::string& name, double traffic, const std::function<void()>& f) {
    double t = median_seconds(reps, f);
    Json j = Json::object();
    j.set("op", name);
    j.set("ms", t * 1e3);
    j.set("gbs", traffic / t / 1e9);
    j.set("fraction_of_copy", traffic / t / 1e9 / copy_gbs);
    mem.push(j);
    if (!json) std::printf("%-40s %8.2f ms %8.1f GB/s (%3.0f%% of copy)\n", name.c_str(), t * 1e3, traffic / t / 1e9,
                           100 * traffic / t / 1e9 / copy_gbs);
  };
  if (!json) std::printf("%-40s %8.2f ms %8.1f GB/s\n", ("stream copy " + shape_str(big.shape())).c_str(), t_copy * 1e3, copy_gbs);
  Tensor gamma = Tensor::ones({width}), beta = Tensor::zeros({width});
  Tensor rm = Tensor::zeros({width}), rv = Tensor::ones({width});
  raw::BatchNormResult bn = raw::batch_norm(bigb, gamma, beta, rm, rv, true, 0.1, 1e-5);
  raw::BatchNormResult bnr = raw::batch_norm(bigb, gamma, beta, rm, rv, true, 0.1, 1e-5, true);
  // Effective GB/s counts each tensor read or written once (the least traffic the op needs); a
  // 33 MB activation partly stays in a 32 MB L3, so figures can pass the copy's.
  memop("batch-norm fwd (train)", 2 * bytes, [&] { raw::batch_norm(bigb, gamma, beta, rm, rv, true, 0.1, 1e-5); });
  memop("batch-norm+ReLU fwd (train, fused)", 2 * bytes,
        [&] { raw::batch_norm(bigb, gamma, beta, rm, rv, true, 0.1, 1e-5, true); });
  memop("batch-norm bwd", 3 * bytes,  // x, dy read; dx written
        [&] { raw::batch_norm_backward(bigb, bigb, gamma, beta, bn, true, 1e-5, false); });
  memop("batch-norm+ReLU bwd (fused)", 3 * bytes,
        [&] { raw::batch_norm_backward(bigb, bigb, gamma, beta, bnr, true, 1e-5, true); });
  Tensor r = raw::unary(raw::Unary::Relu, bigb);
  memop("ReLU fwd", 2 * bytes, [&] { raw::unary(raw::Unary::Relu, bigb); });
  memop("ReLU bwd", 3 * bytes, [&] { raw::relu_backward(bigb, r); });
  memop("residual add", 3 * bytes, [&] { raw::binary(raw::Binary::Add, bigb, r); });
  Pool2dParams mp;  // 2x2 stride 2 (VGG)
  raw::MaxPoolResult pr = raw::max_pool2d(bigb, mp);
  memop("max-pool 2x2 s2 fwd", 1.25 * bytes, [&] { raw::max_pool2d(bigb, mp); });
  memop("max-pool 2x2 s2 bwd", 1.25 * bytes, [&] { raw::max_pool2d_backward(pr.y, bigb, pr.indices, mp); });
  Tensor last = raw::conv2d(Rng(7).normal({batch, 8 * width, 4, 4}), Tensor::zeros({8 * width, 8 * width, 1, 1}),
                            Tensor(), {});
  memop("adaptive avg-pool 4x4->1 fwd", double(last.numel()) * 4,
        [&] { raw::adaptive_avg_pool2d(last, 1, 1); });
  out.set("memory_bound", mem);
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
