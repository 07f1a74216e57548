#include "defenses/efrap.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "quant/fake_quant.h"
#include "quant/qparams.h"
#include "tensor/rng.h"

namespace dearest::defenses {

namespace {

// L_A as the reference reduces it: sum over channels (dim 1), mean over everything else.
Tensor unit_loss(const Tensor& pred, const Tensor& target) {
  const double rows = double(pred.numel()) / double(pred.size(1));
  return div(sum(square(sub(pred, target))), rows);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The fraction of weights whose integer under the learned rounding differs from nearest.
double flip_rate(const quant::QuantLayer& l, const quant::QParams& qp, const RoundingProblem& p, const Tensor& up) {
  quant::QuantScheme nearest = l.weight->scheme();
  if (nearest.rounding != quant::Rounding::HalfUp && nearest.rounding != quant::Rounding::HalfAway)
    nearest.rounding = quant::Rounding::HalfEven;  // else the quantizer's own nearest rounding
  const Tensor qn = quant::fake_quantize_raw(l.float_weight().detach(), nearest, qp, {}, true).q.contiguous();
  const int64_t C = p.channels(), per = C == 1 ? up.numel() : up.numel() / C;
  const int32_t* n = qn.data<int32_t>();
  const float *fl = p.floor_u.data<float>(), *z = p.zero.data<float>();
  const uint8_t* u = up.data<uint8_t>();
  int64_t differ = 0;
  for (int64_t k = 0; k < up.numel(); ++k) {
    const int64_t c = k / per;
    double learned = double(fl[k]) + u[k] + (p.multiplicative ? 0.0 : z[c]);
    learned = std::min<double>(std::max<double>(learned, double(p.qmin)), double(p.qmax));
    differ += int64_t(learned) != n[k];
  }
  return up.numel() ? double(differ) / double(up.numel()) : 0;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// The loss curve (window means) and the plateau stop.
struct CurveTracker {
  const EfrapOptions& o;
  std::vector<CurvePoint>& curve;
  CurvePoint win;
  int64_t in_win = 0;
  double prev_window = -1;
  // Adds an iteration's terms; returns whether the plateau stop fires after iteration `it`.
  bool add(int64_t it, double act, const RegularizerParts& parts, const std::function<void(const CurvePoint&)>& on_window) {
    win.act += act;
    win.flip += parts.flip;
    win.round += parts.round;
    ++in_win;
    if (in_win == o.curve_every || it == o.iterations) {
      CurvePoint cp{it, win.act / double(in_win), win.flip / double(in_win), win.round / double(in_win)};
      curve.push_back(cp);
      if (on_window) on_window(cp);
      win = CurvePoint{};
      in_win = 0;
    }
    if (o.plateau_window <= 0 || it % o.plateau_window != 0) return false;
    double sum = 0;
    int64_t n = 0;
    for (auto c = curve.rbegin(); c != curve.rend() && c->iteration > it - o.plateau_window; ++c, ++n)
      sum += o.lambda_a * c->act + c->flip + c->round;
    const double mean = n ? sum / double(n) : 0;
    const bool stop = prev_window > 0 && (prev_window - mean) / prev_window < o.plateau_tol;
    prev_window = mean;
    return stop;
  }
};

// What `module` (inside `model`) outputs for each batch; the forward pass stops there.
std::vector<Tensor> module_outputs(nn::Module& model, nn::Module& module, const std::vector<Tensor>& batches) {
  struct Captured {};
  NoGradGuard ng;
  std::vector<Tensor> out;
  Tensor seen;
  module.add_forward_hook([&](nn::Module&, const Tensor& y) {
    seen = y;
    throw Captured{};
  });
  try {
    for (auto& b : batches) {
      try {
        model(b);
      } catch (const Captured&) {
      }
      DEAREST_CHECK(seen.defined(), "efrap: the block was not reached by the forward pass");
      out.push_back(seen.plain().contiguous());
    }
  } catch (...) {
    module.clear_forward_hooks();
    throw;
  }
  module.clear_forward_hooks();
  return out;
}

// The weight's qparams: frozen ones, or, for a quantizer that takes them from the tensor at every
// forward, those it computes from the (unchanging) float weight.
quant::QParams weight_qparams(const quant::QuantLayer& l) {
  if (l.weight->has_qparams()) return l.weight->qparams();
  NoGradGuard ng;
  auto [mn, mx] = quant::tensor_range(l.weight->scheme(), l.float_weight().detach());
  return quant::qparams_from_range(l.weight->scheme(), mn, mx);
}

std::string parent_name(const std::string& n) {
  const size_t d = n.rfind('.');
  return d == std::string::npos ? std::string() : n.substr(0, d);
}

}  // namespace

std::string EfrapOptions::describe() const {
  std::ostringstream s;
  s << iterations << " iterations/layer, Adam lr " << lr << ", lambda_A " << lambda_a << ", lambda_F " << lambda_f
    << ", lambda_P " << lambda_p << ", error weighting " << error_weighting_name(weighting) << ", seed " << seed;
  if (plateau_window > 0) s << ", plateau stop " << plateau_window << "/" << plateau_tol;
  if (block_wise) s << ", block-wise activation preservation";
  return s.str();
}

Json EfrapOptions::to_json() const {
  Json j = Json::object();
  j.set("iterations", iterations);
  j.set("lr", lr);
  j.set("lambda_a", lambda_a);
  j.set("lambda_f", lambda_f);
  j.set("lambda_p", lambda_p);
  j.set("error_weighting", error_weighting_name(weighting));
  j.set("plateau_window", plateau_window);
  j.set("plateau_tol", plateau_tol);
  j.set("seed", int64_t(seed));
  j.set("objective", objective == ObjectiveKind::Auto ? "auto" : objective == ObjectiveKind::Gram ? "gram"
                     : objective == ObjectiveKind::Fused ? "fused" : "graph");
  j.set("gram_budget_mb", gram_budget_mb);
  j.set("block_wise", block_wise);
  j.set("curve_every", curve_every);
  return j;
}

Json EfrapLayerReport::to_json() const {
  Json j = Json::object();
  j.set("name", name);
  j.set("unit", unit);
  j.set("objective", objective);
  j.set("weight_bits", weight_bits);
  j.set("input_bits", input_bits);
  j.set("weights", weights);
  j.set("iterations", iterations);
  j.set("seconds", seconds);
  j.set("setup_seconds", setup_seconds);
  j.set("loop_seconds", loop_seconds);
  j.set("flip_rate", flip_rate);
  j.set("on_grid", on_grid);
  j.set("act_error_nearest", act_error_nearest);
  j.set("act_error_learned", act_error_learned);
  Json c = Json::array();
  for (auto& p : curve) {
    Json e = Json::array();
    e.push(p.iteration);
    e.push(p.act);
    e.push(p.flip);
    e.push(p.round);
    c.push(e);
  }
  j.set("curve", c);
  return j;
}

EfrapLayerReport EfrapLayerReport::from_json(const Json& j) {
  EfrapLayerReport r;
  r.name = j["name"].as_string();
  r.unit = j["unit"].as_string();
  if (j.contains("objective")) r.objective = j["objective"].as_string();
  r.weight_bits = int(j["weight_bits"].as_int());
  r.input_bits = int(j["input_bits"].as_int());
  r.weights = j["weights"].as_int();
  r.iterations = j["iterations"].as_int();
  r.seconds = j["seconds"].as_number();
  if (j.contains("setup_seconds")) r.setup_seconds = j["setup_seconds"].as_number();
  if (j.contains("loop_seconds")) r.loop_seconds = j["loop_seconds"].as_number();
  r.flip_rate = j["flip_rate"].as_number();
  r.on_grid = j["on_grid"].as_number();
  r.act_error_nearest = j["act_error_nearest"].as_number();
  r.act_error_learned = j["act_error_learned"].as_number();
  for (auto& e : j["curve"].items())
    r.curve.push_back({e.items()[0].as_int(), e.items()[1].as_number(), e.items()[2].as_number(), e.items()[3].as_number()});
  return r;
}

std::string efrap_layer_table(const std::vector<EfrapLayerReport>& reports) {
  std::string s =
      "| layer | form | bits W/A | weights | on grid % | flip rate % | L_A nearest | L_A learned | iterations | seconds |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (auto& r : reports) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %d/%d | %ld | %.2f | %.2f | %.5g | %.5g | %ld | %.1f |\n", r.name.c_str(),
                  r.objective.c_str(), r.weight_bits, r.input_bits, long(r.weights), 100 * r.on_grid, 100 * r.flip_rate,
                  r.act_error_nearest, r.act_error_learned, long(r.iterations), r.seconds);
    s += buf;
  }
  return s;
}

Json efrap_reports_json(const std::vector<EfrapLayerReport>& reports) {
  Json r = Json::array();
  for (auto& rep : reports) r.push(rep.to_json());
  return r;
}

std::vector<EfrapLayerReport> efrap_reports_from_json(const Json& j) {
  std::vector<EfrapLayerReport> out;
  for (auto& e : j.items()) out.push_back(EfrapLayerReport::from_json(e));
  return out;
}

void set_learned_rounding(quant::QuantLayer& l, const Tensor& up) {
  quant::QuantScheme s = l.weight->scheme();
  s.rounding = quant::Rounding::Mask;
  if (s.form != quant::ScaleForm::MulScale) s.form = quant::ScaleForm::Divide;
  l.weight->set_scheme(s);
  l.weight->up_mask = up;
}

double activation_error(const LayerUnit& u, const Tensor& weight, const std::vector<Tensor>& inputs,
                        const std::vector<Tensor>& targets) {
  NoGradGuard ng;
  std::vector<double> e;
  for (size_t b = 0; b < inputs.size(); ++b) e.push_back(unit_loss(u.forward(inputs[b], weight, true), targets[b]).item());
  return mean_of(e);
}

namespace {

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
    if (progress.on_layer) progress.on_layer(idx[j], reps[j]);
  }
  return reps;
}

}  // namespace

std::vector<EfrapLayerReport> efrap(quant::QuantizedModel& q, nn::Module& float_model, const std::vector<Tensor>& calib,
                                    const EfrapOptions& o, const EfrapProgress& progress, size_t start) {
  DEAREST_CHECK(q.calibrated(), "efrap: the quantized model is not calibrated");
  DEAREST_CHECK(!calib.empty(), "efrap: no calibration data");
  DEAREST_CHECK(o.iterations >= 1, "efrap: iterations must be at least 1, got ", o.iterations);
  DEAREST_CHECK(o.lr > 0, "efrap: the learning rate must be positive, got ", o.lr);
  DEAREST_CHECK(o.curve_every >= 1, "efrap: curve_every must be at least 1");
  DEAREST_CHECK(o.plateau_window >= 0 && o.plateau_window % o.curve_every == 0,
                "efrap: the plateau window must be a multiple of the curve step (", o.curve_every, "), got ", o.plateau_window);
  const int64_t in = q.spec().get("input", 32);
  for (auto& b : calib)
    DEAREST_CHECK(b.dim() == 4 && b.size(0) > 0 && b.size(1) == 3 && b.size(2) == in && b.size(3) == in,
                  "efrap: calibration batches must be [N, 3, ", in, ", ", in, "] for ", q.spec().str(), ", got ",
                  b.describe());
  DEAREST_CHECK(q.config().w_bits >= 2 && q.config().w_bits <= 8, "efrap: weight bits must be in 2..8, got ",
                q.config().w_bits);
  float_model.eval();
  q.model().eval();
  std::vector<LayerUnit> units = layer_units(q, float_model);
  std::vector<EfrapLayerReport> reports;
  auto run_layer = [&](size_t li) {
    const LayerUnit& u = units[li];
    quant::QuantLayer& l = *u.layer;
    const auto t0 = std::chrono::steady_clock::now();
    q.set_enabled(true, true);
    // Inputs from the partly quantized model (done layers learned, the rest nearest); targets
    // from the float model.
    std::vector<Tensor> xq = layer_inputs(q.model(), *l.module, calib);
    std::vector<Tensor> target;
    {
      NoGradGuard ng;
      std::vector<Tensor> xf = layer_inputs(float_model, *u.float_layer, calib);
      const Tensor w = l.float_weight().detach();
      for (auto& x : xf) target.push_back(u.forward(x, w, false).contiguous());
    }
    const quant::QParams wqp = weight_qparams(l);
    const RoundingProblem p = rounding_problem(l.float_weight().detach(), l.weight->scheme(), wqp, o.weighting);
    EfrapLayerReport rep;
    rep.name = l.name;
    rep.unit = u.describe();
    rep.weight_bits = l.weight_bits;
    rep.input_bits = l.input_bits;
    rep.weights = p.frac.numel();
    {
      int64_t zero = 0;
      const float* r = p.frac.data<float>();
      for (int64_t k = 0; k < p.frac.numel(); ++k) zero += r[k] == 0.0f;
      rep.on_grid = double(zero) / double(std::max<int64_t>(1, p.frac.numel()));
    }
    rep.act_error_nearest = activation_error(u, q.quantized_weight(l), xq, target);

    const Tensor w_float = l.float_weight().detach().plain().contiguous();
    std::unique_ptr<UnitObjective> obj =
        make_unit_objective(u, xq, target, w_float, o.objective, o.gram_budget_mb << 20);
    rep.setup_seconds = seconds_since(t0);
    const auto t_loop = std::chrono::steady_clock::now();
    rep.objective = obj->kind();
    Tensor V = initial_rounding_variables(p);
    RoundingAdam adam;
    adam.lr = o.lr;
    Tensor grad_w;
    Rng rng(o.seed, li);
    CurveTracker curve{o, rep.curve};
    auto on_window = [&](const CurvePoint& cp) {
      if (progress.on_window) progress.on_window(li, units.size(), cp);
    };
    int64_t it = 0;
    while (it < o.iterations) {
      const size_t b = size_t(rng.next_int(0, int64_t(xq.size())));
      const double la = obj->value_and_grad(soft_rounded_weight_raw(V, p), b, grad_w);
      const RegularizerParts parts = rounding_adam_step(V, grad_w, p, o.lambda_a, o.lambda_f, o.lambda_p, adam);
      ++it;
      if (curve.add(it, la, parts, on_window)) break;
    }
    rep.iterations = it;
    rep.loop_seconds = seconds_since(t_loop);
    const Tensor up = hard_rounding(V);
    set_learned_rounding(l, up);
    rep.flip_rate = flip_rate(l, wqp, p, up);
    rep.act_error_learned = activation_error(u, q.quantized_weight(l), xq, target);
    rep.seconds = seconds_since(t0);
    reports.push_back(rep);
    if (progress.on_layer) progress.on_layer(li, rep);
  };
  // Layer units, or residual blocks learned together.
  std::vector<std::vector<size_t>> groups;
  std::vector<std::string> group_block;
  for (size_t li = 0; li < units.size(); ++li) {
    std::string block;
    if (o.block_wise && q.spec().arch == "resnet18") {
      const std::string& n = units[li].layer->name;
      std::string par = parent_name(n);
      if (par.size() > 11 && par.compare(par.size() - 11, 11, ".downsample") == 0) par = parent_name(par);
      nn::Module* pm = par.empty() ? nullptr : q.model().find(par);
      if (pm && pm->type() == "BasicBlock") block = par;
    }
    if (!block.empty() && !group_block.empty() && group_block.back() == block) {
      groups.back().push_back(li);
    } else {
      groups.push_back({li});
      group_block.push_back(block);
    }
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].back() < start) continue;  // done (a group cut in the middle runs again whole)
    if (group_block[g].empty()) {
      for (size_t li : groups[g])
        if (li >= start) run_layer(li);
    } else {
      for (auto& r : efrap_block(q, float_model, calib, o, units, groups[g], group_block[g], progress)) reports.push_back(r);
    }
  }
  q.set_enabled(true, true);
  return reports;
}

}  // namespace dearest::defenses
