#include "data/image_decode.h"

#include <stb/stb_image.h>

#include <cstring>
#include <memory>

#include "tensor/error.h"

namespace dearest::data {

RgbImage decode_rgb(const uint8_t* bytes, size_t n, const std::string& name) {
  DEAREST_CHECK(n > 0, name, ": empty file (0 bytes), not an image");
  DEAREST_CHECK(n < (size_t(1) << 30), name, ": file too large to decode (", n, " bytes)");
  int w = 0, h = 0, c = 0;
  // Refuse absurd dimensions before stb allocates for them (a 40-byte header can claim 64k x 64k).
  DEAREST_CHECK(stbi_info_from_memory(bytes, int(n), &w, &h, &c) != 0, name, ": not a decodable image: ",
                stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
  DEAREST_CHECK(w > 0 && h > 0 && int64_t(w) * h <= (int64_t(1) << 26), name, ": image size ", w, "x", h,
                " is empty or too large");
  std::unique_ptr<stbi_uc, void (*)(void*)> pix(stbi_load_from_memory(bytes, int(n), &w, &h, &c, 3), stbi_image_free);
  if (!pix) fail(name, ": not a decodable image: ", stbi_failure_reason() ? stbi_failure_reason() : "unknown reason");
  RgbImage img;
  img.width = w;
  img.height = h;
  img.hwc.resize(size_t(w) * size_t(h) * 3);
  std::memcpy(img.hwc.data(), pix.get(), img.hwc.size());
  return img;
}

}  // namespace dearest::data
