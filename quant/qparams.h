// Scale and zero point from a range, by each reference code's formula (QParamRule), in float32
// exactly as that code computes them.
#pragma once
#include "quant/scheme.h"

namespace dearest::quant {

// The float zero point of per-batch inputs, -(mn/s + 2^(b-1)) in float32 (PQBackdoor's emulation
// and EFRAP's evaluation helper; 128 at 8 bits).
float pq_float_zero(float lo, float scale, int bits);

// One channel's (scale, zero point) from its range (mn <= mx, both finite).
std::pair<float, int32_t> qparams_scalar(const QuantScheme& s, float mn, float mx);

// mn, mx: f32 [C] (per channel) or [1]. Returns QParams of the same length.
QParams qparams_from_range(const QuantScheme& s, const Tensor& mn, const Tensor& mx);

// Per-channel (along s.axis) or whole-tensor min and max of x, as f32 [C] or [1].
std::pair<Tensor, Tensor> tensor_range(const QuantScheme& s, const Tensor& x);

// The smallest positive f32 step torch allows (torch.finfo(torch.float32).eps).
constexpr float kTorchEps = 1.1920928955078125e-07f;

}  // namespace dearest::quant
