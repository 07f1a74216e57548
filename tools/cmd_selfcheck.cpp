// dearest selfcheck: proves on this machine, in about a minute, that the engine computes what it
// should: PyTorch's golden values, the fast kernels against the reference loops on ResNet18-CIFAR's
// convolution shapes, a gradient check through a conv-BN-ReLU-pool-linear-CE chain, bitwise
// repeatability of training steps, and the convolution throughput next to the machine's SGEMM.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/json.h"
#include "tensor/kernels/blas.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/elementwise.h"
#include "tensor/rng.h"
#include "tensor/runtime.h"
#include "tensor/safetensors.h"
#include "tools/cli.h"

namespace dearest::cli {

namespace {

struct Check {
  std::string name, status, detail;
};

double rel_err(const Tensor& a, const Tensor& b) {
  auto va = a.plain().to_vector(), vb = b.plain().to_vector();
  if (va.size() != vb.size()) return INFINITY;
  double m = 0, s = 1e-30;
  for (size_t i = 0; i < va.size(); ++i) {
    m = std::max(m, std::fabs(va[i] - vb[i]));
    s = std::max(s, std::fabs(vb[i]));
  }
  return m / s;
}

std::string sci(double v) {
  std::ostringstream os;
  os << std::scientific << std::setprecision(1) << v;
  return os.str();
}

Check torch_fixtures(const std::string& dir) {
  const std::string path = dir + "/torch/ops.expected.safetensors";
  if (!std::filesystem::exists(path)) return {"PyTorch golden values", "SKIP", "no " + path};
  SafetensorsFile f = read_safetensors(path);
  double worst64 = 0, worst32 = 0;
  for (DType dt : {DType::F64, DType::F32}) {
    BackendScope b(dt == DType::F64 ? Backend::Reference : Backend::Fast);
    double& worst = dt == DType::F64 ? worst64 : worst32;
    auto leaf = [&](const char* n) { return f.get(n).to(dt).clone().set_requires_grad(); };
    auto cmp = [&](const Tensor& t, const char* n) { worst = std::max(worst, rel_err(t.to(DType::F64), f.get(n))); };
    Conv2dParams p;
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 1;
    Tensor x = leaf("conv.x"), w = leaf("conv.w"), bias = leaf("conv.b");
    Tensor y = conv2d(x, w, bias, p);
    backward(y, f.get("conv.gy").to(dt));
    cmp(y, "conv.y"), cmp(x.grad(), "conv.gx"), cmp(w.grad(), "conv.gw"), cmp(bias.grad(), "conv.gb");
    Tensor bx = leaf("bn.x"), g = leaf("bn.gamma"), be = leaf("bn.beta");
    Tensor rm = Tensor::zeros({3}, dt), rv = Tensor::ones({3}, dt);
    Tensor by = batch_norm(bx, rm, rv, g, be, true);
    backward(by, f.get("bn.gy").to(dt));
    cmp(by, "bn.y"), cmp(bx.grad(), "bn.gx"), cmp(g.grad(), "bn.ggamma"), cmp(be.grad(), "bn.gbeta");
    cmp(rm, "bn.running_mean"), cmp(rv, "bn.running_var");
    Pool2dParams mp;
    mp.kernel_h = mp.kernel_w = 3;
    mp.pad_h = mp.pad_w = 1;
    Tensor mx = leaf("maxpool.x");
    Tensor my = max_pool2d(mx, mp);
    backward(my, f.get("maxpool.gy").to(dt));
    cmp(my, "maxpool.y"), cmp(mx.grad(), "maxpool.gx");
    Tensor logits = leaf("ce.logits");
    Tensor loss = cross_entropy(logits, f.get("ce.labels"));
    backward(loss);
    cmp(loss.reshape({1}), "ce.loss"), cmp(logits.grad(), "ce.grad");
  }
  const bool ok = worst64 <= 1e-10 && worst32 <= 1e-5;
  return {"PyTorch golden values", ok ? "PASS" : "FAIL",
          "conv/bn/maxpool/ce fwd+bwd: f64 reference err " + sci(worst64) + " (tol 1e-10), f32 fast err " +
              sci(worst32) + " (tol 1e-5)"};
}

Check fast_vs_reference(int64_t width, int64_t batch) {
  struct L {
    int64_t ic, oc, hw, k, s;
  };
  const int64_t w = width;
  std::vector<L> layers = {{3, w, 32, 3, 1},         {w, w, 32, 3, 1},         {w, 2 * w, 32, 3, 2},
                           {w, 2 * w, 32, 1, 2},     {2 * w, 2 * w, 16, 3, 1}, {2 * w, 4 * w, 16, 3, 2},
                           {4 * w, 4 * w, 8, 3, 1},  {4 * w, 8 * w, 8, 3, 2},  {8 * w, 8 * w, 4, 3, 1}};
  double worst = 0;
  for (const L& l : layers) {
    Conv2dParams p;
    p.stride_h = p.stride_w = l.s;
    p.pad_h = p.pad_w = l.k / 2;
    Tensor x = Rng(1).normal({batch, l.ic, l.hw, l.hw}), wt = Rng(2).normal({l.oc, l.ic, l.k, l.k});
    Tensor y = raw::conv2d(x, wt, Tensor(), p);
    Tensor gy = Rng(3).normal(y.shape());
    Tensor gx = raw::conv2d_backward_data(gy, wt, x.shape(), false, p);
    Tensor gw = raw::conv2d_backward_weights(gy, x, wt.shape(), false, p).w;
    BackendScope ref(Backend::Reference);
    Tensor x64 = x.to(DType::F64), w64 = wt.to(DType::F64), gy64 = gy.to(DType::F64);
    worst = std::max({worst, rel_err(y, raw::conv2d(x64, w64, Tensor(), p)),
                      rel_err(gx, raw::conv2d_backward_data(gy64, w64, x.shape(), false, p)),
                      rel_err(gw, raw::conv2d_backward_weights(gy64, x64, wt.shape(), false, p).w)});
  }
  return {"fast kernels = reference", worst <= 1e-5 ? "PASS" : "FAIL",
          std::to_string(layers.size()) + " ResNet18-CIFAR conv shapes (width " + std::to_string(width) +
              "), fwd/bwd_data/bwd_weights, max error " + sci(worst) + " of each tensor's scale (tol 1e-5)"};
}

// conv -> BN(+ReLU) -> max-pool -> linear -> cross-entropy, all inputs and parameters checked.
Check chain_gradcheck() {
  BackendScope ref(Backend::Reference);
  auto leaf = [](const Shape& s, uint64_t seed) { return Rng(seed).uniform(s, -1, 1, DType::F64).set_requires_grad(); };
  Tensor labels = Tensor::from_vector<int32_t>({1, 3}, {2});
  std::vector<Tensor> in = {leaf({2, 3, 6, 6}, 1), leaf({4, 3, 3, 3}, 2), leaf({4}, 3), leaf({4}, 4),
                            leaf({5, 36}, 5)};
  auto f = [&](const std::vector<Tensor>& v) {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor h = batch_norm(conv2d(v[0], v[1], Tensor(), p), Tensor(), Tensor(), v[2], v[3], true, 0.1, 1e-5, true);
    Pool2dParams mp;
    return dearest::reshape(cross_entropy(linear(flatten(max_pool2d(h, mp), 1), v[4]), labels), {1});
  };
  GradcheckOptions opt;
  opt.rtol = 1e-4;
  opt.atol = 1e-6;
  GradcheckResult r = gradcheck(f, in, opt);
  int64_t checked = 0;
  for (const Tensor& t : in) checked += t.numel();
  return {"gradient check (f64)", r.ok ? "PASS" : "FAIL",
          "conv-BN-ReLU-pool-linear-CE, " + std::to_string(checked) + " input elements, max |analytic - numeric| " +
              sci(r.max_abs_err) +
              (r.ok ? "" : "\n" + r.report)};
}

std::vector<Tensor> three_steps() {
  Rng r(11);
  Tensor w1 = r.normal({16, 3, 3, 3}, 0, 0.2).set_requires_grad(), w2 = r.normal({10, 16}, 0, 0.2).set_requires_grad();
  Tensor g = Tensor::ones({16}).set_requires_grad(), b = Tensor::zeros({16}).set_requires_grad();
  Tensor rm = Tensor::zeros({16}), rv = Tensor::ones({16});
  std::vector<Tensor> out;
  for (int step = 0; step < 3; ++step) {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor x = Rng(12, step).normal({16, 3, 32, 32});
    Tensor h = batch_norm(conv2d(x, w1, Tensor(), p), rm, rv, g, b, true, 0.1, 1e-5, true);
    Tensor loss = cross_entropy(linear(flatten(adaptive_avg_pool2d(h, 1, 1), 1), w2), Rng(13, step).integers({16}, 0, 10));
    for (Tensor* t : {&w1, &w2, &g, &b}) t->set_grad(Tensor());
    backward(loss);
    NoGradGuard ng;
    for (Tensor* t : {&w1, &w2, &g, &b}) t->copy_(raw::binary(raw::Binary::Sub, *t, raw::binary(raw::Binary::Mul, t->grad(), 0.1)));
  }
  for (Tensor* t : {&w1, &w2, &g, &b, &rm, &rv}) out.push_back(t->clone());
  return out;
}

Check determinism() {
  auto a = three_steps(), b = three_steps();
  bool same = true;
  for (size_t i = 0; i < a.size(); ++i)
    same = same && std::memcmp(a[i].raw_data(), b[i].raw_data(), a[i].nbytes()) == 0;
  return {"bitwise determinism", same ? "PASS" : "FAIL",
          "3 SGD steps of conv-BN-ReLU-pool-linear run twice: parameters and running statistics " +
              std::string(same ? "identical" : "DIFFER")};
}

Check throughput(int64_t batch) {
  auto time = [](const std::function<void()>& f) {
    f();
    std::vector<double> t;
    for (int i = 0; i < 3; ++i) {
      auto a = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[1];
  };
  const int64_t n = 1024;
  Tensor A = Rng(1).normal({n, n}), B = Rng(2).normal({n, n}), C = Tensor::empty({n, n});
  const double sgemm = 2.0 * n * n * n / time([&] {
    blas_sgemm(false, false, n, n, n, 1.f, A.data<float>(), n, B.data<float>(), n, 0.f, C.data<float>(), n);
  }) / 1e9;
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  Tensor x = raw::conv2d(Rng(3).normal({batch, 64, 32, 32}), Tensor::zeros({64, 64, 1, 1}), Tensor(), {});
  Tensor w = Rng(4).normal({64, 64, 3, 3}, 0, 0.05);
  Tensor gy = raw::conv2d(x, w, Tensor(), p);
  const double flops = 3 * 2.0 * batch * 64 * 1024 * 64 * 9;
  const double conv = flops / time([&] {
    raw::conv2d(x, w, Tensor(), p);
    raw::conv2d_backward_data(gy, w, x.shape(), false, p);
    raw::conv2d_backward_weights(gy, x, w.shape(), false, p);
  }) / 1e9;
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << "3x3 conv 64->64 at 32x32, batch " << batch << ", fwd+bwd: " << conv
     << " GFLOP/s; SGEMM 1024^3: " << sgemm << " GFLOP/s (" << std::setprecision(0) << 100 * conv / sgemm << "%)";
  return {"throughput", "INFO", os.str()};
}

}  // namespace

Command selfcheck_command() {
  return {"selfcheck", "check this build on this machine: PyTorch golden values, kernels, gradients, determinism",
          [](po::options_description& d) {
            d.add_options()("fixtures", po::value<std::string>()->default_value(std::string(DEAREST_SHARED_DIR) + "/fixtures"),
                            "folder holding torch/ops.expected.safetensors")
                ("width", po::value<int64_t>()->default_value(16), "ResNet18 base width for the kernel comparison")
                ("batch", po::value<int64_t>()->default_value(32), "batch for the throughput figure")
                ("json", "print the results as JSON (with every oneDNN implementation used)");
          },
          [](const po::variables_map& vm) {
            const bool json = vm.count("json") > 0;
            if (!json) std::cout << "dearest selfcheck\nruntime: " << runtime_manifest_json() << "\n\n";
            std::vector<std::function<Check()>> steps = {
                [&] { return torch_fixtures(vm["fixtures"].as<std::string>()); },
                [&] { return fast_vs_reference(vm["width"].as<int64_t>(), 2); }, chain_gradcheck, determinism,
                [&] { return throughput(vm["batch"].as<int64_t>()); }};
            Json results = Json::array();
            int failures = 0;
            for (auto& step : steps) {
              auto t0 = std::chrono::steady_clock::now();
              Check c = step();
              const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              failures += c.status == "FAIL";
              Json j = Json::object();
              j.set("check", c.name);
              j.set("status", c.status);
              j.set("detail", c.detail);
              j.set("seconds", secs);
              results.push(j);
              if (!json)
                std::cout << std::left << std::setw(5) << c.status << " " << std::setw(26) << c.name << c.detail << "  ["
                          << std::fixed << std::setprecision(1) << secs << " s]\n";
            }
            if (json) {
              Json out = Json::object();
              out.set("manifest", Json::parse(runtime_manifest_json()));
              out.set("checks", results);
              out.set("failures", failures);
              Json impls = Json::array();
              for (const std::string& i : kernel_implementations()) impls.push(i);
              out.set("onednn_implementations", impls);
              std::cout << out.dump(2) << "\n";
            } else {
              std::cout << "\n" << (failures ? std::to_string(failures) + " check(s) FAILED" : "all checks passed") << "\n";
            }
            return failures ? 1 : 0;
          }};
}

}  // namespace dearest::cli
