#include "tensor/allocator.h"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace dearest {

namespace {

constexpr size_t kLarge = size_t(1) << 20;      // blocks from here on are cached
constexpr size_t kGranule = size_t(64) << 10;   // large sizes round up to 64 KiB
constexpr size_t kHuge = size_t(2) << 20;       // 2 MiB: aligned so the kernel may use huge pages

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free;  // by capacity; ordered, never keyed by pointer
  size_t cached = 0, blocks = 0, hits = 0, misses = 0;
  size_t cap = [] {
    const char* e = std::getenv("DEAREST_ALLOC_CACHE_MB");
    return e ? size_t(std::strtoull(e, nullptr, 10)) << 20 : size_t(4) << 30;
  }();
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

void* system_alloc(size_t cap) {
  const size_t align = cap >= kHuge ? kHuge : 64;
  void* p = std::aligned_alloc(align, (cap + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  if (cap >= kHuge) madvise(p, cap, MADV_HUGEPAGE);  // fewer first-touch faults; advisory only
  return p;
}

}  // namespace

void* alloc_bytes(size_t nbytes, size_t* capacity) {
  if (nbytes < kLarge) {
    size_t cap = (nbytes + 63) / 64 * 64;
    if (cap == 0) cap = 64;
    *capacity = cap;
    return system_alloc(cap);
  }
  const size_t cap = (nbytes + kGranule - 1) / kGranule * kGranule;
  *capacity = cap;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free.find(cap);
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= cap;
      --c.blocks;
      ++c.hits;
      return p;
    }
    // No block of this size: take the smallest cached block of at most twice the size. Phases
    // that alternate batch sizes (the attacks run a 256-image pass, then 128-image ones) then
    // reuse each other's blocks instead of returning them to the system and faulting fresh
    // pages in every step; the waste is bounded by the factor 2.
    auto bigger = c.free.upper_bound(cap);
    while (bigger != c.free.end() && bigger->first <= 2 * cap && bigger->second.empty()) ++bigger;
    if (bigger != c.free.end() && bigger->first <= 2 * cap) {
      void* p = bigger->second.back();
      bigger->second.pop_back();
      *capacity = bigger->first;
      c.cached -= bigger->first;
      --c.blocks;
      ++c.hits;
      return p;
    }
    ++c.misses;
    // A miss means a size the cache does not hold: give back as many cached bytes as this block
    // takes (largest blocks first), so that live + cached memory stays near the live peak instead
    // of growing by every size ever used. Steady-state training steps hit the cache and never
    // get here.
    size_t released = 0;
    while (released < cap && !c.free.empty()) {
      auto last = std::prev(c.free.end());
      if (last->second.empty()) {  // a size whose blocks are all in use
        c.free.erase(last);
        continue;
      }
      std::free(last->second.back());
      last->second.pop_back();
      c.cached -= last->first;
      --c.blocks;
      released += last->first;
      if (last->second.empty()) c.free.erase(last);
    }
  }
  return system_alloc(cap);
}

void free_bytes(void* p, size_t capacity) {
  if (!p) return;
  if (capacity >= kLarge) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached + capacity <= c.cap) {
      c.free[capacity].push_back(p);
      c.cached += capacity;
      ++c.blocks;
      return;
    }
  }
  std::free(p);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.cached, c.blocks, c.hits, c.misses, c.cap};
}

void release_cached_memory() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, v] : c.free)
    for (void* p : v) std::free(p);
  c.free.clear();
  c.cached = 0;
  c.blocks = 0;
}

void set_allocator_cache_cap(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.cap = bytes;
}

}  // namespace dearest
