#include "tensor/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "tensor/error.h"

namespace dearest {

namespace {
std::atomic<uint64_t> next_storage_id{1};
}

Storage::Storage(size_t nbytes, bool zero_fill) : nbytes_(nbytes), id_(next_storage_id++) {
  // aligned_alloc needs a size that is a multiple of the alignment; never ask for 0 bytes.
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (!data_) fail("Storage: cannot allocate ", nbytes, " bytes");
  if (zero_fill) std::memset(data_, 0, rounded);
}

Storage::~Storage() { std::free(data_); }

}  // namespace dearest
