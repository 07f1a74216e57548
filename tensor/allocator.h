// Host memory for tensors: 64-byte aligned, and large blocks are recycled. A fresh 32 MB block
// costs ~20 ms of page faults on first touch on the development VM (docs/benchmarks.md), more
// than the op writing it, and a training step allocates the same sizes every step; so freed
// blocks of 1 MiB and more are kept (up to a cap) and handed out again for requests of the same
// rounded size, or of up to half a cached block's size when no block of the same size is free. A request the cache cannot serve first returns as many cached bytes to the system
// as it takes, so the process never holds much more than its peak of live tensors. Small blocks
// go straight to malloc.
#pragma once
#include <cstddef>

namespace dearest {

// Returns a block of at least `nbytes` (its usable size in *capacity).
void* alloc_bytes(size_t nbytes, size_t* capacity);
void free_bytes(void* p, size_t capacity);

struct AllocatorStats {
  size_t cached_bytes, cached_blocks, hits, misses, cap_bytes;
};
AllocatorStats allocator_stats();
void release_cached_memory();  // frees every cached block
// Cap on cached free bytes (default 4 GiB, or DEAREST_ALLOC_CACHE_MB from the environment).
void set_allocator_cache_cap(size_t bytes);

}  // namespace dearest
