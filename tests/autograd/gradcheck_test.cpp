// Every differentiable op passes a gradient check in f64 (reference kernels, central differences).
#include "autograd/gradcheck.h"

#include "autograd/ops.h"
#include "tensor/ops/elementwise.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest {
namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor leaf(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  return Rng(seed, 21).uniform(s, lo, hi, DType::F64).set_requires_grad();
}

void check(const char* name, const Fn& f, const std::vector<Tensor>& in, GradcheckOptions opt = {}) {
  BackendScope ref(Backend::Reference);
  GradcheckResult r = gradcheck(f, in, opt);
  EXPECT_TRUE(r.ok) << name << ": max error " << r.max_abs_err << "\n" << r.report;
}

TEST(Gradcheck, ElementwiseOps) {
  Tensor a = leaf({3, 4}, 1), b = leaf({4}, 2), p = leaf({3, 4}, 3, 0.5, 2), q = leaf({3, 4}, 4, 0.5, 2);
  check("add", [](auto& v) { return add(v[0], v[1]); }, {a, b});
  check("sub", [](auto& v) { return sub(v[0], v[1]); }, {a, b});
  check("mul", [](auto& v) { return mul(v[0], v[1]); }, {a, b});
  check("div", [](auto& v) { return div(v[0], v[1]); }, {a, q});
  check("pow", [](auto& v) { return pow(v[0], v[1]); }, {p, q});
  check("pow scalar", [](auto& v) { return pow(v[0], 2.5); }, {p});
  check("scalar ops", [](auto& v) { return sub(2.0, div(3.0, v[0])) * 1.5 + 0.25; }, {p});
  check("maximum", [](auto& v) { return maximum(v[0], v[1]); }, {a, leaf({3, 4}, 9)});
  check("minimum", [](auto& v) { return minimum(v[0], v[1]); }, {a, leaf({3, 4}, 10)});
  check("neg", [](auto& v) { return neg(v[0]); }, {a});
  check("exp", [](auto& v) { return exp(v[0]); }, {a});
  check("log", [](auto& v) { return log(v[0]); }, {p});
  check("sqrt", [](auto& v) { return sqrt(v[0]); }, {p});
  check("abs", [](auto& v) { return abs(v[0]); }, {a});
  check("square", [](auto& v) { return square(v[0]); }, {a});
  check("sigmoid", [](auto& v) { return sigmoid(v[0]); }, {a});
  check("tanh", [](auto& v) { return tanh(v[0]); }, {a});
  check("relu", [](auto& v) { return relu(v[0]); }, {a});
  check("clamp", [](auto& v) { return clamp(v[0], -0.5, 0.5); }, {a});
  check("where", [](auto& v) { return where(gt(v[0], 0.0), v[0], v[1]); }, {a, leaf({3, 4}, 11)});
  check("round (zero gradient)",
        [](auto& v) {
          return round_half_even(v[0] * 3.0) + round_half_away(v[0] * 3.0) + floor(v[0]) + ceil(v[0]) + sign(v[0]) +
                 v[0];
        },
        {leaf({5}, 12, 0.1, 0.15)});
}

TEST(Gradcheck, Reductions) {
  Tensor a = leaf({3, 4, 5}, 5);
  check("sum all", [](auto& v) { return sum(v[0]); }, {a});
  check("sum dims", [](auto& v) { return sum(v[0], {0, 2}); }, {a});
  check("mean keepdim", [](auto& v) { return mean(v[0], {1}, true); }, {a});
  check("amax", [](auto& v) { return amax(v[0], {2}); }, {a});
  check("amin", [](auto& v) { return amin(v[0], {0, 1}); }, {a});
  check("var", [](auto& v) { return var(v[0], {1}); }, {a});
  check("var population", [](auto& v) { return var(v[0], {}, 0); }, {a});
}

TEST(Gradcheck, ShapeOps) {
  Tensor a = leaf({2, 3, 4}, 6);
  check("reshape", [](auto& v) { return reshape(v[0], {4, 6}) * 2.0; }, {a});
  check("flatten", [](auto& v) { return flatten(v[0], 1); }, {a});
  check("slice", [](auto& v) { return slice(v[0], 2, 1, 4, 2); }, {a});
  check("select", [](auto& v) { return select(v[0], 1, 2); }, {a});
  check("permute", [](auto& v) { return permute(v[0], {2, 0, 1}) * 1.0; }, {a});
  check("transpose", [](auto& v) { return transpose(v[0], 0, 2) * 1.0; }, {a});
  check("expand", [](auto& v) { return expand(v[0], {5, 3, 4}); }, {leaf({3, 1}, 7)});
  check("unsqueeze/squeeze", [](auto& v) { return squeeze(unsqueeze(v[0], 1), 1); }, {a});
  check("contiguous", [](auto& v) { return contiguous(transpose(v[0], 0, 1)); }, {a});
  check("cat", [](auto& v) { return cat({v[0], v[1]}, 1); }, {a, leaf({2, 2, 4}, 8)});
  check("pad", [](auto& v) { return pad(v[0], {1, 2, 0, 1}, 0.5); }, {a});
  Tensor idx = Tensor::from_vector<int32_t>({2, 0, 2, 1}, {4});
  check("index_select", [idx](auto& v) { return index_select(v[0], 2, idx); }, {a});
  Tensor gi = Tensor::from_vector<int32_t>({1, 1, 0, 2, 0, 0}, {2, 3, 1});
  check("gather", [gi](auto& v) { return gather(v[0], 2, gi); }, {a});
  check("to_dtype", [](auto& v) { return to_dtype(to_dtype(v[0], DType::F32), DType::F64) * 1.0; }, {a},
        {1e-3, 1e-5, 1e-3});
}

TEST(Gradcheck, MatmulLinear) {
  check("matmul", [](auto& v) { return matmul(v[0], v[1]); }, {leaf({3, 5}, 1), leaf({5, 2}, 2)});
  check("batched matmul", [](auto& v) { return matmul(v[0], v[1]); }, {leaf({2, 3, 4}, 3), leaf({4, 2}, 4)});
  check("linear", [](auto& v) { return linear(v[0], v[1], v[2]); }, {leaf({4, 5}, 5), leaf({3, 5}, 6), leaf({3}, 7)});
  check("linear 3-d", [](auto& v) { return linear(v[0], v[1]); }, {leaf({2, 4, 5}, 8), leaf({3, 5}, 9)});
}

TEST(Gradcheck, Conv2d) {
  for (auto [xs, ws, p] : {std::tuple{Shape{2, 3, 6, 5}, Shape{4, 3, 3, 3}, test::conv_params(1, 1)},
                           {Shape{1, 2, 7, 7}, Shape{3, 2, 3, 3}, test::conv_params(2, 0)},
                           {Shape{2, 4, 5, 5}, Shape{4, 2, 3, 3}, test::conv_params(1, 3, 2, 2)},
                           {Shape{1, 2, 5, 6}, Shape{2, 2, 1, 1}, test::conv_params(2, 0)}})
    check("conv2d", [p = p](auto& v) { return conv2d(v[0], v[1], v[2], p); },
          {leaf(xs, 1), leaf(ws, 2), leaf({ws[0]}, 3)});
}

TEST(Gradcheck, Pooling) {
  Pool2dParams mp;
  mp.kernel_h = mp.kernel_w = 3;
  mp.stride_h = mp.stride_w = 2;
  mp.pad_h = mp.pad_w = 1;
  check("max_pool2d", [mp](auto& v) { return max_pool2d(v[0], mp); }, {leaf({2, 2, 7, 6}, 1)});
  Pool2dParams ap = mp;
  check("avg_pool2d", [ap](auto& v) { return avg_pool2d(v[0], ap); }, {leaf({2, 2, 7, 6}, 2)});
  ap.count_include_pad = false;
  ap.ceil_mode = true;
  check("avg_pool2d excl ceil", [ap](auto& v) { return avg_pool2d(v[0], ap); }, {leaf({1, 2, 6, 6}, 3)});
  check("adaptive_avg_pool2d", [](auto& v) { return adaptive_avg_pool2d(v[0], 3, 2); }, {leaf({2, 2, 7, 5}, 4)});
}

TEST(Gradcheck, BatchNorm) {
  for (bool training : {true, false})
    for (bool relu : {false, true}) {
      Tensor rm = Rng(1).uniform({3}, -0.5, 0.5, DType::F64), rv = Rng(2).uniform({3}, 0.5, 2, DType::F64);
      check("batch_norm",
            [=](auto& v) {
              Tensor m = rm.clone(), s = rv.clone();  // running stats updated in place: fresh copies per call
              return batch_norm(v[0], m, s, v[1], v[2], training, 0.1, 1e-5, relu);
            },
            {leaf({4, 3, 3, 2}, 5), leaf({3}, 6, 0.5, 1.5), leaf({3}, 7)}, {1e-6, 1e-6, 1e-4});
    }
}

TEST(Gradcheck, SoftmaxAndLosses) {
  Tensor t = Tensor::from_vector<int32_t>({0, 3, 2, 3}, {4});
  check("softmax", [](auto& v) { return softmax(v[0], 1); }, {leaf({3, 4, 2}, 1)});
  check("log_softmax", [](auto& v) { return log_softmax(v[0], -1); }, {leaf({3, 4}, 2)});
  check("nll_loss", [=](auto& v) { return nll_loss(v[0], t, Reduction::Sum); }, {leaf({4, 5}, 4)});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    check("cross_entropy", [=](auto& v) { return cross_entropy(v[0], t, r); }, {leaf({4, 5}, 3, -3, 3)});
}

TEST(Gradcheck, ReportsAWrongGradient) {
  // y = 2x with a backward that forgets the 2: the checker must say so (it can fail).
  Fn wrong = [](const std::vector<Tensor>& v) {
    return record("wrong", raw::binary(raw::Binary::Mul, v[0], 2.0), {v[0]},
                  [](const Tensor& g) { return std::vector<Tensor>{g}; });
  };
  BackendScope ref(Backend::Reference);
  GradcheckResult r = gradcheck(wrong, {leaf({3}, 1)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.report.find("analytic"), std::string::npos);
}

}  // namespace
}  // namespace dearest
