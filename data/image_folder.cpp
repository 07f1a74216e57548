#include "data/image_folder.h"

#include <algorithm>
#include <filesystem>

#include "data/image.h"

namespace dearest::data {

namespace fs = std::filesystem;

ImageFiles::ImageFiles(std::vector<std::pair<std::string, int32_t>> files, std::vector<std::string> names,
                       std::string desc, std::vector<std::string> report)
    : files_(std::move(files)), names_(std::move(names)), desc_(std::move(desc)), report_(std::move(report)) {}

Tensor ImageFiles::image(int64_t i) const {
  check_index(i);
  return read_image(files_[size_t(i)].first);
}

std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (ext == ".jpeg" || ext == ".jpg" || ext == ".png") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dearest::data
