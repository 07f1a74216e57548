#include "defenses/efrap.h"

#include <chrono>

#include "autograd/grad_mode.h"
#include "defenses/efrap_detail.h"
#include "tensor/rng.h"

namespace dearest::defenses {

using namespace detail;

void set_learned_rounding(quant::QuantLayer& l, const Tensor& up) {
  quant::QuantScheme s = l.weight->scheme();
  s.rounding = quant::Rounding::Mask;
  if (s.form != quant::ScaleForm::MulScale) s.form = quant::ScaleForm::Divide;
  l.weight->set_scheme(s);
  l.weight->up_mask = up;
}

Tensor flips_against(const quant::QuantLayer& l, const quant::QuantScheme& nearest) {
  NoGradGuard ng;
  const quant::QParams qp = weight_qparams(l);
  const Tensor w = l.float_weight().detach();
  const Tensor a = quant::fake_quantize_raw(w, l.weight->scheme(), qp, l.weight->up_mask, true).q.contiguous();
  const Tensor b = quant::fake_quantize_raw(w, nearest, qp, {}, true).q.contiguous();
  Tensor out = Tensor::empty(w.shape(), DType::U8);
  const int32_t *pa = a.data<int32_t>(), *pb = b.data<int32_t>();
  uint8_t* o = out.data<uint8_t>();
  for (int64_t i = 0; i < out.numel(); ++i) o[i] = uint8_t(pa[i] != pb[i]);
  return out;
}

double activation_error(const LayerUnit& u, const Tensor& weight, const std::vector<Tensor>& inputs,
                        const std::vector<Tensor>& targets) {
  NoGradGuard ng;
  std::vector<double> e;
  for (size_t b = 0; b < inputs.size(); ++b) e.push_back(unit_loss(u.forward(inputs[b], weight, true), targets[b]).item());
  return mean_of(e);
}


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
    Tensor grad_w, w_tilde, h;
    Rng rng(o.seed, li);
    CurveTracker curve{o, rep.curve};
    auto on_window = [&](const CurvePoint& cp) {
      if (progress.on_window) progress.on_window(li, units.size(), cp);
    };
    int64_t it = 0;
    while (it < o.iterations) {
      const size_t b = size_t(rng.next_int(0, int64_t(xq.size())));
      soft_rounded_weight_into(V, p, w_tilde, h);
      const double la = obj->value_and_grad(w_tilde, b, grad_w);
      const RegularizerParts parts = rounding_adam_step(V, grad_w, p, o.lambda_a, o.lambda_f, o.lambda_p, adam, &h,
                                                        curve.ends_window(it + 1));
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
    if (progress.on_layer) progress.on_layer(li, rep, true);
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
