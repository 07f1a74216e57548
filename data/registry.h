// Datasets by name, as the command line gives them: "cifar10:PATH", "tiny-imagenet:PATH",
// "imagenette:PATH", "synthetic" or "synthetic:N" (N training images; the test split has N/5).
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace dearest::data {

struct DataSpec {
  std::string kind;  // cifar10, tiny-imagenet, imagenette, synthetic
  std::string path;  // folder, or for synthetic the training-set size ("" = 10000)
};

DataSpec parse_data_spec(const std::string& spec);
std::vector<std::string> splits_of(const std::string& kind);  // training split first
std::string train_split(const std::string& kind);
std::string test_split(const std::string& kind);  // test for CIFAR-10 and synthetic, val otherwise
DatasetPtr open_dataset(const DataSpec& spec, const std::string& split, uint64_t synthetic_seed = 0);
// Native image size of the kind (32, 64, or 224 for Imagenette after its transforms).
int64_t image_size_of(const std::string& kind);

}  // namespace dearest::data
