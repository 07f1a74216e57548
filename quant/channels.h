// A contiguous tensor seen as [outer, C, inner] around the quantization axis (C = 1 per tensor).
#pragma once
#include "quant/scheme.h"
#include "tensor/storage.h"
#include "tensor/tensor.h"

namespace dearest::quant {

struct ChannelView {
  int64_t outer = 1, C = 1, inner = 1;
};

inline ChannelView channel_view(const QuantScheme& s, const Shape& shape) {
  ChannelView v;
  const int64_t n = shape_numel(shape);
  if (!s.per_channel) {
    v.inner = n;
    return v;
  }
  DEAREST_CHECK(s.axis < int64_t(shape.size()), "quantization: channel axis ", s.axis, " out of range for shape ",
                shape_str(shape));
  for (int64_t d = 0; d < s.axis; ++d) v.outer *= shape[size_t(d)];
  v.C = shape[size_t(s.axis)];
  for (size_t d = size_t(s.axis) + 1; d < shape.size(); ++d) v.inner *= shape[d];
  return v;
}

// A per-tensor scheme sees every element alike, so a blocked (oneDNN-layout) f32 tensor whose bytes
// hold exactly its elements (no padding, e.g. nChw16c with C a multiple of 16) can be quantized
// and ranged in its own byte order: the bytes as a plain 1-d tensor, else an undefined tensor.
// This spares the emulated attacks' activation quantizers two reorders per layer and pass.
inline Tensor per_tensor_bytes(const QuantScheme& s, const Tensor& x) {
  if (s.per_channel || !x.is_blocked() || x.dtype() != DType::F32 || x.offset() != 0 ||
      x.storage()->nbytes() != x.nbytes())
    return Tensor();
  return Tensor::wrap(x.storage(), {x.numel()}, DType::F32);
}

}  // namespace dearest::quant
