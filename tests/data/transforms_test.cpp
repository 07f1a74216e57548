#include "data/transforms.h"

#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

Tensor ramp_u8() { return Tensor::arange(0, 3 * 4 * 4).reshape({3, 4, 4}).to(DType::U8); }

TEST(Transforms, ToFloatAndNormalize) {
  Rng rng(1);
  Tensor f = to_float()->apply(ramp_u8(), rng, {});
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_FLOAT_EQ(float(f.at({2, 3, 3})), 47.0f / 255.0f);
  Normalization n = normalization_of("cifar10");
  Tensor z = normalize(n.mean, n.std)->apply(f, rng, {});
  EXPECT_FLOAT_EQ(float(z.at({1, 0, 1})), (17.0f / 255.0f - 0.4822f) / 0.1994f);
  EXPECT_ERROR_CONTAINS(normalize(n.mean, n.std)->apply(ramp_u8(), rng, {}), "normalize", "ToFloat");
}

TEST(Transforms, RandomCropPadsWithZerosAndFlipMirrors) {
  Tensor img = Tensor::full({3, 32, 32}, 200, DType::U8);
  auto crop = random_crop(32, 32, 4);
  int saw_zero_border = 0;
  for (int64_t i = 0; i < 20; ++i) {
    Rng rng = sample_rng(0, 0, i);
    Tensor c = crop->apply(img, rng, {});
    EXPECT_EQ(c.shape(), Shape({3, 32, 32}));
    const double s = dearest::test::max_abs_diff(c, img);
    saw_zero_border += s == 200;
    EXPECT_TRUE(s == 0 || s == 200);
  }
  EXPECT_GT(saw_zero_border, 10);  // most offsets show some padding
  Rng rng(3);
  Tensor r = ramp_u8();
  Tensor flipped = random_horizontal_flip(1.0)->apply(r, rng, {});
  EXPECT_EQ(flipped.at({1, 2, 0}), r.at({1, 2, 3}));
  EXPECT_TRUE(dearest::test::bitwise_equal(random_horizontal_flip(0.0)->apply(r, rng, {}), r));
}

TEST(Transforms, DeterministicPerSeedEpochIndex) {
  auto t = train_transform("cifar10");
  Tensor img = Rng(5).integers({3, 32, 32}, 0, 256).to(DType::U8);
  auto run = [&](uint64_t seed, int64_t epoch, int64_t index) {
    Rng rng = sample_rng(seed, epoch, index);
    return t->apply(img, rng, {index, 0});
  };
  EXPECT_TRUE(dearest::test::bitwise_equal(run(1, 2, 3), run(1, 2, 3)));
  int differ = 0;
  for (int64_t e = 0; e < 8; ++e) differ += !dearest::test::bitwise_equal(run(1, 0, 3), run(1, e + 1, 3));
  EXPECT_GT(differ, 5);
}

TEST(Transforms, ResizeCropsAndRandomResizedCrop) {
  Rng rng(2);
  Tensor f = to_float()->apply(Rng(9).integers({3, 50, 70}, 0, 256).to(DType::U8), rng, {});
  EXPECT_EQ(resize(20, 30)->apply(f, rng, {}).shape(), Shape({3, 20, 30}));
  Tensor cc = center_crop(10, 10)->apply(f, rng, {});
  EXPECT_EQ(cc.at({0, 0, 0}), f.at({0, 20, 30}));
  for (int i = 0; i < 20; ++i) {
    Rng r = sample_rng(4, 0, i);
    EXPECT_EQ(random_resized_crop(24, 24)->apply(f, r, {}).shape(), Shape({3, 24, 24}));
  }
  EXPECT_EQ(test_transform("imagenette")->apply(f, rng, {}).shape(), Shape({3, 224, 224}));
  EXPECT_ERROR_CONTAINS(resize(4, 4)->apply(ramp_u8(), rng, {}), "resize", "ToFloat");
}

TEST(Transforms, StampGoesBeforeNormalize) {
  auto t = test_transform("cifar10");
  auto white_corner = lambda("corner", [](const Tensor& x, Rng&, const SampleInfo&) {
    Tensor y = x.clone();
    y.slice(1, 0, 2).slice(2, 0, 2).fill_(1.0);  // in [0, 1] space
    return y;
  }, false);
  auto stamped = t->with_stamp(white_corner);
  EXPECT_EQ(stamped->steps().size(), t->steps().size() + 1);
  EXPECT_TRUE(stamped->steps().back()->is_normalize());
  Rng rng(1);
  Tensor out = stamped->apply(Tensor::zeros({3, 32, 32}, DType::U8), rng, {});
  EXPECT_NEAR(out.at({0, 0, 0}), (1.0 - 0.4914) / 0.2023, 1e-5);
  EXPECT_NEAR(out.at({0, 5, 5}), (0.0 - 0.4914) / 0.2023, 1e-5);
  EXPECT_NE(stamped->describe().find("corner -> Normalize"), std::string::npos) << stamped->describe();
  EXPECT_EQ(train_transform("cifar10")->deterministic_only()->steps().size(), 2u);
}


// A smooth gradient plus a checkerboard: content JPEG visibly degrades at low quality.
Tensor textured_u8() {
  Tensor t = Tensor::empty({3, 32, 32}, DType::U8);
  uint8_t* d = t.data<uint8_t>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) d[(c * 32 + y) * 32 + x] = uint8_t(40 + 4 * x + 2 * y + (((x + y + c) & 1) ? 30 : 0));
  return t;
}

TEST(Transforms, JpegRoundTripLosesMoreAtLowerQuality) {
  Tensor img = textured_u8();
  Rng rng(0);
  Tensor q95 = jpeg(95)->apply(img, rng, {}), q75 = jpeg(75)->apply(img, rng, {}), q20 = jpeg(20)->apply(img, rng, {});
  EXPECT_EQ(q75.shape(), img.shape());
  EXPECT_EQ(q75.dtype(), DType::U8);
  auto mad = [&](const Tensor& a) {
    std::vector<double> u = a.to_vector(), v = img.to_vector();
    double s = 0;
    for (size_t i = 0; i < u.size(); ++i) s += std::abs(u[i] - v[i]);
    return s / double(u.size());
  };
  EXPECT_GT(mad(q75), 0.5);
  EXPECT_LT(mad(q95), mad(q75));
  EXPECT_LT(mad(q75), mad(q20));
  EXPECT_LT(mad(q95), 12.0);
  // f32 images in [0, 1] go through u8 and come back as f32 equal to the u8 path / 255.
  Tensor f = jpeg(75)->apply(to_float()->apply(img, rng, {}), rng, {});
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_LE(dearest::test::max_abs_diff(f, to_float()->apply(q75, rng, {})), 0.0);
  EXPECT_ERROR_CONTAINS(jpeg(0), "quality");
  EXPECT_ERROR_CONTAINS(random_jpeg(0.5, 90, 60), "q_min");
  EXPECT_ERROR_CONTAINS(jpeg(75)->apply(Tensor::zeros({3, 8}, DType::U8), rng, {}), "image");
}

TEST(Transforms, RandomJpegIsReproducibleAndOptional) {
  Tensor img = textured_u8();
  auto t = random_jpeg(0.5, 50, 90);
  int changed = 0;
  for (int64_t i = 0; i < 40; ++i) {
    Rng a = sample_rng(7, 1, i), b = sample_rng(7, 1, i);
    Tensor x = t->apply(img, a, {}), y = t->apply(img, b, {});
    EXPECT_TRUE(dearest::test::bitwise_equal(x, y));
    changed += !dearest::test::bitwise_equal(x, img);
  }
  EXPECT_GT(changed, 8);
  EXPECT_LT(changed, 32);
  Rng rng(1);
  EXPECT_TRUE(dearest::test::bitwise_equal(random_jpeg(0.0, 50, 90)->apply(img, rng, {}), img));
  // A fixed quality is deterministic (kept for showing samples); a random one is not.
  auto c = train_transform("cifar10")->with_front(random_jpeg(0.5, 60, 90));
  EXPECT_EQ(c->steps().size(), 5u);
  EXPECT_EQ(c->deterministic_only()->steps().size(), 2u);
  EXPECT_EQ(test_transform("cifar10")->with_front(jpeg(75))->deterministic_only()->steps().size(), 3u);
  EXPECT_NE(c->describe().find("RandomJpeg(p=0.5, quality=60..90)"), std::string::npos);
}

}  // namespace
}  // namespace dearest::data
