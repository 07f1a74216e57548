// JPEG/PNG decoding through stb_image, without tensors (so a fuzzer can build it alone).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dearest::data {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> hwc;  // height * width * 3, row-major RGB
};

// Throws dearest::Error "<name>: ..." for empty, oversized or undecodable input. Grayscale, gray
// + alpha and RGBA are converted to RGB (alpha dropped).
RgbImage decode_rgb(const uint8_t* bytes, size_t n, const std::string& name);

}  // namespace dearest::data
