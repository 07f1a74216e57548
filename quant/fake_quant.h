// Fake quantization: x -> integers q -> back to float, exactly as the reference quantizers do it
// in float32, and its straight-through-estimator gradient. One place for forward, backward and
// the kernel (the kernel is a plain loop: it is already the reference).
#pragma once
#include <functional>

#include "quant/scheme.h"

namespace dearest::quant {

// What the gradient with respect to x is.
enum class Ste {
  Clipped,  // g where the unclamped integer lies in [qmin, qmax], 0 outside (torch's rule)
  Plain,    // g everywhere
};

struct FakeQuantResult {
  Tensor y;         // f32, x's shape: the dequantized values
  Tensor q;         // i32, x's shape: the clamped integers (when asked for)
  Tensor in_range;  // u8, x's shape: 1 where the unclamped integer was inside [qmin, qmax]
};

// The kernel. `up` (u8 0/1, x's shape) is required for Rounding::Mask (up) and FlipMask
// (flip), ignored otherwise.
FakeQuantResult fake_quantize_raw(const Tensor& x, const QuantScheme& s, const QParams& qp, const Tensor& up = {},
                                  bool want_q = false, bool want_mask = false);

// fake_quantize_raw's arithmetic, bit for bit, on runs of contiguous floats under a per-tensor
// scheme: for loops that quantize inside their own pass over a oneDNN op's output (EFRAP's fused
// units) rather than writing the whole tensor out and reading it back.
class SpanFakeQuantizer {
 public:
  SpanFakeQuantizer(const QuantScheme& s, const QParams& qp, bool want_mask);
  // y[k] = the fake-quantized x[k]; in_range[k] as FakeQuantResult::in_range (when asked for).
  void operator()(const float* x, float* y, uint8_t* in_range, int64_t n) const { run_(x, y, in_range, n); }

 private:
  std::function<void(const float*, float*, uint8_t*, int64_t)> run_;
};

// The differentiable op.
Tensor fake_quantize(const Tensor& x, const QuantScheme& s, const QParams& qp, Ste ste = Ste::Clipped,
                     const Tensor& up = {});

// A bias on the int32 grid of its layer's accumulator: b̂[c] = round(b[c] / s[c]) * s[c] with
// s[c] = s_in * s_w[c] (float32, as integer runtimes quantize biases), rounding `r` (half-away for
// TFLite, half-even for PyTorch). The gradient passes straight through.
Tensor quantize_bias(const Tensor& bias, const Tensor& step, Rounding r);

// The unrounded value v (x/s, x*(1/s) or x*S-Z, in f32 as the scheme computes it) per element:
// rounding decisions (fractional parts, flips, masks) are taken on it.
Tensor scaled_value(const Tensor& x, const QuantScheme& s, const QParams& qp);

}  // namespace dearest::quant
