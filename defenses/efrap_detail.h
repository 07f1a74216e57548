// What EFRAP's layer loop and its block-wise variant share (not part of the public API).
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "defenses/efrap.h"

namespace dearest::defenses::detail {

// L_A as the reference reduces it: sum over channels (dim 1), mean over everything else.
Tensor unit_loss(const Tensor& pred, const Tensor& target);
double seconds_since(std::chrono::steady_clock::time_point t);
// The fraction of weights whose integer under the learned rounding differs from nearest.
double flip_rate(const quant::QuantLayer& l, const quant::QParams& qp, const RoundingProblem& p, const Tensor& up);
double mean_of(const std::vector<double>& v);

// The loss curve and the plateau stop. A point holds the window's mean of L_A (it varies with
// the batch drawn) and L_F, L_P at the window's last iteration (they depend on V alone, which moves
// little in a window): the hot loop then computes their sums, a log per weight, once a window.
struct CurveTracker {
  const EfrapOptions& o;
  std::vector<CurvePoint>& curve;
  CurvePoint win{};
  int64_t in_win = 0;
  double prev_window = -1;
  // Whether iteration `it` (1-based) ends a window, so that add() needs its L_F and L_P.
  bool ends_window(int64_t it) const { return it % o.curve_every == 0 || it == o.iterations; }
  // Adds an iteration's terms (`parts` is read only when `it` ends a window); returns whether the
  // plateau stop fires after iteration `it`.
  bool add(int64_t it, double act, const RegularizerParts& parts, const std::function<void(const CurvePoint&)>& on_window);
};

// What `module` (inside `model`) outputs for each batch; the forward pass stops there.
std::vector<Tensor> module_outputs(nn::Module& model, nn::Module& module, const std::vector<Tensor>& batches);
// The weight's qparams: frozen ones, or, for a quantizer that takes them from the tensor at every
// forward, those it computes from the (unchanging) float weight.
quant::QParams weight_qparams(const quant::QuantLayer& l);
std::string parent_name(const std::string& n);

// The layers `idx` of residual block `block`, learned together (EfrapOptions::block_wise).
std::vector<EfrapLayerReport> efrap_block(quant::QuantizedModel& q, nn::Module& float_model,
                                          const std::vector<Tensor>& calib, const EfrapOptions& o,
                                          const std::vector<LayerUnit>& units, const std::vector<size_t>& idx,
                                          const std::string& block, const EfrapProgress& progress);

}  // namespace dearest::defenses::detail
