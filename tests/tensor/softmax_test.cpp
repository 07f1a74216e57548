#include "tensor/ops/softmax.h"

#include "tensor/ops/loss.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

TEST(Softmax, FastMatchesReferenceAnyDim) {
  Tensor x = test::randn({3, 4, 5}, 1);
  for (int64_t dim : {0, 1, 2, -1})
    for (bool log : {false, true}) {
      Tensor f = log ? log_softmax(x, dim) : softmax(x, dim);
      BackendScope s(Backend::Reference);
      Tensor r = log ? log_softmax(x.to(DType::F64), dim) : softmax(x.to(DType::F64), dim);
      EXPECT_LT(test::rel_err(f, r), 1e-6) << dim << log;
    }
  Tensor big = Tensor::from_vector<float>({1000, 0, -1000}, {1, 3});
  EXPECT_NEAR(softmax(big, 1).at({0, 0}), 1.0, 1e-7);  // no overflow
  EXPECT_NEAR(log_softmax(big, 1).at({0, 1}), -1000.0, 1e-3);
}

TEST(NllLoss, ReductionsAndLabelChecks) {
  Tensor logp = log_softmax(test::randn({4, 3}, 2, DType::F64), 1);
  Tensor t = Tensor::from_vector<int32_t>({0, 2, 1, 2}, {4});
  double s = 0;
  for (int i = 0; i < 4; ++i) s -= logp.at({i, int64_t(t.at({i}))});
  EXPECT_NEAR(nll_loss(logp, t, Reduction::Sum).item(), s, 1e-12);
  EXPECT_NEAR(nll_loss(logp, t, Reduction::Mean).item(), s / 4, 1e-12);
  EXPECT_EQ(nll_loss(logp, t, Reduction::None).shape(), Shape({4}));
  EXPECT_ERROR_CONTAINS(nll_loss(logp, Tensor::from_vector<int32_t>({0, 3, 1, 2}, {4}), Reduction::Mean), "nll_loss",
                        "label 3", "3 classes");
  EXPECT_ERROR_CONTAINS(nll_loss(logp, Tensor::from_vector<int32_t>({0, 1}, {2}), Reduction::Mean), "nll_loss", "[2]",
                        "[4, 3]");
}

}  // namespace
}  // namespace dearest::raw
