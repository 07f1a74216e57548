// Datasets by name, as the command line gives them: "cifar10:PATH", "tiny-imagenet:PATH",
// "imagenette:PATH", "synthetic", "synthetic:N" (N training images; the test split has N/5) or
// "synthetic:N:SEED" (another draw of the same classes; SEED 0 when not given). The spec alone
// says which images a split holds: a command's own --seed (training, attack, calibration) never
// changes them.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace dearest::data {

struct DataSpec {
  std::string kind;  // cifar10, tiny-imagenet, imagenette, synthetic
  std::string path;  // folder, or for synthetic the training-set size ("" = 10000)
  uint64_t seed = 0;  // synthetic: the generator's seed
};

DataSpec parse_data_spec(const std::string& spec);
std::vector<std::string> splits_of(const std::string& kind);  // training split first
std::string train_split(const std::string& kind);
std::string test_split(const std::string& kind);  // test for CIFAR-10 and synthetic, val otherwise
DatasetPtr open_dataset(const DataSpec& spec, const std::string& split);
// Native image size of the kind (32, 64, or 224 for Imagenette after its transforms).
int64_t image_size_of(const std::string& kind);

}  // namespace dearest::data
