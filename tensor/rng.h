// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11) keyed by (seed, stream).
//
// Every value is a pure function of (seed, stream, counter), and a fill of n elements gives
// element i the words of block (counter + i/4), so results never depend on the thread count or
// the standard library. Distributions are our own code (std::uniform_* are implementation-defined).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace dearest {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t counter() const { return counter_; }   // in 4-word blocks consumed
  void set_counter(uint64_t c) { counter_ = c; }  // for resuming a run exactly

  // Scalars (each consumes one block).
  uint32_t next_u32();
  uint64_t next_u64();
  double next_double();                       // [0, 1), 53 bits
  int64_t next_int(int64_t lo, int64_t hi);   // [lo, hi)

  // Tensors (f32 or f64; integers as i32).
  Tensor uniform(const Shape& shape, double lo = 0, double hi = 1, DType dtype = DType::F32);
  Tensor normal(const Shape& shape, double mean = 0, double std = 1, DType dtype = DType::F32);
  Tensor integers(const Shape& shape, int64_t lo, int64_t hi);  // i32 in [lo, hi)
  Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::F32);  // 1 with probability p
  std::vector<int64_t> permutation(int64_t n);  // Fisher-Yates on our own bounded integers

 private:
  std::array<uint32_t, 4> block(uint64_t index) const;
  uint64_t seed_, stream_, counter_ = 0;
};

}  // namespace dearest
