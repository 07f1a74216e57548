#include <chrono>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "defenses/efrap_detail.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tensor/rng.h"

namespace dearest::defenses::detail {


// The layers of one residual block learn their rounding together: L_A on the block's output (then
// the next block's input quantizer), L_F and L_P summed over the block's layers, one Adam over all
// their rounding variables. The block runs as the model runs it, so the activation quantizer
// inside it is applied too.
std::vector<EfrapLayerReport> efrap_block(quant::QuantizedModel& q, nn::Module& float_model,
                                          const std::vector<Tensor>& calib, const EfrapOptions& o,
                                          const std::vector<LayerUnit>& units, const std::vector<size_t>& idx,
                                          const std::string& block, const EfrapProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  q.set_enabled(true, true);
  nn::Module* qb = q.model().find(block);
  nn::Module* fb = float_model.find(block);
  DEAREST_CHECK(qb && fb, "efrap: no block ", block);
  const std::vector<Tensor> xq = layer_inputs(q.model(), *qb, calib);
  const std::vector<Tensor> target = module_outputs(float_model, *fb, calib);
  // The quantizer that consumes the block's output: the next block's input quantizer, if any.
  std::shared_ptr<quant::TensorQuantizer> next_q;
  for (size_t k = idx.back() + 1; k < units.size(); ++k) {
    const std::string& n = units[k].layer->name;
    if (n.size() > 6 && n.compare(n.size() - 6, 6, ".conv1") == 0 && parent_name(n) != block) next_q = units[k].layer->input;
    break;
  }
  std::vector<RoundingProblem> probs;
  std::vector<Tensor> V;
  std::vector<nn::Module::TensorTransform> saved;
  std::vector<Tensor> soft(idx.size());
  nn::StateDict params;
  std::vector<EfrapLayerReport> reps(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) {
    quant::QuantLayer& l = *units[idx[j]].layer;
    probs.push_back(rounding_problem(l.float_weight().detach(), l.weight->scheme(), weight_qparams(l), o.weighting));
    V.push_back(initial_rounding_variables(probs.back()));
    V.back().set_requires_grad(true);
    params.emplace_back(l.name, V.back());
    auto* conv = static_cast<nn::Conv2d*>(l.module);
    saved.push_back(conv->weight_transform);
    reps[j].name = l.name;
    reps[j].unit = "block " + block + " -> " + (next_q ? "quantize(next block input)" : "output");
    reps[j].objective = "graph";
    reps[j].weight_bits = l.weight_bits;
    reps[j].input_bits = l.input_bits;
    reps[j].weights = probs.back().frac.numel();
    int64_t zero = 0;
    for (int64_t k = 0; k < probs.back().frac.numel(); ++k) zero += probs.back().frac.data<float>()[k] == 0.0f;
    reps[j].on_grid = double(zero) / double(std::max<int64_t>(1, reps[j].weights));
  }
  auto restore = [&]() {
    for (size_t j = 0; j < idx.size(); ++j) static_cast<nn::Conv2d*>(units[idx[j]].layer->module)->weight_transform = saved[j];
  };
  auto block_error = [&]() {
    NoGradGuard ng;
    double e = 0;
    for (size_t b = 0; b < xq.size(); ++b) {
      Tensor y = qb->forward(xq[b]);
      if (next_q) y = (*next_q)(y);
      e += unit_loss(y, target[b]).item();
    }
    return e / double(xq.size());
  };
  const double err_nearest = block_error();
  for (size_t j = 0; j < idx.size(); ++j) {
    auto* conv = static_cast<nn::Conv2d*>(units[idx[j]].layer->module);
    conv->weight_transform = [&soft, j](const Tensor&) { return soft[j]; };
  }
  const double setup = seconds_since(t0);
  const auto t_loop = std::chrono::steady_clock::now();
  int64_t it = 0;
  try {
    nn::AdamOptions ao;
    ao.lr = o.lr;
    nn::Adam adam(params, ao);
    Rng rng(o.seed, idx.front());
    CurveTracker curve{o, reps[0].curve};
    auto on_window = [&](const CurvePoint& cp) {
      if (progress.on_window) progress.on_window(idx.front(), units.size(), cp);
    };
    while (it < o.iterations) {
      const size_t b = size_t(rng.next_int(0, int64_t(xq.size())));
      for (size_t j = 0; j < idx.size(); ++j) soft[j] = soft_rounded_weight(V[j], probs[j]);
      Tensor y = qb->forward(xq[b]);
      if (next_q) y = (*next_q)(y);
      Tensor la = unit_loss(y, target[b]);
      Tensor loss = mul(la, o.lambda_a);
      RegularizerParts total;
      for (size_t j = 0; j < idx.size(); ++j) {
        RegularizerParts parts;
        loss = add(loss, rounding_regularizer(V[j], probs[j], o.lambda_f, o.lambda_p, &parts));
        total.flip += parts.flip;
        total.round += parts.round;
      }
      backward(loss);
      adam.step();
      adam.zero_grad();
      ++it;
      if (curve.add(it, la.item(), total, on_window)) break;
    }
  } catch (...) {
    restore();
    throw;
  }
  restore();
  for (size_t j = 0; j < idx.size(); ++j) {
    quant::QuantLayer& l = *units[idx[j]].layer;
    const Tensor up = hard_rounding(V[j]);
    set_learned_rounding(l, up);
    reps[j].flip_rate = flip_rate(l, weight_qparams(l), probs[j], up);
  }
  const double err_learned = block_error();
  for (size_t j = 0; j < idx.size(); ++j) {
    reps[j].iterations = it;
    reps[j].act_error_nearest = err_nearest;
    reps[j].act_error_learned = err_learned;
    reps[j].setup_seconds = j == 0 ? setup : 0;
    reps[j].loop_seconds = j == 0 ? seconds_since(t_loop) : 0;
    reps[j].seconds = j == 0 ? seconds_since(t0) : 0;
    if (progress.on_layer) progress.on_layer(idx[j], reps[j], j + 1 == idx.size());
  }
  return reps;
}


}  // namespace dearest::defenses::detail
