#include "data/synthetic.h"

#include "data/image.h"
#include "data/registry.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

TEST(Synthetic, DeterministicFromSeed) {
  SyntheticOptions o;
  o.size = 50;
  o.seed = 7;
  DatasetPtr a = open_synthetic("train", o), b = open_synthetic("train", o);
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_TRUE(dearest::test::bitwise_equal(a->image(i), b->image(i)));
    EXPECT_EQ(a->label(i), b->label(i));
  }
  o.seed = 8;
  EXPECT_FALSE(dearest::test::bitwise_equal(a->image(3), open_synthetic("train", o)->image(3)));
  o.seed = 7;
  EXPECT_FALSE(dearest::test::bitwise_equal(a->image(3), open_synthetic("test", o)->image(3)));
  EXPECT_EQ(a->image(0).shape(), Shape({3, 32, 32}));
  EXPECT_EQ(a->image(0).dtype(), DType::U8);
}

// The data spec alone names the images: synthetic:N is seed 0, synthetic:N:SEED another draw.
TEST(Synthetic, TheSpecNamesTheSeed) {
  const DataSpec plain = parse_data_spec("synthetic:64"), zero = parse_data_spec("synthetic:64:0"),
                 three = parse_data_spec("synthetic:64:3");
  EXPECT_EQ(plain.seed, 0u);
  EXPECT_EQ(three.seed, 3u);
  EXPECT_EQ(three.path, "64");
  EXPECT_EQ(open_dataset(three, "train")->size(), 64);
  EXPECT_EQ(open_dataset(three, "test")->size(), 12);
  EXPECT_TRUE(dearest::test::bitwise_equal(open_dataset(plain, "train")->image(5), open_dataset(zero, "train")->image(5)));
  EXPECT_FALSE(dearest::test::bitwise_equal(open_dataset(plain, "train")->image(5), open_dataset(three, "train")->image(5)));
  EXPECT_EQ(parse_data_spec("synthetic").seed, 0u);
  for (const char* bad : {"synthetic:0", "synthetic:-5", "synthetic:64:x", "synthetic:64:1:2", "synthetic:64:", "synthetic:6e3"})
    EXPECT_THROW(parse_data_spec(bad), Error) << bad;
}

TEST(Synthetic, BalancedClasses) {
  SyntheticOptions o;
  o.size = 5000;
  DatasetPtr ds = open_synthetic("train", o);
  EXPECT_EQ(ds->num_classes(), 10);
  for (int64_t c : ds->class_counts()) EXPECT_NEAR(double(c), 500.0, 80.0);
}

// Not trivial: a nearest-class-mean classifier on raw pixels, fitted on 4000 images, stays far
// from solving 1000 others (colours and positions are random; the class is in shape and texture).
TEST(Synthetic, NotSolvableByPixelMeans) {
  SyntheticOptions o;
  o.size = 5000;
  DatasetPtr ds = open_synthetic("train", o);
  const int64_t D = 3 * 32 * 32;
  std::vector<std::vector<double>> mean(10, std::vector<double>(size_t(D), 0.0));
  std::vector<int> count(10, 0);
  for (int64_t i = 0; i < 4000; ++i) {
    auto v = ds->image(i).to_vector();
    for (int64_t k = 0; k < D; ++k) mean[size_t(ds->label(i))][size_t(k)] += v[size_t(k)];
    ++count[size_t(ds->label(i))];
  }
  for (int c = 0; c < 10; ++c)
    for (double& m : mean[size_t(c)]) m /= std::max(1, count[size_t(c)]);
  int correct = 0;
  for (int64_t i = 4000; i < 5000; ++i) {
    auto v = ds->image(i).to_vector();
    int best = 0;
    double bd = 1e300;
    for (int c = 0; c < 10; ++c) {
      double d = 0;
      for (int64_t k = 0; k < D; ++k) d += (v[size_t(k)] - mean[size_t(c)][size_t(k)]) * (v[size_t(k)] - mean[size_t(c)][size_t(k)]);
      if (d < bd) {
        bd = d;
        best = c;
      }
    }
    correct += best == ds->label(i);
  }
  EXPECT_LT(correct, 400) << "nearest-mean accuracy " << correct / 10.0 << "%";
  EXPECT_GT(correct, 50);  // ... yet there is signal (chance is 100)
}

}  // namespace
}  // namespace dearest::data

#include "autograd/ops.h"
#include "data/loader.h"

namespace dearest::data {
namespace {

// Learnable: a small conv net (two conv-BN-ReLU-pool stages, then a linear head) trained for a
// 500 SGD steps on 4000 images reaches well above chance (10%) on 1000 held-out ones. (It keeps
// improving with more steps; this is the budget a unit test can afford.)
TEST(Synthetic, LearnableByASmallConvNet) {
  SyntheticOptions so;
  so.size = 4000;
  DatasetPtr train = open_synthetic("train", so);
  so.size = 1000;
  DatasetPtr held = open_synthetic("test", so);
  Rng r(1);
  std::vector<Tensor> params = {r.normal({32, 3, 3, 3}, 0, 0.27).set_requires_grad(),
                                Tensor::ones({32}).set_requires_grad(), Tensor::zeros({32}).set_requires_grad(),
                                r.normal({64, 32, 3, 3}, 0, 0.08).set_requires_grad(),
                                Tensor::ones({64}).set_requires_grad(), Tensor::zeros({64}).set_requires_grad(),
                                r.normal({10, 64}, 0, 0.12).set_requires_grad(), Tensor::zeros({10}).set_requires_grad()};
  Tensor rm1 = Tensor::zeros({32}), rv1 = Tensor::ones({32}), rm2 = Tensor::zeros({64}), rv2 = Tensor::ones({64});
  auto forward = [&](const Tensor& x, bool training) {
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    Pool2dParams mp;
    Tensor h = batch_norm(conv2d(x, params[0], Tensor(), p), rm1, rv1, params[1], params[2], training, 0.1, 1e-5, true);
    h = max_pool2d(h, mp);
    h = batch_norm(conv2d(h, params[3], Tensor(), p), rm2, rv2, params[4], params[5], training, 0.1, 1e-5, true);
    h = max_pool2d(h, mp);
    return linear(flatten(adaptive_avg_pool2d(h, 1, 1), 1), params[6], params[7]);
  };
  LoaderOptions lo;
  lo.batch_size = 64;
  lo.seed = 2;
  DataLoader loader(train, train_transform("synthetic"), lo);
  std::vector<Tensor> velocity;
  for (const Tensor& p : params) velocity.push_back(Tensor::zeros(p.shape()));
  int step = 0;
  for (int64_t epoch = 0; step < 500; ++epoch) {
    auto it = loader.epoch(epoch);
    Batch b;
    while (it.next(b) && step < 500) {
      for (Tensor& p : params) p.set_grad(Tensor());
      backward(cross_entropy(forward(b.images, true), b.labels));
      NoGradGuard ng;
      const double lr = step < 400 ? 0.1 : 0.02;
      for (size_t k = 0; k < params.size(); ++k) {
        velocity[k] = velocity[k] * 0.9 + params[k].grad();
        params[k].copy_(params[k] - velocity[k] * lr);
      }
      ++step;
    }
  }
  NoGradGuard ng;
  DataLoader eval(held, test_transform("synthetic"), {200, false, false, 0, false});
  int64_t correct = 0;
  auto it = eval.epoch(0);
  Batch b;
  while (it.next(b)) {
    Tensor pred = argmax(forward(b.images, false), 1);
    correct += int64_t(sum(eq(pred, b.labels).to(DType::I32)).item());
  }
  EXPECT_GE(correct, 250) << "held-out accuracy " << correct / 10.0 << "% (chance 10%)";
  std::printf("synthetic: held-out accuracy after 500 steps %.1f%%\n", correct / 10.0);
}

}  // namespace
}  // namespace dearest::data
