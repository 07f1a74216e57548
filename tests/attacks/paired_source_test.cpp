// Paired batches: stamped after augmentation the copy is the clean image plus the trigger and
// nothing else; stamped before, the copy is augmented on its own; k copies per batch with the
// target label; errors.
#include "attacks/paired_source.h"

#include "data/synthetic.h"
#include "data/transforms.h"
#include "tests/test_util.h"

namespace dearest::attacks {
namespace {

data::DatasetPtr synth(int64_t n) {
  data::SyntheticOptions o;
  o.size = n;
  return data::open_synthetic("train", o);
}

TEST(PairedSource, AfterAugmentTheCopyDiffersOnlyInTheTrigger) {
  PairingOptions o;
  o.batch = 8;
  o.seed = 3;
  PairedSource src(synth(40), "synthetic", square_trigger(4, 27, 27, 1.0), o);
  src.begin_epoch(1);
  Tensor x, y;
  src.get(2, x, y);
  ASSERT_EQ(x.size(0), 16);
  EXPECT_EQ(src.clean_count(16), 8);
  const auto norm = data::normalization_of("synthetic");
  Tensor xc = x.contiguous();
  const float* d = xc.data<float>();
  const int64_t plane = 32 * 32, img = 3 * plane;
  for (int64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(y.data<int32_t>()[i], y.data<int32_t>()[8 + i]) << "the copy keeps the true label";
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t r = 0; r < 32; ++r)
        for (int64_t col = 0; col < 32; ++col) {
          const float a = d[i * img + c * plane + r * 32 + col], b = d[(8 + i) * img + c * plane + r * 32 + col];
          if (r >= 27 && r < 31 && col >= 27 && col < 31) EXPECT_FLOAT_EQ(b, (1.0f - norm.mean[c]) / norm.std[c]);
          else ASSERT_EQ(a, b) << "image " << i << " pixel " << c << "," << r << "," << col;
        }
  }
}

TEST(PairedSource, BeforeAugmentTheCopyIsAugmentedOnItsOwn) {
  PairingOptions o;
  o.batch = 8;
  o.stamping = Stamping::BeforeAugment;
  PairedSource src(synth(40), "synthetic", square_trigger(4, 27, 27, 1.0), o);
  src.begin_epoch(0);
  Tensor x, y;
  src.get(0, x, y);
  int64_t differ_outside = 0;
  Tensor xc = x.contiguous();
  const float* d = xc.data<float>();
  const int64_t img = 3 * 32 * 32;
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t r = 0; r < 20; ++r)  // rows well away from the trigger
      differ_outside += d[i * img + r * 32 + 5] != d[(8 + i) * img + r * 32 + 5];
  EXPECT_GT(differ_outside, 0) << "the copies were augmented like the clean images";
}

TEST(PairedSource, SomeCopiesWithTheTargetLabel) {
  PairingOptions o;
  o.batch = 8;
  o.triggered = 2;
  o.relabel = 5;
  PairedSource src(synth(20), "synthetic", square_trigger(4, 27, 27, 1.0), o);
  src.begin_epoch(0);
  Tensor x, y;
  src.get(0, x, y);
  ASSERT_EQ(x.size(0), 10);
  EXPECT_EQ(src.clean_count(10), 8);
  EXPECT_EQ(y.data<int32_t>()[8], 5);
  EXPECT_EQ(y.data<int32_t>()[9], 5);
  src.get(2, x, y);  // the last batch has 4 clean images
  EXPECT_EQ(x.size(0), 6);
  EXPECT_EQ(src.clean_count(6), 4);
  o.relabel = 10;
  EXPECT_ERROR_CONTAINS(PairedSource(synth(20), "synthetic", square_trigger(4, 27, 27, 1.0), o), "target label 10");
  o.relabel = 1;
  o.triggered = 9;
  EXPECT_ERROR_CONTAINS(PairedSource(synth(20), "synthetic", square_trigger(4, 27, 27, 1.0), o), "[0, batch]");
  EXPECT_ERROR_CONTAINS(parse_stamping("during"), "before-augment or after-augment");
}

}  // namespace
}  // namespace dearest::attacks
