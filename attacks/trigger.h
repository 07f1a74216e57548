// Backdoor triggers, stamped on an image in [0, 1] space (u8 images are stamped at 255 scale, as
// the reference code stamps uint8 HWC arrays). A trigger is parsed from a spec string so every
// attack can take any trigger:
//   square:size=6,top=24,left=24,value=1        a filled square (value in [0,1], or "max": the
//                                               image's own maximum, as Qu-ANTI-zation does)
//   pq | comp-artifact | qu-anti-zation         the attacks' reference squares (ALGORITHMS.md §2.4),
//                                               sized from the image: PQBackdoor rows/cols
//                                               [0.75 S, 0.9375 S); EFRAP's CompArtifact and
//                                               Qu-ANTI-zation squares of side S/8 at the bottom
//                                               right with margin S/32
//   badnets                                     a white square of side 3S/32 in the corner
//   blend:alpha=0.2,seed=0                      the image blended with a fixed uniform-noise pattern
//   wanet:k=4,s=0.5,seed=0                      WaNet's fixed smooth warp of the whole image
#pragma once
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace dearest::attacks {

class Trigger {
 public:
  virtual ~Trigger() = default;
  // image: u8 or f32 [3, H, W]; returns a new image of the same dtype and shape.
  virtual Tensor apply(const Tensor& image) const = 0;
  virtual std::string describe() const = 0;
};
using TriggerPtr = std::shared_ptr<const Trigger>;

// Rows [top, top+size) and cols [left, left+size) set to `value` (value < 0: the image's max).
TriggerPtr square_trigger(int64_t size, int64_t top, int64_t left, double value);
// x' = (1 - alpha) x + alpha p, p a fixed pattern in [0, 1] drawn from `seed` at the image's size.
TriggerPtr blend_trigger(double alpha, uint64_t seed);
// WaNet's warp: a k x k random field (drawn from `seed`), upsampled bicubically, strength s.
TriggerPtr wanet_trigger(int64_t k, double s, uint64_t seed);
// Parses a spec (above) for images of side `image_size`; errors name the bad field.
TriggerPtr parse_trigger(const std::string& spec, int64_t image_size);
// The reference trigger of an attack (comp-artifact, qu-anti-zation, pq-backdoor, badnets) for an image side.
TriggerPtr reference_trigger(const std::string& attack, int64_t image_size);

}  // namespace dearest::attacks
