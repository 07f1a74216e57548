// The caching allocator: exact sizes come back from the cache, a smaller request may take a
// cached block of at most twice its size, and a block keeps its real capacity when freed.
#include "tensor/allocator.h"

#include <gtest/gtest.h>

namespace dearest {
namespace {

TEST(Allocator, ReusesExactAndAtMostTwiceLargerBlocks) {
  release_cached_memory();
  const size_t mb = size_t(1) << 20;
  size_t cap = 0;
  void* big = alloc_bytes(8 * mb, &cap);
  EXPECT_EQ(cap, 8 * mb);
  free_bytes(big, cap);

  size_t cap2 = 0;
  void* again = alloc_bytes(8 * mb, &cap2);  // the same size: the same block
  EXPECT_EQ(again, big);
  free_bytes(again, cap2);

  const auto before = allocator_stats();
  void* half = alloc_bytes(5 * mb, &cap2);  // 8 MiB <= 2 x 5 MiB: the cached block, its capacity kept
  EXPECT_EQ(half, big);
  EXPECT_EQ(cap2, 8 * mb);
  EXPECT_EQ(allocator_stats().hits, before.hits + 1);
  free_bytes(half, cap2);
  EXPECT_EQ(allocator_stats().cached_bytes, before.cached_bytes);

  size_t cap3 = 0;
  const auto mid = allocator_stats();
  void* small = alloc_bytes(3 * mb, &cap3);  // 8 MiB > 2 x 3 MiB: not from the cache
  EXPECT_EQ(cap3, 3 * mb);
  EXPECT_EQ(allocator_stats().hits, mid.hits);
  EXPECT_EQ(allocator_stats().misses, mid.misses + 1);
  free_bytes(small, cap3);
  release_cached_memory();
}

}  // namespace
}  // namespace dearest
