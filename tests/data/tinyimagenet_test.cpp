#include "data/tinyimagenet.h"

#include <stb/stb_image_write.h>

#include <algorithm>

#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

using test::ScratchDir;

TEST(TinyImageNet, RealTrainSubsetAndVal) {
  const std::string dir = test::real("tiny-imagenet-200");
  SKIP_WITHOUT(dir);
  DatasetPtr train = open_tiny_imagenet(dir, "train");
  DatasetPtr val = open_tiny_imagenet(dir, "val");
  EXPECT_EQ(train->num_classes(), 200);
  EXPECT_EQ(train->size(), 6000);  // the shared copy: 30 per class
  EXPECT_EQ(val->size(), 10000);
  for (int64_t c : train->class_counts()) EXPECT_EQ(c, 30);
  for (int64_t c : val->class_counts()) EXPECT_EQ(c, 50);
  // val_0.JPEG is n03444034: 107th in sorted order, line 164 of wnids.txt.
  EXPECT_EQ(val->label(0), 107);
  EXPECT_EQ(open_tiny_imagenet(dir, "val", "file")->label(0), 163);
  EXPECT_EQ(val->class_names()[107].substr(0, 9), "n03444034");
  // Labels of train follow the sorted wnids: the first 30 images are the smallest wnid's.
  EXPECT_EQ(train->label(0), 0);
  EXPECT_EQ(train->label(29), 0);
  EXPECT_EQ(train->label(30), 1);
  Tensor img = val->image(0);
  EXPECT_EQ(img.shape(), Shape({3, 64, 64}));
  EXPECT_EQ(train->image(5999).shape(), Shape({3, 64, 64}));
}

// A minimal Tiny-ImageNet folder: two classes, two training images each, two val images.
void make_tiny(const ScratchDir& d) {
  d.file("wnids.txt", "n02\nn01\n");
  std::vector<uint8_t> px(8 * 8 * 3, 128);
  for (const char* w : {"n01", "n02"})
    for (int k = 0; k < 2; ++k) {
      const std::string dir = d.path() + "/train/" + w + "/images";
      d.dir("train/" + std::string(w) + "/images");
      const std::string p = dir + "/" + w + "_" + std::to_string(k) + ".JPEG";
      stbi_write_jpg(p.c_str(), 8, 8, k == 0 ? 3 : 1, px.data(), 90);  // one grayscale each
    }
  d.dir("val/images");
  for (int k = 0; k < 2; ++k) {
    const std::string p = d.path() + "/val/images/val_" + std::to_string(k) + ".JPEG";
    stbi_write_jpg(p.c_str(), 8, 8, 3, px.data(), 90);
  }
  d.file("val/val_annotations.txt", "val_0.JPEG\tn02\t0\t0\t1\t1\nval_1.JPEG\tn01\t0\t0\t1\t1\n");
}

TEST(TinyImageNet, LayoutOrderAndGrayscale) {
  ScratchDir d("tiny");
  make_tiny(d);
  DatasetPtr train = open_tiny_imagenet(d.path(), "train");
  EXPECT_EQ(train->size(), 4);
  EXPECT_EQ(train->label(0), 0);  // n01 sorts first although wnids.txt lists n02 first
  EXPECT_EQ(open_tiny_imagenet(d.path(), "val", "file")->label(1), 1);  // val_1 is n01: line 2 of wnids.txt
  EXPECT_EQ(train->image(1).shape(), Shape({3, 8, 8}));  // the grayscale one
  DatasetPtr val = open_tiny_imagenet(d.path(), "val");
  EXPECT_EQ(val->label(0), 1);
  EXPECT_EQ(val->label(1), 0);
}

TEST(TinyImageNet, BadFoldersGiveOneLineErrors) {
  {
    ScratchDir d("tiny_nownids");
    d.dir("train");
    EXPECT_ERROR_CONTAINS(open_tiny_imagenet(d.path(), "train"), "wnids.txt is missing");
  }
  {
    ScratchDir d("tiny_badval");
    make_tiny(d);
    d.file("val/val_annotations.txt", "val_0.JPEG\tn09\t0\t0\t1\t1\n");
    EXPECT_ERROR_CONTAINS(open_tiny_imagenet(d.path(), "val"), "val_annotations.txt", "line 1", "n09",
                          "not in wnids.txt");
  }
  {
    ScratchDir d("tiny_emptyclass");
    make_tiny(d);
    std::filesystem::remove_all(d.path() + "/train/n02/images");
    d.dir("train/n02/images");
    EXPECT_ERROR_CONTAINS(open_tiny_imagenet(d.path(), "train"), "n02/images", "empty class folder");
  }
  {
    ScratchDir d("tiny_badjpeg");
    make_tiny(d);
    d.file("train/n01/images/n01_0.JPEG", "");
    d.file("train/n01/images/n01_1.JPEG", "garbage bytes");
    DatasetPtr train = open_tiny_imagenet(d.path(), "train");
    EXPECT_ERROR_CONTAINS(train->image(0), "n01_0.JPEG", "empty file");
    EXPECT_ERROR_CONTAINS(train->image(1), "n01_1.JPEG", "not a decodable image");
  }
  {
    ScratchDir d("tiny_missing_train");
    d.file("wnids.txt", "n01\n");
    EXPECT_ERROR_CONTAINS(open_tiny_imagenet(d.path(), "train"), "no Tiny-ImageNet training folders");
  }
  EXPECT_ERROR_CONTAINS(open_tiny_imagenet("/nonexistent/tiny", "train"), "/nonexistent/tiny", "not a directory");
}

}  // namespace
}  // namespace dearest::data
