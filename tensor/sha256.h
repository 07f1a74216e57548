// SHA-256 (FIPS 180-4), for weight fingerprints: two runs that should agree can be compared by one
// line of their logs.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace dearest {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::array<uint8_t, 32> digest();  // finishes; the object is spent afterwards
  std::string hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, size_t n);

}  // namespace dearest
