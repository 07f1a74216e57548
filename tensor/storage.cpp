#include "tensor/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "tensor/allocator.h"
#include "tensor/error.h"

namespace dearest {

namespace {
std::atomic<uint64_t> next_storage_id{1};
}

Storage::Storage(size_t nbytes, bool zero_fill) : nbytes_(nbytes), id_(next_storage_id++) {
  try {
    data_ = alloc_bytes(nbytes, &capacity_);
  } catch (const std::bad_alloc&) {
    fail("Storage: cannot allocate ", nbytes, " bytes");
  }
  if (zero_fill) std::memset(data_, 0, nbytes_);  // a reused block may be larger than asked
}

Storage::~Storage() { free_bytes(data_, capacity_); }

}  // namespace dearest
