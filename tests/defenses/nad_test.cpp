// NAD: the attention map on known numbers and its gradient; the attention layers of both
// families; the distillation pulling the student's attention towards the teacher's.
#include "defenses/nad.h"

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "tensor/runtime.h"
#include "tests/model_test_util.h"
#include "tests/defenses/removal_test_util.h"
#include "tests/test_util.h"

namespace dearest::defenses {
namespace {

TEST(Nad, AttentionMapOnKnownNumbers) {
  // One sample, two channels, 1x2 positions: channel 0 = [1, 2], channel 1 = [3, 0].
  const Tensor f = Tensor::from_vector<float>({1, 2, 3, 0}, {1, 2, 1, 2});
  // p = 2: a = [1 + 9, 4 + 0] = [10, 4], |a| = sqrt(116).
  const auto a2 = attention_map(f, 2).to_vector();
  const double n2 = std::sqrt(116.0) + 1e-6;
  ASSERT_EQ(a2.size(), 2u);
  EXPECT_NEAR(a2[0], 10 / n2, 1e-6);
  EXPECT_NEAR(a2[1], 4 / n2, 1e-6);
  // p = 1: a = [4, 2], |a| = sqrt(20).
  const auto a1 = attention_map(f, 1).to_vector();
  EXPECT_NEAR(a1[0], 4 / (std::sqrt(20.0) + 1e-6), 1e-6);
  EXPECT_NEAR(a1[1], 2 / (std::sqrt(20.0) + 1e-6), 1e-6);
  EXPECT_ERROR_CONTAINS(attention_map(Tensor::zeros({2, 3}), 2), "expected [N, C, H, W]");
}

TEST(Nad, AttentionMapGradient) {
  BackendScope ref(Backend::Reference);
  const Tensor f = Rng(3, 21).uniform({2, 3, 2, 2}, -1, 1, DType::F64).set_requires_grad();
  for (double p : {2.0, 1.5}) {
    GradcheckResult r = gradcheck([p](const std::vector<Tensor>& v) { return attention_map(v[0], p); }, {f});
    EXPECT_TRUE(r.ok) << "p=" << p << ": " << r.report;
  }
}

TEST(Nad, DistillationPullsTheStudentsAttentionToTheTeachers) {
  nn::ModelSpec spec;
  auto m = test::warmed_model("resnet18:width=2", spec, 5, 20);
  EXPECT_EQ(attention_layers(*m, spec), (std::vector<std::string>{"layer2", "layer3", "layer4"}));
  nn::ModelSpec vs;
  auto v = test::warmed_model("vgg16-bn:width=2", vs, 5, 20);
  EXPECT_EQ(attention_layers(*v, vs), (std::vector<std::string>{"features.23", "features.33", "features.43"}));
  const auto clean = clean_subset(data::parse_data_spec("synthetic:512"), 0.2, 1);
  NadOptions o;
  o.teacher = test::quick_fine_tune(4);
  o.student = o.teacher;
  o.student.epochs = 2;
  NadResult r = nad(*m, spec, clean, "synthetic", o);
  EXPECT_EQ(r.teacher.size(), 1u);
  EXPECT_EQ(r.student.size(), 2u);
  EXPECT_EQ(r.betas, (std::vector<double>{500, 500, 500}));
  ASSERT_EQ(r.attention_loss.size(), 2u);
  EXPECT_GT(r.attention_loss[0], 0.0);
  EXPECT_LT(r.attention_loss[1], r.attention_loss[0]) << "the attention term does not fall";
  o.betas = {1, 2};
  EXPECT_ERROR_CONTAINS(nad(*m, spec, clean, "synthetic", o), "2 betas for 3 layers");
}

}  // namespace
}  // namespace dearest::defenses
