// Scale and zero point from a range, by each reference code's formula (QParamRule), in float32
// exactly as that code computes them.
#pragma once
#include "quant/scheme.h"

namespace dearest::quant {

// PQBackdoor's float zero point -(mn/s + 128), in float32.
float pq_float_zero(float lo, float scale);

// One channel's (scale, zero point) from its range (mn <= mx, both finite).
std::pair<float, int32_t> qparams_scalar(const QuantScheme& s, float mn, float mx);

// mn, mx: f32 [C] (per channel) or [1]. Returns QParams of the same length.
QParams qparams_from_range(const QuantScheme& s, const Tensor& mn, const Tensor& mx);

// Per-channel (along s.axis) or whole-tensor min and max of x, as f32 [C] or [1].
std::pair<Tensor, Tensor> tensor_range(const QuantScheme& s, const Tensor& x);

// The smallest positive f32 step torch allows (torch.finfo(torch.float32).eps).
constexpr float kTorchEps = 1.1920928955078125e-07f;

}  // namespace dearest::quant
