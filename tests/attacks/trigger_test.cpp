// Triggers: where the reference squares land, stamping u8 and f32 images, the image-max value,
// blending, and clear errors for bad specs.
#include "attacks/trigger.h"

#include "autograd/ops.h"

#include "tests/test_util.h"

namespace dearest::attacks {
namespace {

// Rows/cols of the stamped region: every pixel that changed on a zero image.
void region(const Tensor& stamped, int64_t& top, int64_t& left, int64_t& h, int64_t& w) {
  const int64_t H = stamped.size(1), W = stamped.size(2);
  int64_t r0 = H, r1 = -1, c0 = W, c1 = -1;
  auto v = stamped.to_vector();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      if (v[size_t(y * W + x)] != 0) {
        r0 = std::min(r0, y), r1 = std::max(r1, y), c0 = std::min(c0, x), c1 = std::max(c1, x);
      }
  top = r0, left = c0, h = r1 - r0 + 1, w = c1 - c0 + 1;
}

TEST(Trigger, ReferenceSquaresLandWhereTheAttacksPutThem) {
  struct Case {
    std::string attack;
    int64_t side, top, size;
  } cases[] = {{"pq-backdoor", 32, 24, 6}, {"pq-backdoor", 64, 48, 12}, {"comp-artifact", 32, 27, 4},
               {"qu-anti-zation", 32, 27, 4}, {"qu-anti-zation", 64, 54, 8}, {"badnets", 32, 29, 3},
               {"badnets", 64, 58, 6}};
  for (auto& c : cases) {
    Tensor img = Tensor::zeros({3, c.side, c.side}, DType::U8);
    Tensor s = reference_trigger(c.attack, c.side)->apply(img);
    int64_t top, left, h, w;
    region(s, top, left, h, w);
    EXPECT_EQ(top, c.top) << c.attack << " " << c.side;
    EXPECT_EQ(left, c.top) << c.attack << " " << c.side;
    EXPECT_EQ(h, c.size) << c.attack << " " << c.side;
    EXPECT_EQ(w, c.size) << c.attack << " " << c.side;
    EXPECT_EQ(s.at({2, c.top, c.top}), 255.0);  // all three channels, value 1.0 = 255
  }
}

TEST(Trigger, SquareOnU8AndFloatAndImageMax) {
  Tensor f = Tensor::full({3, 8, 8}, 0.25, DType::F32);
  f.data<float>()[5] = 0.75f;
  Tensor s = parse_trigger("square:size=2,top=1,left=3,value=0.5", 8)->apply(f);
  EXPECT_EQ(s.at({1, 2, 4}), 0.5);
  EXPECT_EQ(s.at({1, 3, 4}), 0.25);
  EXPECT_EQ(f.at({1, 2, 4}), 0.25);  // the input is not modified
  Tensor m = parse_trigger("square:size=2,value=max", 8)->apply(f);  // bottom-right by default
  EXPECT_EQ(m.at({0, 7, 7}), 0.75);
  Tensor u = Tensor::full({3, 8, 8}, 10, DType::U8);
  EXPECT_EQ(parse_trigger("square:size=3,value=1", 8)->apply(u).at({2, 6, 6}), 255.0);
}

TEST(Trigger, BlendMixesWithOneFixedPattern) {
  auto t = parse_trigger("blend:alpha=0.25,seed=3", 16);
  Tensor a = Tensor::zeros({3, 16, 16}), b = Tensor::ones({3, 16, 16});
  Tensor sa = t->apply(a), sb = t->apply(b);
  auto va = sa.to_vector(), vb = sb.to_vector();
  for (size_t i = 0; i < va.size(); ++i) {
    EXPECT_GE(va[i], 0.0);
    EXPECT_LE(va[i], 0.25 + 1e-6);
    EXPECT_NEAR(vb[i] - va[i], 0.75, 1e-6);  // the same pattern on both
  }
  EXPECT_FALSE(test::bitwise_equal(sa, parse_trigger("blend:alpha=0.25,seed=4", 16)->apply(a)));
}

TEST(Trigger, WanetWarpsSmoothlyAndReproducibly) {
  auto t = parse_trigger("wanet:k=4,s=0.5,seed=1", 32);
  // A constant image stays constant (bilinear weights sum to one, nothing is sampled outside).
  Tensor c = Tensor::full({3, 32, 32}, 0.4f);
  EXPECT_LT(test::max_abs_diff(t->apply(c), c), 1e-6);
  // A ramp x/31 becomes the warped x coordinate: every pixel moves, by less than s * (mean-
  // normalised field, at most 1/mean|u| ~ 4) / 2 pixels, and the corners (clamped) stay.
  Tensor ramp = Tensor::empty({3, 32, 32});
  float* r = ramp.data<float>();
  for (int64_t i = 0; i < ramp.numel(); ++i) r[i] = float(i % 32) / 31.0f;
  const Tensor w = t->apply(ramp);
  const double shift = test::max_abs_diff(w, ramp) * 31;
  EXPECT_GT(shift, 0.05);
  EXPECT_LT(shift, 2.5);
  EXPECT_TRUE(test::bitwise_equal(w, parse_trigger("wanet:k=4,s=0.5,seed=1", 32)->apply(ramp)));
  EXPECT_FALSE(test::bitwise_equal(w, parse_trigger("wanet:k=4,s=0.5,seed=2", 32)->apply(ramp)));
  // u8 images are warped at 255 scale and rounded.
  Tensor u = Tensor::empty({3, 32, 32}, DType::U8);
  uint8_t* ud = u.data<uint8_t>();
  for (int64_t i = 0; i < u.numel(); ++i) ud[i] = uint8_t(i % 32 * 8);
  const Tensor wu = t->apply(u);
  ASSERT_EQ(wu.dtype(), DType::U8);
  EXPECT_LE(test::max_abs_diff(wu.to(DType::F32), mul(w, 248.0)), 0.5 + 1e-3);
}

TEST(Trigger, ClearErrors) {
  EXPECT_ERROR_CONTAINS(parse_trigger("wanet:k=1", 32), "k must be in [2, 32]");
  EXPECT_ERROR_CONTAINS(parse_trigger("wanet:s=-1", 32), "s must be positive");
  EXPECT_ERROR_CONTAINS(parse_trigger("wanet:grid=3", 32), "unknown field");
  EXPECT_ERROR_CONTAINS(parse_trigger("square:size=40", 32), "does not fit");
  EXPECT_ERROR_CONTAINS(parse_trigger("square:size=4,top=30", 32), "does not fit");
  EXPECT_ERROR_CONTAINS(parse_trigger("star:size=4", 32), "unknown kind");
  EXPECT_ERROR_CONTAINS(parse_trigger("square:colour=red", 32), "unknown field");
  EXPECT_ERROR_CONTAINS(parse_trigger("square:size=four", 32), "number");
  EXPECT_ERROR_CONTAINS(parse_trigger("square:value=2", 32), "value");
  EXPECT_ERROR_CONTAINS(parse_trigger("blend:alpha=0", 32), "alpha");
  EXPECT_ERROR_CONTAINS(reference_trigger("trojannn", 32), "no reference trigger");
  EXPECT_ERROR_CONTAINS(square_trigger(6, 24, 24, 1)->apply(Tensor::zeros({3, 16, 16}, DType::U8)), "does not fit");
}

}  // namespace
}  // namespace dearest::attacks
