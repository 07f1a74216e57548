#include "data/imagenette.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "data/image_folder.h"

namespace dearest::data {

namespace fs = std::filesystem;

DatasetPtr open_imagenette(const std::string& dir, const std::string& split) {
  DEAREST_CHECK(split == "train" || split == "val", "imagenette: unknown split \"", split, "\" (train or val)");
  const fs::path root(dir), d = root / split;
  DEAREST_CHECK(fs::is_directory(root), dir, ": not a directory (expected imagenette2/)");
  DEAREST_CHECK(fs::is_directory(d), dir, ": not an Imagenette folder: ", d.string(), " is missing");
  static const std::map<std::string, std::string> known = {
      {"n01440764", "tench"},         {"n02102040", "English springer"}, {"n02979186", "cassette player"},
      {"n03000684", "chain saw"},     {"n03028079", "church"},           {"n03394916", "French horn"},
      {"n03417042", "garbage truck"}, {"n03425413", "gas pump"},         {"n03445777", "golf ball"},
      {"n03888257", "parachute"}};
  std::vector<std::string> wnids;
  for (const auto& e : fs::directory_iterator(d))
    if (e.is_directory()) wnids.push_back(e.path().filename().string());
  std::sort(wnids.begin(), wnids.end());
  DEAREST_CHECK(!wnids.empty(), d.string(), ": no class folders (<wnid>/)");
  std::vector<std::pair<std::string, int32_t>> files;
  std::vector<std::string> names, report;
  for (size_t k = 0; k < wnids.size(); ++k) {
    std::vector<std::string> imgs = list_images((d / wnids[k]).string());
    DEAREST_CHECK(!imgs.empty(), (d / wnids[k]).string(), ": empty class folder (no .JPEG files)");
    for (auto& p : imgs) files.emplace_back(std::move(p), int32_t(k));
    auto it = known.find(wnids[k]);
    names.push_back(it != known.end() ? wnids[k] + " " + it->second : wnids[k]);
    if (it == known.end()) report.push_back("class folder " + wnids[k] + " is not one of Imagenette's 10 wnids");
  }
  if (wnids.size() != known.size())
    report.push_back(std::to_string(wnids.size()) + " class folders (Imagenette has 10): labels follow sorted folder names");
  report.insert(report.begin(), split + ": " + std::to_string(files.size()) + " images in " +
                                    std::to_string(wnids.size()) + " class folders");
  std::string desc = "imagenette " + split + ": " + std::to_string(files.size()) + " images, " +
                     std::to_string(wnids.size()) + " classes in " + root.string();
  return std::make_shared<ImageFiles>(std::move(files), std::move(names), std::move(desc), std::move(report));
}

}  // namespace dearest::data
