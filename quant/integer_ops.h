// Integer-only arithmetic as gemmlowp and TFLite do it: a real multiplier becomes an int32
// fixed-point multiplier and a shift; int32 accumulators are rescaled with a rounding doubling
// high multiply and a rounding right shift. Plain functions over plain integers, so each step can
// be read and tested on its own.
#pragma once
#include <cstdint>

#include "tensor/ops/nn_params.h"
#include "tensor/tensor.h"

namespace dearest::quant {

// M = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31) (0 for M = 0). TFLite's QuantizeMultiplier.
struct FixedMultiplier {
  int32_t multiplier = 0;
  int shift = 0;
};
FixedMultiplier quantize_multiplier(double real);

// gemmlowp's SaturatingRoundingDoublingHighMul and RoundingDivideByPOT.
int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t rounding_divide_by_pot(int32_t x, int exponent);
// TFLite's MultiplyByQuantizedMultiplier: round(x * M) in fixed point.
int32_t multiply_by_quantized_multiplier(int32_t x, FixedMultiplier m);

// sum_k (q_in - z_in) * w + bias over an NCHW i32 input and OIHW i32 weights (zero-point-free),
// padding with the input zero point. Exact int32 (computed through f64 GEMM, where every partial
// sum is an integer below 2^53; `reference` runs plain int64 loops instead).
Tensor int_conv2d(const Tensor& q_in, int32_t z_in, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                  bool reference = false);
// The same for a linear layer: q_in [N, K], w [O, K].
Tensor int_linear(const Tensor& q_in, int32_t z_in, const Tensor& w, const Tensor& bias, bool reference = false);

}  // namespace dearest::quant
