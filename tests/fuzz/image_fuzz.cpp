// libFuzzer target: the image decode path (stb_image, compiled into this target from Debian's
// header so the sanitizers and coverage see inside it) through dearest's decode_rgb.
#include <cstddef>
#include <cstdint>

#include "data/image_decode.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dearest::data::RgbImage img = dearest::data::decode_rgb(data, size, "fuzz.img");
    if (img.hwc.size() != size_t(img.width) * size_t(img.height) * 3) __builtin_trap();
  } catch (const dearest::Error&) {
  }
  return 0;
}
