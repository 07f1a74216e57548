// A dataset: a size, for each index an image (u8 [3, H, W] as stored) and a label, and class
// names. Labels are cheap (no decoding) so that subsets, class filters and poisoning can look at
// them freely. Images are produced on demand; a dataset is immutable and safe to read from
// several threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dearest::data {

struct Sample {
  Tensor image;   // u8 [3, H, W]
  int32_t label;
  int64_t index;  // in this dataset
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Tensor image(int64_t i) const = 0;
  virtual int32_t label(int64_t i) const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  // "cifar10 train: 50000 images from 5 batch files in /path"
  virtual std::string describe() const = 0;
  // What the loader found and any note about it, one line each (files read, folders missing).
  virtual std::vector<std::string> report() const { return {}; }

  int64_t num_classes() const { return static_cast<int64_t>(class_names().size()); }
  Sample get(int64_t i) const;
  // Throws "<describe()>: index i out of range [0, size)".
  void check_index(int64_t i) const;
  std::vector<int64_t> class_counts() const;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

}  // namespace dearest::data
