#include "tensor/ops/pool.h"

#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

Pool2dParams P(int64_t k, int64_t s, int64_t pad, bool ceil = false, bool incl = true) {
  Pool2dParams p;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s;
  p.pad_h = p.pad_w = pad;
  p.ceil_mode = ceil;
  p.count_include_pad = incl;
  return p;
}

TEST(Pool2d, FastMatchesReference) {
  std::vector<std::pair<Shape, Pool2dParams>> cases = {
      {{1, 3, 8, 8}, P(2, 2, 0)},        {{2, 5, 9, 7}, P(3, 2, 1)},
      {{2, 16, 32, 32}, P(2, 2, 0)},     {{2, 4, 11, 11}, P(3, 2, 1, true)},
      {{1, 8, 7, 7}, P(3, 1, 1, false, false)}, {{2, 3, 10, 10}, P(2, 3, 1)}};
  for (LayoutPolicy policy : {LayoutPolicy::Blocked, LayoutPolicy::Plain}) {
    LayoutPolicyScope lp(policy);
    for (auto& [shape, p] : cases) {
      // Distinct values, so the max is unique and both kernels route gradients identically.
      Tensor x = test::randu(shape, 5, -1, 1);
      Tensor x64 = x.to(DType::F64);
      MaxPoolResult fm = max_pool2d(x, p);
      Tensor gy = test::randn(fm.y.shape(), 6);
      Tensor fgx = max_pool2d_backward(gy, x, fm.indices, p);
      Tensor fa = avg_pool2d(x, p), fga = avg_pool2d_backward(gy, x, p);
      BackendScope s(Backend::Reference);
      MaxPoolResult rm = max_pool2d(x64, p);
      Tensor rgx = max_pool2d_backward(gy.to(DType::F64), x64, rm.indices, p);
      std::string what = shape_str(shape) + " " + p.str();
      EXPECT_EQ(test::max_abs_diff(fm.y.plain(), rm.y), 0) << what;
      EXPECT_LT(test::max_abs_diff(fgx.plain(), rgx), 1e-6) << what;
      EXPECT_LT(test::rel_err(fa.plain(), avg_pool2d(x64, p)), 1e-6) << what;
      EXPECT_LT(test::rel_err(fga.plain(), avg_pool2d_backward(gy.to(DType::F64), x64, p)), 1e-6) << what;
    }
  }
}

TEST(Pool2d, FastMatchesReferenceOnRandomGeometries) {
  Rng r(77, 2);
  for (int i = 0; i < 30; ++i) {
    Pool2dParams p = P(r.next_int(1, 5), r.next_int(1, 4), 0, r.next_int(0, 2) == 1, r.next_int(0, 2) == 1);
    p.pad_h = p.pad_w = r.next_int(0, p.kernel_h / 2 + 1);
    const Shape shape{r.next_int(1, 4), r.next_int(1, 20), r.next_int(p.kernel_h, 15), r.next_int(p.kernel_w, 15)};
    Tensor x = test::randu(shape, 100 + i, -1, 1);
    MaxPoolResult fm = max_pool2d(x, p);
    Tensor gy = test::randn(fm.y.shape(), 200 + i);
    Tensor fgx = max_pool2d_backward(gy, x, fm.indices, p);
    Tensor fa = avg_pool2d(x, p), fga = avg_pool2d_backward(gy, x, p);
    BackendScope s(Backend::Reference);
    Tensor x64 = x.to(DType::F64), gy64 = gy.to(DType::F64);
    MaxPoolResult rm = max_pool2d(x64, p);
    std::string what = shape_str(shape) + " " + p.str();
    EXPECT_EQ(test::max_abs_diff(fm.y.plain(), rm.y), 0) << what;
    EXPECT_LT(test::rel_err(fgx.plain(), max_pool2d_backward(gy64, x64, rm.indices, p)), 1e-6) << what;
    EXPECT_LT(test::rel_err(fa.plain(), avg_pool2d(x64, p)), 1e-6) << what;
    EXPECT_LT(test::rel_err(fga.plain(), avg_pool2d_backward(gy64, x64, p)), 1e-6) << what;
  }
}

TEST(Pool2d, AdaptiveAverage) {
  Tensor x = test::randn({2, 3, 8, 8}, 1);
  Tensor y = adaptive_avg_pool2d(x, 1, 1);
  double s = 0;
  for (double v : x.select(0, 1).select(0, 2).to_vector()) s += v;
  EXPECT_NEAR(y.plain().at({1, 2, 0, 0}), s / 64, 1e-6);
  for (auto [oh, ow] : {std::pair{1, 1}, {2, 4}, {3, 5}}) {  // 3x5 does not divide 8: uneven windows
    Tensor f = adaptive_avg_pool2d(x, oh, ow);
    Tensor gy = test::randn(f.shape(), 2);
    Tensor fg = adaptive_avg_pool2d_backward(gy, x);
    BackendScope s(Backend::Reference);
    Tensor x64 = x.to(DType::F64);
    EXPECT_LT(test::rel_err(f.plain(), adaptive_avg_pool2d(x64, oh, ow)), 1e-6);
    EXPECT_LT(test::rel_err(fg.plain(), adaptive_avg_pool2d_backward(gy.to(DType::F64), x64)), 1e-6);
  }
}

TEST(Pool2d, PyTorchWindowRules) {
  // 1x1x2x3 input, 2x2 window stride 2, ceil_mode: the second window hangs over the edge.
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3});
  Pool2dParams p = P(2, 2, 0, true);
  EXPECT_EQ(max_pool2d(x, p).y.plain().to_vector(), std::vector<double>({5, 6}));
  EXPECT_EQ(avg_pool2d(x, p).plain().to_vector(), std::vector<double>({3, 4.5}));
  Pool2dParams q = P(3, 1, 1, false, true);
  Tensor ones = Tensor::ones({1, 1, 3, 3});
  EXPECT_NEAR(avg_pool2d(ones, q).plain().at({0, 0, 0, 0}), 4.0 / 9, 1e-7);  // padding counted
  q.count_include_pad = false;
  EXPECT_NEAR(avg_pool2d(ones, q).plain().at({0, 0, 0, 0}), 1.0, 1e-7);
  EXPECT_ERROR_CONTAINS(max_pool2d(Tensor::zeros({1, 1, 2, 2}), P(2, 2, 2)), "max_pool2d", "half the kernel");
  EXPECT_ERROR_CONTAINS(max_pool2d(Tensor::zeros({1, 2, 2}), P(2, 2, 0)), "max_pool2d", "4-d");
}

}  // namespace
}  // namespace dearest::raw
