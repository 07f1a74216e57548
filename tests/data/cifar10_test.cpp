#include "data/cifar10.h"

#include "data/cifar_format.h"

#include <unistd.h>

#include "data/image.h"
#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

using test::ScratchDir;

std::string record(uint8_t label, uint8_t fill) {
  std::string r(kCifarRecord, char(fill));
  r[0] = char(label);
  return r;
}

TEST(Cifar10, RealTrainAndTest) {
  const std::string dir = test::real("cifar10/cifar-10-batches-bin");
  SKIP_WITHOUT(dir);
  DatasetPtr train = open_cifar10(test::real("cifar10"), "train");  // the parent folder works too
  DatasetPtr tst = open_cifar10(dir, "test");
  EXPECT_EQ(train->size(), 50000);
  EXPECT_EQ(tst->size(), 10000);
  EXPECT_EQ(train->class_names()[6], "frog");
  EXPECT_EQ(train->label(0), 6);      // record 0 of data_batch_1
  EXPECT_EQ(train->label(1), 9);
  EXPECT_EQ(train->label(10000), 1);  // record 0 of data_batch_2
  EXPECT_EQ(tst->label(0), 3);
  Tensor img = train->image(0);
  EXPECT_EQ(img.shape(), Shape({3, 32, 32}));
  EXPECT_EQ(img.dtype(), DType::U8);
  EXPECT_EQ(img.at({0, 0, 0}), 59);  // R plane, then G, then B
  EXPECT_EQ(img.at({0, 0, 1}), 43);
  EXPECT_EQ(img.at({1, 0, 0}), 62);
  EXPECT_EQ(img.at({2, 0, 0}), 63);
  EXPECT_EQ(train->image(10000).at({0, 0, 0}), 35);
  EXPECT_EQ(tst->image(0).at({0, 0, 0}), 158);
  for (int64_t c : train->class_counts()) EXPECT_EQ(c, 5000);
  for (int64_t i = 0; i < train->size(); i += 997) EXPECT_TRUE(train->label(i) >= 0 && train->label(i) < 10);
  // In memory: the raw bytes and nothing per image (images are views of one buffer).
  EXPECT_EQ(img.storage()->nbytes(), size_t(50000) * 3073);
  EXPECT_EQ(train->image(49999).storage().get(), img.storage().get());
}

TEST(Cifar10, AnySubsetOfBatchFiles) {
  ScratchDir d("cifar_subset");
  std::string b;
  for (int i = 0; i < 3; ++i) b += record(uint8_t(i), uint8_t(10 * i));
  d.file("data_batch_2.bin", b);
  DatasetPtr ds = open_cifar10(d.path(), "train");
  EXPECT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->label(2), 2);
  EXPECT_EQ(ds->image(1).at({2, 31, 31}), 10);
  EXPECT_NE(ds->describe().find("1 of 5 files"), std::string::npos) << ds->describe();
  bool reported_missing = false;
  for (const auto& line : ds->report()) reported_missing |= line.find("missing") != std::string::npos;
  EXPECT_TRUE(reported_missing);
  EXPECT_EQ(ds->class_names()[0], "airplane");  // no batches.meta.txt: the standard names
}

TEST(Cifar10, BadFilesGiveOneLineErrors) {
  ScratchDir d("cifar_bad");
  d.file("data_batch_1.bin", record(3, 0) + std::string(100, '\0'));
  EXPECT_ERROR_CONTAINS(open_cifar10(d.path(), "train"), "data_batch_1.bin", "truncated", "3073");
  d.file("data_batch_1.bin", record(3, 0) + record(10, 0));
  EXPECT_ERROR_CONTAINS(open_cifar10(d.path(), "train"), "data_batch_1.bin", "record 1", "label byte 10");
  d.file("data_batch_1.bin", "");
  EXPECT_ERROR_CONTAINS(open_cifar10(d.path(), "train"), "data_batch_1.bin", "empty");
  d.file("data_batch_1.bin", record(1, 0));
  d.file("batches.meta.txt", "a\nb\n");
  EXPECT_ERROR_CONTAINS(open_cifar10(d.path(), "train"), "batches.meta.txt", "10 class names");
  EXPECT_ERROR_CONTAINS(open_cifar10(d.path(), "test"), "no CIFAR-10 test files", "test_batch.bin");
  ScratchDir empty("cifar_empty");
  EXPECT_ERROR_CONTAINS(open_cifar10(empty.path(), "train"), "not a CIFAR-10");
  EXPECT_ERROR_CONTAINS(open_cifar10("/nonexistent/cifar", "train"), "/nonexistent/cifar", "not a directory");
  EXPECT_ERROR_CONTAINS(open_cifar10(d.path(), "validation"), "unknown split");
  d.file("batches.meta.txt", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
  DatasetPtr ok = open_cifar10(d.path(), "train");
  EXPECT_EQ(ok->class_names()[9], "9");
  EXPECT_ERROR_CONTAINS(ok->image(5), "index 5 out of range");
}

}  // namespace
}  // namespace dearest::data
