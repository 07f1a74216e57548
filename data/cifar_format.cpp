#include "data/cifar_format.h"

#include <sstream>

#include "tensor/error.h"

namespace dearest::data {

std::vector<uint8_t> cifar_scan_labels(const uint8_t* bytes, size_t n, const std::string& name) {
  DEAREST_CHECK(n > 0, name, ": empty file, expected CIFAR-10 records of ", kCifarRecord, " bytes");
  DEAREST_CHECK(n % kCifarRecord == 0, name, ": truncated or not a CIFAR-10 batch: ", n,
                " bytes is not a whole number of ", kCifarRecord, "-byte records (", n / kCifarRecord,
                " records and ", n % kCifarRecord, " bytes left over)");
  const size_t count = n / kCifarRecord;
  std::vector<uint8_t> labels(count);
  for (size_t r = 0; r < count; ++r) {
    const uint8_t l = bytes[r * kCifarRecord];
    DEAREST_CHECK(l < kCifarClasses, name, ": record ", r, " has label byte ", int(l), ", expected 0..9");
    labels[r] = l;
  }
  return labels;
}

std::vector<std::string> cifar_parse_meta(const std::string& text, const std::string& name) {
  std::vector<std::string> names;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r");
    if (a == std::string::npos) continue;
    names.push_back(line.substr(a, b - a + 1));
  }
  DEAREST_CHECK(names.size() == kCifarClasses, name, ": expected 10 class names, found ", names.size());
  return names;
}

}  // namespace dearest::data
