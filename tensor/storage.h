// A 64-byte aligned, reference-counted byte buffer. Tensors (and views of them) share one Storage.
// The version counter is bumped by every in-place write, so autograd can tell when a tensor it
// saved for backward was modified afterwards.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace dearest {

class Storage {
 public:
  // zero_fill=false leaves the bytes uninitialised: kernel outputs are written in full anyway.
  explicit Storage(size_t nbytes, bool zero_fill = true);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  uint64_t id() const { return id_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

  static constexpr size_t kAlignment = 64;

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;
  uint64_t id_ = 0;
  uint64_t version_ = 0;
};

}  // namespace dearest
