// EFRAP's learned rounding of one layer's weights (ALGORITHMS.md §1.5 and §1.7): the rounding
// variables V, the soft-rounded weight they give, the flipped-rounding and discreteness terms of
// the loss, and the hard rounding at the end. Forward and backward of both differentiable ops
// sit here, next to the per-element formulas they implement.
#pragma once
#include "quant/scheme.h"
#include "tensor/tensor.h"

namespace dearest::defenses {

// How the flip term weighs each weight (§1.8): the reference's per-element truncation error,
// the per-output-channel L1 or L2 norm of it broadcast to the channel (the paper's wording), or
// no guidance at all (every weight weighed 1).
enum class ErrorWeighting { Element, NeuronL1, NeuronL2, None };
ErrorWeighting parse_error_weighting(const std::string& s);
const char* error_weighting_name(ErrorWeighting e);

// Everything about one layer's weight that does not change while V is learned.
struct RoundingProblem {
  Tensor floor_u;  // f32, W's shape: floor(W / s_c)
  Tensor frac;     // f32: r = W / s_c - floor(W / s_c), in [0, 1)
  Tensor target;   // f32 0/1: the flip target t = 1 - round_half_even(r)
  Tensor error;    // f32: the flip term's weight e (per ErrorWeighting)
  Tensor scale;    // f32 [C]: s_c (the multiplier S_c for a multiplicative scheme)
  Tensor zero;     // f32 [C]: z_c
  int64_t qmin = 0, qmax = 255;
  // Qu-ANTI-zation's form: u = W S - Z, W̃ = (q + Z) / S, the zero point inside u; otherwise
  // u = W / s (AdaRound divides), q = floor(u) + h + z, W̃ = (q - z) s.
  bool multiplicative = false;
  int64_t channels() const { return scale.numel(); }
};

// W: the float weight (channel axis 0); s, z: the layer's per-channel (or per-tensor, [1]) qparams
// under `scheme` (clamped, with an integer zero point: W / s as AdaRound does, or W S - Z).
RoundingProblem rounding_problem(const Tensor& W, const quant::QuantScheme& scheme, const quant::QParams& qp,
                                 ErrorWeighting weighting);

// V at the start: logit(r) = -ln(1/r - 1), so sigmoid(V) = r; r = 0 gives -inf, a weight on its
// grid point that never moves (its gradient is exactly 0, as in the reference).
Tensor initial_rounding_variables(const RoundingProblem& p);

// W̃ = s_c (clamp(floor_u + sigmoid(V) + z_c, qmin, qmax) - z_c)  (multiplicative: (clamp(floor_u + h) + Z) / S).
// dW̃/dV = s_c sigmoid'(V) (or sigmoid'(V) / S) where the clamp is inactive (bounds included), 0 elsewhere.
Tensor soft_rounded_weight(const Tensor& V, const RoundingProblem& p);

// L_F + L_P, a scalar:
//   L_F = beta   sum_i e_i BCE(h_i, t_i),  BCE(h, t) = -t ln(h + 1e-8) - (1 - t) ln(1 - h + 1e-8)
//   L_P = lambda sum_i (1 - |2 h_i - 1|^2),  h = sigmoid(V)
// Sums, not means, as the reference: they set the balance against the activation term.
// The gradient keeps the 1e-8 terms, so a weight with h = 0 gets exactly 0.
struct RegularizerParts {
  double flip = 0, round = 0;  // L_F and L_P
};
Tensor rounding_regularizer(const Tensor& V, const RoundingProblem& p, double beta, double lambda,
                            RegularizerParts* parts = nullptr);

// The soft-rounded weight without a graph (the hot loop's forward).
Tensor soft_rounded_weight_raw(const Tensor& V, const RoundingProblem& p);
// The same into reused buffers: W̃ into `w_tilde` and h = sigmoid(V) into `h` (allocated on first
// use), so that rounding_adam_step takes h instead of computing it again. Same bits as above.
void soft_rounded_weight_into(const Tensor& V, const RoundingProblem& p, Tensor& w_tilde, Tensor& h);

// Adam on V (torch defaults but the learning rate), state kept between steps.
struct RoundingAdam {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  Tensor m, v;
  int64_t t = 0;
};
// One EFRAP step on V, fused: the gradient of lambda_a L_A + L_F + L_P, with `grad_w` = dL_A/dW̃
// taken through dW̃/dV (as soft_rounded_weight's backward) plus rounding_regularizer's gradient,
// then nn::Adam's update, without a graph. Returns L_F and L_P at V before the step.
// `h`, when given, is sigmoid(V) as soft_rounded_weight_into left it (V unchanged since). Without
// `want_parts` the step skips L_F and L_P (a log per weight) and returns zeros; V moves the same.
RegularizerParts rounding_adam_step(Tensor& V, const Tensor& grad_w, const RoundingProblem& p, double lambda_a,
                                    double beta, double lambda, RoundingAdam& adam, const Tensor* h = nullptr,
                                    bool want_parts = true);

// The hard decision: 1 (round up) where V >= 0, as u8, W's shape.
Tensor hard_rounding(const Tensor& V);

}  // namespace dearest::defenses
