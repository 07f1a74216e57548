// The CIFAR-10 binary record format, without tensors (so a fuzzer can build it alone): records
// of 3073 bytes, one label byte 0..9 then 1024 R, 1024 G and 1024 B bytes of a 32x32 image.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dearest::data {

constexpr size_t kCifarRecord = 3073;
constexpr int kCifarClasses = 10;

// Validates a whole batch file's bytes and returns its labels. Throws dearest::Error naming
// `name` and what is wrong: empty, truncated (size not a multiple of 3073) or a label byte > 9
// (with the record number).
std::vector<uint8_t> cifar_scan_labels(const uint8_t* bytes, size_t n, const std::string& name);
// Class names from batches.meta.txt's text: non-empty lines, trimmed; must be exactly 10.
std::vector<std::string> cifar_parse_meta(const std::string& text, const std::string& name);

}  // namespace dearest::data
