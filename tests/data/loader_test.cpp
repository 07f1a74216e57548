#include "data/loader.h"

#include <omp.h>

#include <set>

#include "data/cifar10.h"
#include "data/synthetic.h"
#include "data/tinyimagenet.h"
#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

DataLoader make(int64_t n, LoaderOptions o) {
  SyntheticOptions so;
  so.size = n;
  return DataLoader(open_synthetic("train", so), train_transform("synthetic"), o);
}

std::vector<Batch> read_epoch(const DataLoader& l, int64_t e) {
  std::vector<Batch> out;
  Batch b;
  auto it = l.epoch(e);
  while (it.next(b)) out.push_back(b);
  return out;
}

TEST(Loader, BatchesCoverTheEpoch) {
  LoaderOptions o;
  o.batch_size = 32;
  o.seed = 3;
  DataLoader l = make(100, o);
  EXPECT_EQ(l.num_batches(), 4);
  auto bs = read_epoch(l, 0);
  ASSERT_EQ(bs.size(), 4u);
  EXPECT_EQ(bs[0].images.shape(), Shape({32, 3, 32, 32}));
  EXPECT_EQ(bs[3].images.shape(), Shape({4, 3, 32, 32}));
  std::set<int64_t> seen;
  for (auto& b : bs)
    for (size_t k = 0; k < b.indices.size(); ++k) {
      seen.insert(b.indices[k]);
      EXPECT_EQ(b.labels.at({int64_t(k)}), l.dataset()->label(b.indices[k]));
    }
  EXPECT_EQ(seen.size(), 100u);
  o.drop_last = true;
  EXPECT_EQ(make(100, o).num_batches(), 3);
  o.shuffle = false;
  EXPECT_EQ(read_epoch(make(100, o), 0)[1].indices[0], 32);
}

TEST(Loader, EpochsAreReproducibleAndDiffer) {
  LoaderOptions o;
  o.batch_size = 16;
  o.seed = 11;
  DataLoader l = make(64, o);
  auto a = read_epoch(l, 2), b = read_epoch(l, 2), c = read_epoch(l, 3);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(dearest::test::bitwise_equal(a[i].images, b[i].images));
    EXPECT_EQ(a[i].indices, b[i].indices);
  }
  EXPECT_NE(a[0].indices, c[0].indices);
  // Resuming mid-epoch yields the same later batches.
  Batch r;
  auto it = l.epoch(2, 3);
  ASSERT_TRUE(it.next(r));
  EXPECT_TRUE(dearest::test::bitwise_equal(r.images, a[3].images));
}

TEST(Loader, SameBatchesWithPrefetchAndAnyThreadCount) {
  LoaderOptions o;
  o.batch_size = 20;
  o.seed = 5;
  auto ref = read_epoch(make(90, o), 1);
  o.prefetch = true;
  auto pre = read_epoch(make(90, o), 1);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  o.prefetch = false;
  auto one = read_epoch(make(90, o), 1);
  omp_set_num_threads(saved);
  ASSERT_EQ(ref.size(), pre.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_TRUE(dearest::test::bitwise_equal(ref[i].images, pre[i].images));
    EXPECT_TRUE(dearest::test::bitwise_equal(ref[i].images, one[i].images));
  }
}

TEST(Loader, ErrorsSurfaceInTheCaller) {
  test::ScratchDir d("loader_bad");
  d.file("wnids.txt", "n01\n");
  d.file("train/n01/images/a.JPEG", "not an image");
  DatasetPtr bad = open_tiny_imagenet(d.path(), "train");
  for (bool prefetch : {false, true}) {
    LoaderOptions o;
    o.prefetch = prefetch;
    DataLoader l(bad, test_transform("tiny-imagenet"), o);
    EXPECT_ERROR_CONTAINS(read_epoch(l, 0), "a.JPEG", "not a decodable image");
  }
  // Samples that come out of the transform in different shapes cannot be batched.
  SyntheticOptions so;
  so.size = 8;
  auto uneven = std::make_shared<Compose>(std::vector<TransformPtr>{
      to_float(), lambda("uneven", [](const Tensor& x, Rng&, const SampleInfo& info) {
        return info.index == 0 ? x : x.slice(1, 0, 16).contiguous();
      })});
  LoaderOptions o;
  o.shuffle = false;
  EXPECT_ERROR_CONTAINS(read_epoch(DataLoader(open_synthetic("train", so), uneven, o), 0), "sample 1",
                        "after the transform");
  EXPECT_ERROR_CONTAINS(DataLoader(nullptr, nullptr, {}), "no dataset");
  o.batch_size = 0;
  EXPECT_ERROR_CONTAINS(make(10, o), "batch size");
}

}  // namespace
}  // namespace dearest::data
