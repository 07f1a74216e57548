// Datasets of image files on disk (Tiny-ImageNet, Imagenette): a list of (path, label), decoded on
// each access. File lists are sorted by name, so the order never depends on the file system.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"

namespace dearest::data {

class ImageFiles : public Dataset {
 public:
  ImageFiles(std::vector<std::pair<std::string, int32_t>> files, std::vector<std::string> names, std::string desc,
             std::vector<std::string> report);
  int64_t size() const override { return int64_t(files_.size()); }
  Tensor image(int64_t i) const override;
  int32_t label(int64_t i) const override { return files_[size_t(i)].second; }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe() const override { return desc_; }
  std::vector<std::string> report() const override { return report_; }
  const std::string& path(int64_t i) const { return files_[size_t(i)].first; }

 private:
  std::vector<std::pair<std::string, int32_t>> files_;
  std::vector<std::string> names_;
  std::string desc_;
  std::vector<std::string> report_;
};

// The image files (.jpeg/.jpg/.png, any case) directly in `dir`, sorted by file name.
std::vector<std::string> list_images(const std::string& dir);

}  // namespace dearest::data
