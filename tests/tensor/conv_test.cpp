#include "tensor/ops/conv.h"

#include "tensor/kernels/dnnl/dnnl_info.h"
#include "tensor/runtime.h"
#include "tests/test_util.h"

namespace dearest::raw {
namespace {

struct ConvCase {
  Shape x, w;
  Conv2dParams p;
  bool bias;
};

std::vector<ConvCase> cases() {
  Conv2dParams asym = test::conv_params(1, 1);
  asym.stride_w = 2;
  asym.pad_h = 0;
  return {
      {{1, 3, 9, 7}, {8, 3, 3, 3}, test::conv_params(1, 0), true},      // batch 1, odd sizes, 3 input channels
      {{2, 5, 9, 7}, {6, 5, 3, 3}, test::conv_params(2, 1), true},      // the fixture's geometry
      {{3, 16, 11, 13}, {16, 16, 3, 3}, test::conv_params(1, 1), false},
      {{2, 16, 12, 12}, {32, 16, 3, 3}, test::conv_params(2, 1), false},
      {{2, 8, 10, 10}, {12, 8, 7, 7}, test::conv_params(1, 3), true},   // padding 3
      {{2, 8, 10, 10}, {8, 8, 3, 3}, test::conv_params(1, 3), false},   // padding beyond half the kernel
      {{2, 16, 9, 9}, {32, 16, 1, 1}, test::conv_params(2, 0), false},  // 1x1 stride-2 shortcut
      {{1, 8, 12, 12}, {8, 8, 3, 3}, test::conv_params(1, 2, 2), true}, // dilation
      {{2, 16, 8, 8}, {16, 4, 3, 3}, test::conv_params(1, 1, 1, 4), true},  // groups
      {{2, 6, 7, 9}, {4, 6, 2, 3}, asym, false},        // rectangular kernel, mixed strides
  };
}

struct Grads {
  Tensor y, gx, gw, gb;
};

Grads run(const ConvCase& c, DType dt) {
  Tensor x = test::randn(c.x, 1, dt), w = test::randn(c.w, 2, dt), b = c.bias ? test::randn({c.w[0]}, 3, dt) : Tensor();
  Grads r;
  r.y = conv2d(x, w, b, c.p);
  Tensor gy = test::randn(r.y.shape(), 4, dt);
  r.gx = conv2d_backward_data(gy, w, c.x, c.bias, c.p);
  ConvWeightGrads wg = conv2d_backward_weights(gy, x, c.w, c.bias, c.p);
  r.gw = wg.w;
  r.gb = wg.bias;
  return r;
}

// Runs `c` with the fast kernels and with the float64 reference and checks the three passes (and
// the bias gradient) within `tol` of each tensor's scale; returns the fast results.
Grads expect_matches_reference(const ConvCase& c, double tol) {
  Grads fast = run(c, DType::F32);
  Grads ref;
  {
    BackendScope s(Backend::Reference);
    ref = run(c, DType::F64);
  }
  const std::string what = shape_str(c.x) + " * " + shape_str(c.w) + " " + c.p.str();
  EXPECT_LT(test::rel_err(fast.y.plain(), ref.y), tol) << what;
  EXPECT_LT(test::rel_err(fast.gx.plain(), ref.gx), tol) << what;
  EXPECT_LT(test::rel_err(fast.gw, ref.gw), tol) << what;
  if (c.bias) {
    EXPECT_LT(test::rel_err(fast.gb, ref.gb), tol) << what;
  }
  return fast;
}

TEST(Conv2d, FastMatchesReferenceOnRandomShapes) {
  for (LayoutPolicy policy : {LayoutPolicy::Blocked, LayoutPolicy::Plain}) {
    LayoutPolicyScope lp(policy);
    for (const ConvCase& c : cases()) {
      const Grads fast = expect_matches_reference(c, 2e-6);
      if (policy == LayoutPolicy::Plain) {
        EXPECT_FALSE(fast.y.is_blocked());
      }
    }
  }
}

// 40 geometries drawn at random: batch 1-3, odd sizes, strides 1-2, padding 0/1/3, dilation 1-2,
// groups 1-2, kernels 1-5, with and without bias.
TEST(Conv2d, FastMatchesReferenceOnRandomGeometries) {
  Rng r(2024, 1);
  int tested = 0;
  while (tested < 40) {
    const int64_t g = r.next_int(1, 3), n = r.next_int(1, 4), c = g * r.next_int(1, 7), o = g * r.next_int(1, 7);
    const int64_t h = r.next_int(3, 14), w = r.next_int(3, 14), kh = r.next_int(1, 6), kw = r.next_int(1, 6);
    Conv2dParams p;
    p.stride_h = r.next_int(1, 3);
    p.stride_w = r.next_int(1, 3);
    const int64_t pads[] = {0, 1, 3};
    p.pad_h = pads[r.next_int(0, 3)];
    p.pad_w = pads[r.next_int(0, 3)];
    p.dil_h = r.next_int(1, 3);
    p.dil_w = r.next_int(1, 3);
    p.groups = g;
    if (conv_out_size(h, kh, p.stride_h, p.pad_h, p.dil_h) < 1 || conv_out_size(w, kw, p.stride_w, p.pad_w, p.dil_w) < 1)
      continue;
    expect_matches_reference({{n, c, h, w}, {o, c / g, kh, kw}, p, r.next_int(0, 2) == 1}, 2e-6);
    ++tested;
  }
}

// --conv winograd: on the 3x3 stride-1 layers of ResNet and VGG oneDNN runs its Winograd kernels
// (on AVX-512 hosts) and the three passes still agree with the float64 reference within float32
// noise; a geometry Winograd cannot take (stride 2, 1x1) or is slow on (under 16 input
// channels) runs the direct algorithm, with the same answer as under --conv direct.
TEST(Conv2d, WinogradMatchesReferenceAndFallsBackToDirect) {
  ConvAlgorithmScope wino(ConvAlgorithm::Winograd);
  const std::vector<ConvCase> wcases = {
      {{2, 16, 12, 12}, {32, 16, 3, 3}, test::conv_params(1, 1), false},  // a ResNet body layer, small
      {{3, 32, 8, 8}, {16, 32, 3, 3}, test::conv_params(1, 1), true},
      {{2, 16, 12, 12}, {32, 16, 3, 3}, test::conv_params(2, 1), false},  // stride 2: direct
      {{2, 16, 9, 9}, {32, 16, 1, 1}, test::conv_params(2, 0), false},    // 1x1 shortcut: direct
      {{1, 3, 9, 7}, {8, 3, 3, 3}, test::conv_params(1, 1), true},        // a stem (3 channels): direct
  };
  for (const ConvCase& c : wcases) expect_matches_reference(c, 2e-5);
  int wino_kernels = 0, direct_wino_keys = 0;
  for (const std::string& impl : kernel_implementations()) {
    if (impl.find(" wino:") == std::string::npos) continue;  // the keys of convs created under Winograd
    if (impl.find("wino_") != std::string::npos) ++wino_kernels;
    else ++direct_wino_keys;
  }
  EXPECT_GT(direct_wino_keys, 0) << "stride-2 and 1x1 convs fall back to direct";
  const std::string isa = dnnl_isa_string();
  if (isa.find("avx512") != std::string::npos) {
    EXPECT_GE(wino_kernels, 2) << "oneDNN has Winograd kernels on AVX-512 for the 3x3 stride-1 layers";
  } else {
    std::printf("no AVX-512 on this host: every conv ran direct under --conv winograd (%d fallbacks)\n", direct_wino_keys);
  }
}

TEST(Conv2d, ReferenceF32MatchesF64) {
  BackendScope s(Backend::Reference);
  for (const ConvCase& c : cases()) {
    Grads a = run(c, DType::F32), b = run(c, DType::F64);
    EXPECT_LT(test::rel_err(a.y, b.y), 1e-6);
    EXPECT_LT(test::rel_err(a.gw, b.gw), 1e-6);
  }
}

TEST(Conv2d, BadInputsRaise) {
  Tensor x = Tensor::zeros({1, 3, 8, 8}), w = Tensor::zeros({4, 2, 3, 3});
  EXPECT_ERROR_CONTAINS(conv2d(x, w, Tensor(), {}), "conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]");
  EXPECT_ERROR_CONTAINS(conv2d(Tensor::zeros({3, 8, 8}), w, Tensor(), {}), "conv2d", "4-d");
  EXPECT_ERROR_CONTAINS(conv2d(x, Tensor::zeros({4, 3, 9, 9}), Tensor(), {}), "conv2d", "does not fit");
  EXPECT_ERROR_CONTAINS(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({5}), {}), "conv2d", "bias", "[5]");
  EXPECT_ERROR_CONTAINS(conv2d(x, Tensor::zeros({4, 3, 3, 3}, DType::F64), Tensor(), {}), "conv2d", "dtype");
}

}  // namespace
}  // namespace dearest::raw
