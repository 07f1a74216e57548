// libFuzzer target: the CIFAR-10 batch parser and batches.meta.txt parser on arbitrary bytes. A
// dearest::Error is the expected answer to bad input; anything else (a crash, a sanitizer report,
// another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/cifar_format.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::vector<uint8_t> labels = dearest::data::cifar_scan_labels(data, size, "fuzz.bin");
    if (labels.size() * dearest::data::kCifarRecord != size) __builtin_trap();
    for (uint8_t l : labels)
      if (l > 9) __builtin_trap();
  } catch (const dearest::Error&) {
  }
  try {
    dearest::data::cifar_parse_meta(std::string(reinterpret_cast<const char*>(data), size), "fuzz.meta");
  } catch (const dearest::Error&) {
  }
  return 0;
}
