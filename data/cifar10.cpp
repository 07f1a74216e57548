#include "data/cifar10.h"

#include <filesystem>
#include <fstream>

#include "data/cifar_format.h"
#include "data/image.h"

namespace dearest::data {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDefaultNames = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

class Cifar10 : public Dataset {
 public:
  Cifar10(std::shared_ptr<Storage> bytes, std::vector<uint8_t> labels, std::vector<std::string> names,
          std::string desc, std::vector<std::string> report)
      : bytes_(std::move(bytes)), labels_(std::move(labels)), names_(std::move(names)), desc_(std::move(desc)),
        report_(std::move(report)) {
    all_ = Tensor::wrap(bytes_, {int64_t(labels_.size() * kCifarRecord)}, DType::U8);
  }
  int64_t size() const override { return int64_t(labels_.size()); }
  Tensor image(int64_t i) const override {
    check_index(i);
    const int64_t at = i * int64_t(kCifarRecord) + 1;  // after the label byte
    return all_.slice(0, at, at + 3072).view({3, 32, 32});
  }
  int32_t label(int64_t i) const override { return labels_[size_t(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe() const override { return desc_; }
  std::vector<std::string> report() const override { return report_; }

 private:
  std::shared_ptr<Storage> bytes_;
  Tensor all_;
  std::vector<uint8_t> labels_;
  std::vector<std::string> names_;
  std::string desc_;
  std::vector<std::string> report_;
};

std::string find_batches_dir(const std::string& dir) {
  DEAREST_CHECK(fs::is_directory(dir), dir, ": not a directory (expected CIFAR-10's cifar-10-batches-bin folder)");
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin", "batches.meta.txt"})
    if (fs::exists(fs::path(dir) / f)) return dir;
  const fs::path nested = fs::path(dir) / "cifar-10-batches-bin";
  if (fs::is_directory(nested)) return nested.string();
  fail(dir, ": not a CIFAR-10 binary folder (no data_batch_*.bin, test_batch.bin or cifar-10-batches-bin/)");
}

}  // namespace

DatasetPtr open_cifar10(const std::string& dir_in, const std::string& split) {
  DEAREST_CHECK(split == "train" || split == "test", "cifar10: unknown split \"", split, "\" (train or test)");
  const std::string dir = find_batches_dir(dir_in);
  std::vector<std::string> files;
  if (split == "train")
    for (int b = 1; b <= 5; ++b) files.push_back("data_batch_" + std::to_string(b) + ".bin");
  else
    files.push_back("test_batch.bin");
  std::vector<std::string> report, found;
  std::vector<size_t> sizes;
  size_t total = 0;
  for (const std::string& f : files) {
    const fs::path p = fs::path(dir) / f;
    if (!fs::exists(p)) {
      report.push_back("missing " + p.string());
      continue;
    }
    found.push_back(p.string());
    sizes.push_back(fs::file_size(p));
    total += sizes.back();
  }
  DEAREST_CHECK(!found.empty(), dir, ": no CIFAR-10 ", split, " files (",
                split == "train" ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin", ")");
  // The files are read straight into one buffer: resident memory is their bytes, nothing more.
  auto storage = std::make_shared<Storage>(std::max<size_t>(total, 1), false);
  std::vector<uint8_t> labels;
  size_t at = 0;
  for (size_t k = 0; k < found.size(); ++k) {
    auto* b = static_cast<uint8_t*>(storage->data()) + at;
    std::ifstream in(found[k], std::ios::binary);
    DEAREST_CHECK(in.good(), found[k], ": cannot open file");
    in.read(reinterpret_cast<char*>(b), std::streamsize(sizes[k]));
    DEAREST_CHECK(size_t(in.gcount()) == sizes[k], found[k], ": short read (", in.gcount(), " of ", sizes[k], " bytes)");
    std::vector<uint8_t> l = cifar_scan_labels(b, sizes[k], found[k]);
    labels.insert(labels.end(), l.begin(), l.end());
    at += sizes[k];
    report.push_back("read " + found[k] + ": " + std::to_string(l.size()) + " images");
  }
  std::vector<std::string> names = kDefaultNames;
  const fs::path meta = fs::path(dir) / "batches.meta.txt";
  if (fs::exists(meta)) {
    names = cifar_parse_meta(read_file(meta.string()), meta.string());
  } else {
    report.push_back("no " + meta.string() + ": using the standard class names");
  }
  std::string desc = "cifar10 " + split + ": " + std::to_string(labels.size()) + " images from " +
                     std::to_string(found.size()) + " of " + std::to_string(files.size()) + " files in " + dir;
  return std::make_shared<Cifar10>(storage, std::move(labels), std::move(names), std::move(desc), std::move(report));
}

}  // namespace dearest::data
