#include "data/imagenette.h"

#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

using test::ScratchDir;

TEST(Imagenette, RealTrainAndVal) {
  const std::string dir = test::real("imagenette2");
  SKIP_WITHOUT(dir);
  DatasetPtr train = open_imagenette(dir, "train"), val = open_imagenette(dir, "val");
  EXPECT_EQ(train->size(), 500);
  EXPECT_EQ(val->size(), 500);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->class_names()[0], "n01440764 tench");
  EXPECT_EQ(train->class_names()[9], "n03888257 parachute");
  for (int64_t c : val->class_counts()) EXPECT_EQ(c, 50);
  EXPECT_EQ(train->label(0), 0);
  EXPECT_EQ(train->label(499), 9);
  EXPECT_EQ(val->image(123).shape(), Shape({3, 224, 224}));
  EXPECT_TRUE(train->report().empty() || train->report()[0].find("500 images") != std::string::npos);
}

TEST(Imagenette, BadFolders) {
  ScratchDir d("imagenette_bad");
  EXPECT_ERROR_CONTAINS(open_imagenette(d.path(), "train"), "not an Imagenette folder", "train");
  d.dir("train");
  EXPECT_ERROR_CONTAINS(open_imagenette(d.path(), "train"), "no class folders");
  d.dir("train/n01440764");
  EXPECT_ERROR_CONTAINS(open_imagenette(d.path(), "train"), "n01440764", "empty class folder");
  d.file("train/n01440764/a.JPEG", "");
  DatasetPtr ds = open_imagenette(d.path(), "train");
  EXPECT_ERROR_CONTAINS(ds->image(0), "a.JPEG", "empty file");
}

}  // namespace
}  // namespace dearest::data
