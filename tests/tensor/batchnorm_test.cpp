#include "tensor/ops/batchnorm.h"

#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

struct BnRun {
  BatchNormResult fwd;
  BatchNormGrads grads;
  Tensor rm, rv;
};

BnRun run(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& gy, bool training, bool relu) {
  BnRun r;
  const int64_t C = x.size(1);
  r.rm = Tensor::full({C}, 0.1, x.dtype());
  r.rv = Tensor::full({C}, 2.0, x.dtype());
  r.fwd = batch_norm(x, gamma, beta, r.rm, r.rv, training, 0.1, 1e-5, relu);
  r.grads = batch_norm_backward(gy, x, gamma, beta, r.fwd, training, 1e-5, relu);
  return r;
}

TEST(BatchNorm, FastMatchesReference) {
  for (Shape shape : {Shape{4, 8, 5, 5}, Shape{1, 3, 7, 9}, Shape{8, 16, 4, 4}, Shape{2, 64, 8, 8}})
    for (bool training : {true, false})
      for (bool relu : {false, true}) {
        Tensor x = test::randn(shape, 1);
        x = Tensor(x);  // shift the mean away from zero
        Tensor gamma = test::randu({shape[1]}, 2, 0.5, 1.5), beta = test::randn({shape[1]}, 3);
        Tensor gy = test::randn(shape, 4);
        BnRun fast = run(x, gamma, beta, gy, training, relu);
        BnRun ref;
        {
          BackendScope s(Backend::Reference);
          ref = run(x.to(DType::F64), gamma.to(DType::F64), beta.to(DType::F64), gy.to(DType::F64), training, relu);
        }
        std::string what = shape_str(shape) + (training ? " train" : " eval") + (relu ? " relu" : "");
        EXPECT_LT(test::rel_err(fast.fwd.y.plain(), ref.fwd.y), 1e-5) << what;
        EXPECT_LT(test::rel_err(fast.grads.x.plain(), ref.grads.x), 1e-4) << what;
        EXPECT_LT(test::rel_err(fast.grads.gamma, ref.grads.gamma), 1e-4) << what;
        EXPECT_LT(test::rel_err(fast.grads.beta, ref.grads.beta), 1e-5) << what;
        EXPECT_LT(test::rel_err(fast.rm, ref.rm), 1e-5) << what;
        EXPECT_LT(test::rel_err(fast.rv, ref.rv), 1e-5) << what;
      }
}

TEST(BatchNorm, RunningStatisticsUseUnbiasedVariance) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {4, 1});  // [N=4, C=1]
  Tensor rm = Tensor::zeros({1}, DType::F64), rv = Tensor::ones({1}, DType::F64);
  BatchNormResult r = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  EXPECT_DOUBLE_EQ(r.mean.item(), 2.5);
  EXPECT_DOUBLE_EQ(r.var.item(), 1.25);                // biased, used to normalise
  EXPECT_DOUBLE_EQ(rm.item(), 0.25);
  EXPECT_DOUBLE_EQ(rv.item(), 0.9 + 0.1 * 1.25 * 4 / 3);  // unbiased into the running estimate
}

TEST(BatchNorm, BadInputsRaise) {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  EXPECT_ERROR_CONTAINS(batch_norm(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5), "batch_norm",
                        "weight", "[4]", "[3]");
  EXPECT_ERROR_CONTAINS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5), "batch_norm",
                        "running_mean");
  EXPECT_ERROR_CONTAINS(batch_norm(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                        "batch_norm", "more than one value");
}

}  // namespace
}  // namespace dearest::raw
