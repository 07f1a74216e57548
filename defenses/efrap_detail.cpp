#include "defenses/efrap_detail.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "quant/fake_quant.h"
#include "quant/qparams.h"

namespace dearest::defenses::detail {

Tensor unit_loss(const Tensor& pred, const Tensor& target) {
  const double rows = double(pred.numel()) / double(pred.size(1));
  return div(sum(square(sub(pred, target))), rows);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

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

bool CurveTracker::add(int64_t it, double act, const RegularizerParts& parts,
                     const std::function<void(const CurvePoint&)>& on_window) {
  win.act += act;
  ++in_win;
  if (ends_window(it)) {
    CurvePoint cp{it, win.act / double(in_win), parts.flip, parts.round};
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

}  // namespace dearest::defenses::detail
