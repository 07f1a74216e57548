#include "nn/gradcam.h"

#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "tensor/error.h"
#include "tensor/rng.h"

namespace dearest::nn {
namespace {

class GlobalMean : public Module {
 public:
  GlobalMean() : Module("GlobalMean") {}
  Tensor forward(const Tensor& x) override { return mean(x, {2, 3}); }
};

// conv: a 2x2 stride-2 average (one channel); head: class 0 reads the mean, class 1 its negative.
std::shared_ptr<Sequential> patch_detector() {
  auto seq = std::make_shared<Sequential>();
  auto conv = std::make_shared<Conv2d>(1, 1, 2, 2, 0, false);
  conv->weight().fill_(0.25);
  auto fc = std::make_shared<Linear>(1, 2, true);
  fc->weight().data<float>()[0] = 1;
  fc->weight().data<float>()[1] = -1;
  for (auto& [n, t] : fc->named_parameters())
    if (n == "bias") {
      Tensor b = t;
      b.zero_();
    }
  seq->push_back(conv);
  seq->push_back(std::make_shared<GlobalMean>());
  seq->push_back(fc);
  seq->eval();
  return seq;
}

TEST(GradCam, FindsThePatchTheClassReads) {
  auto m = patch_detector();
  Tensor x = Tensor::zeros({1, 1, 8, 8});
  for (int y = 4; y < 6; ++y)
    for (int c = 2; c < 4; ++c) x.data<float>()[y * 8 + c] = 1;
  Tensor h = grad_cam(*m, "0", x, {0});
  ASSERT_EQ(h.shape(), (Shape{1, 8, 8}));
  const float* p = h.data<float>();
  int best = 0;
  for (int i = 1; i < 64; ++i)
    if (p[i] > p[best]) best = i;
  EXPECT_FLOAT_EQ(p[best], 1.f);
  EXPECT_TRUE(best / 8 >= 4 && best / 8 < 6 && best % 8 >= 2 && best % 8 < 4) << "peak at " << best / 8 << "," << best % 8;
  EXPECT_FLOAT_EQ(p[0], 0.f);       // far corner: nothing there
  EXPECT_FLOAT_EQ(p[7 * 8 + 7], 0.f);
  // Class 1 reads the patch negatively: the ReLU leaves nothing.
  Tensor h1 = grad_cam(*m, "0", x, {1});
  for (int i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(h1.data<float>()[i], 0.f);
}

TEST(GradCam, RunsOnTheModelFamiliesAndChecksItsInputs) {
  for (const char* s : {"resnet18:width=2", "vgg16-bn:width=2"}) {
    const ModelSpec spec = ModelSpec::parse(s);
    auto m = build_model(spec);
    m->eval();
    const std::string layer = gradcam_layer(*m, spec);
    Tensor x = Rng(1).normal({2, 3, 32, 32});
    Tensor h = grad_cam(*m, layer, x, {3, 7});
    ASSERT_EQ(h.shape(), (Shape{2, 32, 32})) << s;
    for (int64_t i = 0; i < h.numel(); ++i) ASSERT_TRUE(h.data<float>()[i] >= 0 && h.data<float>()[i] <= 1) << s;
    EXPECT_FALSE(m->find(layer)->has_forward_hooks()) << "the capture hook was left on " << layer;
    Tensor f = penultimate_features(*m, x);
    EXPECT_EQ(f.size(0), 2);
    EXPECT_EQ(f.size(1), spec.arch == "resnet18" ? 16 : 16) << s;
  }
  auto m = patch_detector();
  EXPECT_THROW(grad_cam(*m, "0", Tensor::zeros({1, 1, 8, 8}), {0, 1}), Error);
  EXPECT_THROW(grad_cam(*m, "0", Tensor::zeros({1, 1, 8, 8}), {5}), Error);
}

}  // namespace
}  // namespace dearest::nn
