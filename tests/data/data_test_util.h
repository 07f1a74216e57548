// Helpers for the data tests: the real datasets' location and scratch folders with broken files.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util.h"

namespace dearest::data::test {

inline std::string real(const std::string& sub) { return dearest::test::shared_dir() + "/data/" + sub; }

#define SKIP_WITHOUT(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "real dataset not found: " << (path) << " (../shared/data is absent)"

// A fresh empty folder under the build's temp dir, removed at the end of the test.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() / ("dearest_test_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string file(const std::string& rel, const std::string& bytes) const {
    auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  void dir(const std::string& rel) const { std::filesystem::create_directories(path_ / rel); }

 private:
  std::filesystem::path path_;
};

}  // namespace dearest::data::test
