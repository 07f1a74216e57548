#include "data/image_decode.h"

#include <stb/stb_image.h>

#include <cstring>
#include <memory>

#include "tensor/error.h"

namespace dearest::data {

namespace {

// stb_image 2.27 (Debian 12) builds a JPEG Huffman table without checking that its 16 code
// counts sum to at most 256, and so writes past the table on a crafted file (found by
// tests/fuzz/image_fuzz.cpp; upstream added the check after 2.27). This mirrors stb's own DHT
// parse (stbi__process_marker: tables are read while the segment length L stays positive, counts
// and values are read even past L, bytes past the end read as 0) at every FF C4 in the file, so
// no table stb could ever build is missed; a valid table is never rejected.
void check_jpeg_huffman_tables(const uint8_t* b, size_t n, const std::string& name) {
  auto at = [&](size_t p) -> int { return p < n ? b[p] : 0; };
  for (size_t i = 0; i + 1 < n; ++i) {
    if (b[i] != 0xFF || b[i + 1] != 0xC4) continue;
    long L = long((at(i + 2) << 8) | at(i + 3)) - 2;
    size_t p = i + 4;
    while (L > 0) {
      const int q = at(p++);
      if ((q >> 4) > 1 || (q & 15) > 3) break;  // stb rejects the table header itself
      long count = 0;
      for (int k = 0; k < 16; ++k) count += at(p++);
      DEAREST_CHECK(count <= 256, name, ": corrupt JPEG: a Huffman table declares ", count,
                    " codes (at most 256 are possible)");
      p += size_t(count);
      L -= 17 + count;
    }
  }
}

bool is_jpeg(const uint8_t* b, size_t n) { return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
bool is_png(const uint8_t* b, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(b, sig, 8) == 0;
}

}  // namespace

RgbImage decode_rgb(const uint8_t* bytes, size_t n, const std::string& name) {
  DEAREST_CHECK(n > 0, name, ": empty file (0 bytes), not an image");
  DEAREST_CHECK(n < (size_t(1) << 30), name, ": file too large to decode (", n, " bytes)");
  // Only the two formats datasets use: stb's other decoders (BMP, GIF, PSD, TGA, HDR, PNM) are
  // attack surface nobody needs here.
  DEAREST_CHECK(is_jpeg(bytes, n) || is_png(bytes, n), name, ": not a decodable image: neither JPEG nor PNG");
  if (is_jpeg(bytes, n)) check_jpeg_huffman_tables(bytes, n, name);
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
