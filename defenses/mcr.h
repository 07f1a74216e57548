// Mode connectivity repair (MCR; ALGORITHMS.md §4.3, BackdoorBox's MCR and curves): a quadratic
// Bezier curve between the backdoored model theta0 and a fine-tuned copy theta2,
//   theta(t) = (1 - t)^2 theta0 + 2 t (1 - t) theta1 + t^2 theta2,
// whose bend theta1 (initialised at the midpoint) is trained on the clean subset with a fresh
// t ~ U(0, 1) per batch to minimise CE(f_theta(t)(x), y) + (l2 / 2) ||theta(t)||^2. A point of
// the curve is a model with the interpolated parameters and its BN statistics recomputed on the
// clean data (a cumulative average, as torch's momentum=None). The supplementary evaluates
// t = 0.1 and 0.9 and reports the one with the higher DTM.
#pragma once
#include <string>
#include <vector>

#include "defenses/removal.h"

namespace dearest::defenses {

struct McrOptions {
  FineTuneOptions endpoint;  // theta2: the fine-tuned copy (the supplementary: 50 epochs)
  FineTuneOptions curve;     // the bend's training (the supplementary: 100 epochs)
  double l2 = 5e-4;          // BackdoorBox's l2_regularizer weight
};

struct McrCurve {
  nn::ModulePtr start, bend, end;
  std::vector<nn::EpochStats> endpoint_history, curve_history;
};

// Fine-tunes the end point and trains the bend; `model` (theta0) is not changed.
// `through`, when given, is a quantized twin of `model` (same parameters, quantizers with frozen
// qparams, EFRAP supplementary Table 5's "MCR + STE"): the end point is fine-tuned in it and every
// batch of the curve's training runs through it, so the gradients pass its quantizers straight
// through. Its parameters are left at some point of the curve; set_curve_point chooses one.
McrCurve mcr(nn::Module& model, const nn::ModelSpec& spec, const data::DatasetPtr& clean, const std::string& kind,
             const McrOptions& o, nn::Module* through = nullptr);

// The model at t: parameters interpolated, buffers from the start (BN statistics to be
// recomputed with update_batchnorm).
nn::ModulePtr curve_point(const nn::ModelSpec& spec, const McrCurve& c, double t);

// Writes the curve's parameters at t into `dst`, a model with the curve's parameters (a float
// copy or a quantized twin); its buffers are left alone.
void set_curve_point(nn::Module& dst, const McrCurve& c, double t);

// Resets every BN's running statistics and recomputes them as the cumulative average over the
// data (training transforms, train mode, no gradient); the model is left in eval mode.
void update_batchnorm(nn::Module& model, const data::DatasetPtr& data, const std::string& kind, int64_t batch,
                      uint64_t seed);

}  // namespace dearest::defenses
