#include "data/tinyimagenet.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "data/image.h"
#include "data/image_folder.h"

namespace dearest::data {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_wnids(const fs::path& root) {
  const fs::path f = root / "wnids.txt";
  DEAREST_CHECK(fs::is_directory(root), root.string(), ": not a directory (expected tiny-imagenet-200/)");
  DEAREST_CHECK(fs::exists(f), root.string(), ": not a Tiny-ImageNet-200 folder: wnids.txt is missing");
  std::istringstream in(read_file(f.string()));
  std::vector<std::string> wnids;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    DEAREST_CHECK(line.find_first_of(" \t/") == std::string::npos, f.string(), ": line ", lineno,
                  ": \"", line, "\" is not a wnid");
    DEAREST_CHECK(std::find(wnids.begin(), wnids.end(), line) == wnids.end(), f.string(), ": line ", lineno,
                  ": wnid ", line, " listed twice");
    wnids.push_back(line);
  }
  DEAREST_CHECK(!wnids.empty(), f.string(), ": no wnids");
  return wnids;
}

// wnid -> human-readable name from words.txt, when present.
std::map<std::string, std::string> read_words(const fs::path& root) {
  std::map<std::string, std::string> m;
  const fs::path f = root / "words.txt";
  if (!fs::exists(f)) return m;
  std::istringstream in(read_file(f.string()));
  std::string line;
  while (std::getline(in, line)) {
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string name = line.substr(tab + 1);
    const size_t comma = name.find(',');
    if (comma != std::string::npos) name = name.substr(0, comma);
    m[line.substr(0, tab)] = name;
  }
  return m;
}

}  // namespace

DatasetPtr open_tiny_imagenet(const std::string& dir, const std::string& split, const std::string& class_order) {
  DEAREST_CHECK(split == "train" || split == "val", "tiny-imagenet: unknown split \"", split, "\" (train or val)");
  DEAREST_CHECK(class_order == "sorted" || class_order == "file", "tiny-imagenet: unknown class order \"",
                class_order, "\" (sorted or file)");
  const fs::path root(dir);
  std::vector<std::string> wnids = read_wnids(root);
  if (class_order == "sorted") std::sort(wnids.begin(), wnids.end());
  std::map<std::string, int32_t> label_of;
  for (size_t i = 0; i < wnids.size(); ++i) label_of[wnids[i]] = int32_t(i);
  std::vector<std::pair<std::string, int32_t>> files;
  std::vector<std::string> report;
  if (split == "train") {
    int present = 0;
    for (const std::string& w : wnids) {
      const fs::path d = root / "train" / w / "images";
      if (!fs::is_directory(d)) {
        report.push_back("missing class folder " + d.string());
        continue;
      }
      std::vector<std::string> imgs = list_images(d.string());
      DEAREST_CHECK(!imgs.empty(), d.string(), ": empty class folder (no .JPEG files)");
      for (auto& p : imgs) files.emplace_back(std::move(p), label_of[w]);
      ++present;
    }
    DEAREST_CHECK(present > 0, root.string(), ": no Tiny-ImageNet training folders (train/<wnid>/images/)");
    report.insert(report.begin(), "train: " + std::to_string(files.size()) + " images in " + std::to_string(present) +
                                      " of " + std::to_string(wnids.size()) + " class folders");
  } else {
    const fs::path ann = root / "val" / "val_annotations.txt";
    DEAREST_CHECK(fs::exists(ann), root.string(), ": val/val_annotations.txt is missing");
    std::istringstream in(read_file(ann.string()));
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      std::istringstream fields(line);
      std::string file, wnid;
      DEAREST_CHECK(std::getline(fields, file, '\t') && std::getline(fields, wnid, '\t') && !file.empty(),
                    ann.string(), ": line ", lineno, ": expected \"file<TAB>wnid<TAB>...\"");
      auto it = label_of.find(wnid);
      DEAREST_CHECK(it != label_of.end(), ann.string(), ": line ", lineno, ": wnid ", wnid,
                    " is not in wnids.txt");
      const fs::path img = root / "val" / "images" / file;
      DEAREST_CHECK(fs::exists(img), ann.string(), ": line ", lineno, ": image ", img.string(), " does not exist");
      files.emplace_back(img.string(), it->second);
    }
    DEAREST_CHECK(!files.empty(), ann.string(), ": no annotations");
    // Sorted by file name, as the reference loaders list the images.
    std::sort(files.begin(), files.end());
    report.push_back("val: " + std::to_string(files.size()) + " annotated images");
  }
  std::map<std::string, std::string> words = read_words(root);
  std::vector<std::string> names;
  for (const std::string& w : wnids) names.push_back(words.count(w) ? w + " " + words[w] : w);
  report.push_back("class order: " + class_order + (class_order == "sorted" ? " (wnids sorted by name)" : " (wnids.txt line order)"));
  std::string desc = "tiny-imagenet " + split + ": " + std::to_string(files.size()) + " images, " +
                     std::to_string(wnids.size()) + " classes in " + root.string();
  return std::make_shared<ImageFiles>(std::move(files), std::move(names), std::move(desc), std::move(report));
}

}  // namespace dearest::data
