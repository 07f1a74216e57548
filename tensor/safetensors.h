// Minimal safetensors reader (the format PyTorch's fixtures and checkpoints use): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// then raw little-endian data. Every field is validated; errors name the file and the tensor.
// I64 tensors are read as i32 (range-checked) and BOOL as u8. Byte ranges must lie inside the
// data section and must not overlap.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace dearest {

struct SafetensorsFile {
  std::string path;
  std::vector<std::pair<std::string, Tensor>> tensors;       // header order
  std::vector<std::pair<std::string, std::string>> metadata;

  bool has(const std::string& name) const;
  const Tensor& get(const std::string& name) const;  // throws naming the file and the tensor
};

SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& path);

// Writes tensors (any dtype, plain or blocked; written row-major) in the given order with string
// metadata, to path + ".tmp" and then renamed, so a reader never sees a half-written file.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {});
std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::vector<std::pair<std::string, std::string>>& metadata = {});
// SHA-256 over every tensor's name, dtype, shape and bytes, in order: a weights fingerprint.
std::string fingerprint(const std::vector<std::pair<std::string, Tensor>>& tensors);

}  // namespace dearest
