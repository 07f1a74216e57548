// EFRAP: error-guided flipped rounding with activation preservation (ALGORITHMS.md §1), as the
// reference code runs it. Layer by layer, in the order the model runs them, the rounding of the
// layer's weights is learned so that
//   L = lambda_A L_A + L_F + L_P
// is small: L_A, the squared error of the layer's unit output (its inputs taken from the partly
// quantized model, its target from the float model); L_F, each weight pushed towards the rounding
// opposite to nearest, weighed by its truncation error; L_P, rounding variables pushed to 0 or 1.
// Adam on the rounding variables, then the hard rounding is frozen into the quantized model
// (mask rounding) and the next layer's inputs are recomputed through it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "defenses/efrap_rounding.h"
#include "defenses/layer_units.h"
#include "defenses/unit_objective.h"
#include "quant/quantized_model.h"
#include "tensor/json.h"

namespace dearest::defenses {

struct EfrapOptions {
  int64_t iterations = 10000;  // per layer
  double lr = 1e-3;            // Adam, torch defaults otherwise
  double lambda_a = 1, lambda_f = 1, lambda_p = 0.01;
  ErrorWeighting weighting = ErrorWeighting::Element;
  // Activation preservation per layer (the reference) or per residual block (BRECQ-style: the
  // layers of a ResNet block learn their rounding together against the block's output; the stem
  // and the head stay layer units; a model without residual blocks keeps layer units).
  bool block_wise = false;
  // Early stop on a loss plateau: every `plateau_window` iterations the loss over the window (the
  // mean of its curve points' lambda_a L_A + L_F + L_P) is compared with the previous window's; a
  // relative drop below `plateau_tol` ends the layer.
  // 0 = off (the reference always runs every iteration).
  int64_t plateau_window = 0;
  double plateau_tol = 1e-3;
  uint64_t seed = 1005;       // the draws of calibration batches
  // How L_A and its gradient are computed (defenses/unit_objective.h): the same function either way.
  ObjectiveKind objective = ObjectiveKind::Auto;
  int64_t gram_budget_mb = 3072;  // memory the Gram matrices of one layer may take
  int64_t curve_every = 100;  // the loss curve's step: a point every this many iterations
  std::string describe() const;
  Json to_json() const;
};

struct CurvePoint {
  int64_t iteration = 0;  // the last iteration of the window
  double act = 0, flip = 0, round = 0;  // the window's mean of L_A (unweighted); L_F, L_P at its last iteration
};

struct EfrapLayerReport {
  std::string name, unit;
  std::string objective;  // gram, fused or graph (block-wise: graph)
  int weight_bits = 0, input_bits = 0;
  int64_t weights = 0;
  int64_t iterations = 0;     // run (fewer than asked when the plateau stop fired)
  double seconds = 0;
  double setup_seconds = 0;   // inputs, targets and the nearest rounding's error
  double loop_seconds = 0;    // the iterations alone
  double flip_rate = 0;       // fraction of weights whose integer differs from nearest rounding's
  double on_grid = 0;         // fraction of weights with zero fractional part (they never move)
  double act_error_nearest = 0, act_error_learned = 0;  // L_A over all calibration batches
  std::vector<CurvePoint> curve;
  Json to_json() const;
  static EfrapLayerReport from_json(const Json& j);
};

struct EfrapProgress {
  // Called every `curve_every` iterations with the layer index, iteration and the last window.
  std::function<void(size_t layer, size_t layers, const CurvePoint&)> on_window;
  // Called after each layer is frozen. `resumable`: a run may resume after this layer, so a
  // checkpoint can be written here; false for a block's layers but its last, since a block cut in
  // the middle runs again whole (a checkpoint there would report its first layers twice).
  std::function<void(size_t layer, const EfrapLayerReport&, bool resumable)> on_layer;
};

// Runs EFRAP on `q` (calibrated, from `float_model`) with calibration batches `calib`. Layers
// whose index is below `start` are taken as done (their rounding already in q, e.g. a resumed
// run). Returns the reports of the layers it ran.
std::vector<EfrapLayerReport> efrap(quant::QuantizedModel& q, nn::Module& float_model, const std::vector<Tensor>& calib,
                                    const EfrapOptions& o, const EfrapProgress& progress = {}, size_t start = 0);

// The per-layer reports as a Markdown table (flip rate, activation error before/after, time).
std::string efrap_layer_table(const std::vector<EfrapLayerReport>& reports);
Json efrap_reports_json(const std::vector<EfrapLayerReport>& reports);
std::vector<EfrapLayerReport> efrap_reports_from_json(const Json& j);

// Freezes a learned rounding into a layer: mask rounding on W / s (AdaRound's division).
void set_learned_rounding(quant::QuantLayer& l, const Tensor& up);
// The weights whose integer under the layer's rounding differs from `nearest`'s on the same
// qparams: u8 0/1 of the weight's shape (the adaptive attack trains against these flips).
Tensor flips_against(const quant::QuantLayer& l, const quant::QuantScheme& nearest);

// The layer-wise activation error of a unit over the given inputs and targets (L_A, averaged).
double activation_error(const LayerUnit& u, const Tensor& weight, const std::vector<Tensor>& inputs,
                        const std::vector<Tensor>& targets);

}  // namespace dearest::defenses
