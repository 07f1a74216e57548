// The same computation with the same seed and thread count is bitwise identical: single convs
// (forward, backward-data, backward-weights) and three SGD steps of a small conv-BN-ReLU-pool net,
// comparing every parameter, gradient and running statistic.
#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/rng.h"
#include "tests/test_util.h"

namespace dearest {
namespace {

TEST(Determinism, ConvForwardBackwardBitwise) {
  auto once = [] {
    Tensor x = Rng(1, 1).normal({8, 16, 16, 16}).set_requires_grad();
    Tensor w = Rng(1, 2).normal({32, 16, 3, 3}, 0, 0.1).set_requires_grad();
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor y = conv2d(x, w, Tensor(), p);
    backward(y, Rng(1, 3).normal(y.shape()));
    return std::vector<Tensor>{y.plain(), x.grad(), w.grad()};
  };
  auto a = once(), b = once();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(test::bitwise_equal(a[i], b[i])) << "tensor " << i;
}

struct TinyNet {
  Tensor w1, g1, b1, rm1, rv1, w2, g2, b2, rm2, rv2, fc, fcb;
  explicit TinyNet(uint64_t seed) {
    Rng r(seed, 0);
    w1 = r.normal({16, 3, 3, 3}, 0, 0.2).set_requires_grad();
    g1 = Tensor::ones({16}).set_requires_grad();
    b1 = Tensor::zeros({16}).set_requires_grad();
    rm1 = Tensor::zeros({16});
    rv1 = Tensor::ones({16});
    w2 = r.normal({16, 16, 3, 3}, 0, 0.1).set_requires_grad();
    g2 = Tensor::ones({16}).set_requires_grad();
    b2 = Tensor::zeros({16}).set_requires_grad();
    rm2 = Tensor::zeros({16});
    rv2 = Tensor::ones({16});
    fc = r.normal({10, 16}, 0, 0.1).set_requires_grad();
    fcb = Tensor::zeros({10}).set_requires_grad();
  }
  std::vector<Tensor> params() { return {w1, g1, b1, w2, g2, b2, fc, fcb}; }
  Tensor forward(const Tensor& x) {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Tensor h = batch_norm(conv2d(x, w1, Tensor(), p), rm1, rv1, g1, b1, true, 0.1, 1e-5, true);
    Tensor h2 = batch_norm(conv2d(h, w2, Tensor(), p), rm2, rv2, g2, b2, true, 0.1, 1e-5);
    h2 = relu(add(h2, h));  // a residual add in oneDNN's layout
    Pool2dParams mp;
    h2 = max_pool2d(h2, mp);
    return linear(flatten(adaptive_avg_pool2d(h2, 1, 1), 1), fc, fcb);
  }
};

std::vector<Tensor> train_three_steps() {
  TinyNet net(3);
  std::vector<Tensor> out;
  for (int step = 0; step < 3; ++step) {
    Tensor x = Rng(7, step).normal({8, 3, 16, 16});
    Tensor y = Rng(7, 100 + step).integers({8}, 0, 10);
    Tensor loss = cross_entropy(net.forward(x), y);
    for (Tensor& p : net.params()) p.set_grad(Tensor());
    backward(loss);
    NoGradGuard ng;
    for (Tensor& p : net.params()) {
      out.push_back(p.grad().clone());
      Tensor upd = raw::binary(raw::Binary::Sub, p, raw::binary(raw::Binary::Mul, p.grad(), 0.1));
      p.copy_(upd);
    }
  }
  for (Tensor& p : net.params()) out.push_back(p.clone());
  for (const Tensor& s : {net.rm1, net.rv1, net.rm2, net.rv2}) out.push_back(s.clone());
  return out;
}

TEST(Determinism, ThreeTrainingStepsBitwise) {
  auto a = train_three_steps(), b = train_three_steps();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(test::bitwise_equal(a[i], b[i])) << "tensor " << i;
}

}  // namespace
}  // namespace dearest
