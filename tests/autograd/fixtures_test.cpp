// The engine against PyTorch 1.13 golden values (../shared/fixtures/torch/ops.expected.safetensors):
// conv, batch-norm, max-pool and cross-entropy, forward and backward, in f64 on the reference
// kernels (tolerance 1e-10, fixtures/README.md) and in f32 on the fast kernels.
#include <filesystem>

#include "autograd/ops.h"
#include "tensor/runtime.h"
#include "tensor/safetensors.h"
#include "tests/test_util.h"

namespace dearest {
namespace {

class TorchOps : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::shared_dir() + "/fixtures/torch/ops.expected.safetensors";
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << "fixture not found: " << path_ << " (../shared is absent)";
    f_ = read_safetensors(path_);
  }
  Tensor get(const std::string& n, DType dt) { return f_.get(n).to(dt).clone(); }
  Tensor leaf(const std::string& n, DType dt) { return get(n, dt).set_requires_grad(); }
  // f64: within 1e-10 absolute of each tensor's scale; f32: the float tolerance of the README.
  void expect_close(const Tensor& got, const std::string& name, DType dt) {
    const double tol = dt == DType::F64 ? 1e-10 : 1e-5;
    EXPECT_LT(test::rel_err(got.plain().to(DType::F64), f_.get(name)), tol) << name << " (" << dtype_name(dt) << ")";
  }
  std::string path_;
  SafetensorsFile f_;
};

TEST_F(TorchOps, Conv2dStride2Pad1WithBias) {
  for (DType dt : {DType::F64, DType::F32}) {
    BackendScope b(dt == DType::F64 ? Backend::Reference : Backend::Fast);
    Tensor x = leaf("conv.x", dt), w = leaf("conv.w", dt), bias = leaf("conv.b", dt);
    Conv2dParams p;
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 1;
    Tensor y = conv2d(x, w, bias, p);
    expect_close(y, "conv.y", dt);
    backward(y, get("conv.gy", dt));
    expect_close(x.grad(), "conv.gx", dt);
    expect_close(w.grad(), "conv.gw", dt);
    expect_close(bias.grad(), "conv.gb", dt);
  }
}

TEST_F(TorchOps, BatchNormTraining) {
  for (DType dt : {DType::F64, DType::F32}) {
    BackendScope b(dt == DType::F64 ? Backend::Reference : Backend::Fast);
    Tensor x = leaf("bn.x", dt), gamma = leaf("bn.gamma", dt), beta = leaf("bn.beta", dt);
    Tensor rm = Tensor::zeros({3}, dt), rv = Tensor::ones({3}, dt);
    Tensor y = batch_norm(x, rm, rv, gamma, beta, true, 0.1, 1e-5);
    expect_close(y, "bn.y", dt);
    expect_close(rm, "bn.running_mean", dt);
    expect_close(rv, "bn.running_var", dt);
    backward(y, get("bn.gy", dt));
    expect_close(x.grad(), "bn.gx", dt);
    expect_close(gamma.grad(), "bn.ggamma", dt);
    expect_close(beta.grad(), "bn.gbeta", dt);
  }
}

TEST_F(TorchOps, MaxPool3x3Stride2Pad1) {
  for (DType dt : {DType::F64, DType::F32}) {
    BackendScope b(dt == DType::F64 ? Backend::Reference : Backend::Fast);
    Tensor x = leaf("maxpool.x", dt);
    Pool2dParams p;
    p.kernel_h = p.kernel_w = 3;
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 1;
    Tensor y = max_pool2d(x, p);
    expect_close(y, "maxpool.y", dt);
    backward(y, get("maxpool.gy", dt));
    expect_close(x.grad(), "maxpool.gx", dt);
  }
}

TEST_F(TorchOps, CrossEntropyMean) {
  for (DType dt : {DType::F64, DType::F32}) {
    BackendScope b(dt == DType::F64 ? Backend::Reference : Backend::Fast);
    Tensor logits = leaf("ce.logits", dt);
    Tensor loss = cross_entropy(logits, f_.get("ce.labels"));
    expect_close(loss.reshape({1}), "ce.loss", dt);
    backward(loss);
    expect_close(logits.grad(), "ce.grad", dt);
  }
}

}  // namespace
}  // namespace dearest
