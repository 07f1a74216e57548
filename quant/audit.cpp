#include "quant/audit.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "autograd/grad_mode.h"
#include "quant/channels.h"
#include "quant/element.h"
#include "quant/fake_quant.h"
#include "quant/integer_model.h"
#include "quant/ocs.h"
#include <map>
#include "quant/qparams.h"

namespace dearest::quant {

std::vector<WeightAudit> audit_weights(QuantizedModel& q) {
  NoGradGuard ng;
  std::vector<WeightAudit> out;
  for (auto& l : q.layers()) {
    WeightAudit a;
    a.name = l.name;
    a.kind = l.is_conv ? "conv" : "linear";
    const QuantScheme& s = l.weight->scheme();
    a.scheme = s.describe();
    a.bits = s.bits;
    Tensor w = l.float_weight().detach().contiguous();
    // A channel-split layer is quantized on its split weight: audit that.
    if (l.ocs) w = ocs_split(w, l.ocs->ratio, l.ocs->grid_aware ? l.ocs->grid_scale : 0).weight.contiguous();
    QParams qp;
    if (l.weight->has_qparams()) qp = l.weight->qparams();
    else {
      auto [mn, mx] = tensor_range(s, w);
      qp = qparams_from_range(s, mn, mx);
    }
    FakeQuantResult r = fake_quantize_raw(w, s, qp, l.weight->up_mask, true, true);
    QuantScheme nearest_s = s;
    nearest_s.rounding = Rounding::HalfEven;
    Tensor nearest = fake_quantize_raw(w, nearest_s, qp, {}, true).q;
    Tensor v = scaled_value(w, s, qp);
    const ChannelView cv = channel_view(s, w.shape());
    const float* wd = w.data<float>();
    const float* yd = r.y.data<float>();
    const float* vd = v.data<float>();
    const int32_t* qd = r.q.data<int32_t>();
    const int32_t* nd = nearest.data<int32_t>();
    const uint8_t* md = r.in_range.data<uint8_t>();
    const int32_t* zp = qp.zero_point.data<int32_t>();
    a.elements = w.numel();
    a.channels = qp.channels();
    a.scale_min = INFINITY;
    a.scale_max = -INFINITY;
    a.zero_point_min = INFINITY;
    a.zero_point_max = -INFINITY;
    for (int64_t c = 0; c < a.channels; ++c) {
      const double st = qp.step(s, c);
      a.scale_min = std::min(a.scale_min, st);
      a.scale_max = std::max(a.scale_max, st);
      a.zero_point_min = std::min(a.zero_point_min, double(zp[c]));
      a.zero_point_max = std::max(a.zero_point_max, double(zp[c]));
    }
    a.w_min = INFINITY;
    a.w_max = -INFINITY;
    double signal = 0, noise = 0, steps = 0;
    int64_t up = 0, flips = 0, clamped = 0;
    for (int64_t row = 0; row < cv.outer * cv.C; ++row) {
      const int64_t c = row % cv.C;
      const double st = qp.step(s, c);
      for (int64_t i = 0; i < cv.inner; ++i) {
        const int64_t k = row * cv.inner + i;
        a.w_min = std::min(a.w_min, double(wd[k]));
        a.w_max = std::max(a.w_max, double(wd[k]));
        const double e = std::fabs(double(yd[k]) - wd[k]);
        a.mean_abs_err += e;
        a.max_abs_err = std::max(a.max_abs_err, e);
        steps += e / st;
        signal += double(wd[k]) * wd[k];
        noise += e * e;
        clamped += !md[k];
        // The integer before the zero point, compared with v: above means rounded up.
        const double qi = s.form == ScaleForm::MulScale ? double(qd[k]) : double(qd[k]) - zp[c];
        up += md[k] && qi > vd[k];
        flips += qd[k] != nd[k];
      }
    }
    const double n = double(a.elements);
    a.mean_abs_err /= n;
    a.mean_err_steps = steps / n;
    a.clamped = double(clamped) / n;
    a.rounded_up = double(up) / n;
    a.flipped = double(flips) / n;
    a.sqnr_db = noise > 0 ? 10 * std::log10(signal / noise) : INFINITY;
    out.push_back(a);
  }
  return out;
}

std::vector<ActivationAudit> audit_activations(QuantizedModel& q, const std::vector<Tensor>& batches) {
  NoGradGuard ng;
  std::vector<ActivationAudit> out;
  for (auto& a : q.activation_quantizers()) a.q->stats = std::make_shared<QuantStats>();
  for (auto& b : batches) q(b);
  for (auto& a : q.activation_quantizers()) {
    ActivationAudit r;
    r.name = a.name;
    r.scheme = a.q->scheme().describe();
    r.mode = mode_name(a.q->mode);
    r.bits = a.q->scheme().bits;
    if (a.q->has_qparams()) {
      const auto& s = a.q->scheme();
      const QParams& qp = a.q->qparams();
      r.scale = qp.step(s, 0);
      r.zero_point = qp.zero_point.data<int32_t>()[0];
      const float sc = qp.scale.data<float>()[0];
      const int32_t z = qp.zero_point.data<int32_t>()[0];
      r.lo = dequantize_element(s.form, s.qmin, sc, z);
      r.hi = dequantize_element(s.form, s.qmax, sc, z);
    }
    r.seen = *a.q->stats;
    a.q->stats.reset();
    out.push_back(r);
  }
  return out;
}

IntegerComparison compare_integer(QuantizedModel& q, const std::vector<Tensor>& batches, Requant requant) {
  NoGradGuard ng;
  IntegerModel im(q, false, requant);
  IntegerComparison out;
  out.requant = requant == Requant::Gemmlowp ? "gemmlowp" : "single";
  std::map<std::string, Tensor> emulated;
  std::map<std::string, size_t> index;
  // Wrap each activation quantizer so the emulation's integers are kept; restored at the end.
  auto install = [&](bool record) {
    for (auto& a : q.activation_quantizers()) {
      auto tq = a.q;
      const std::string name = a.name;
      nn::Module::TensorTransform fn;
      if (record)
        fn = [tq, name, &emulated](const Tensor& t) {
          emulated[name] = fake_quantize_raw(t, tq->scheme(), tq->qparams(), {}, true).q;
          return (*tq)(t);
        };
      else
        fn = [tq](const Tensor& t) { return (*tq)(t); };
      nn::Module* mod = q.model().find(name.substr(0, name.find(':')));
      DEAREST_CHECK(mod != nullptr, "compare_integer: no module for ", name);
      if (name.find(":output") != std::string::npos) mod->set_output_transform(fn);
      else mod->set_input_transform(fn);
    }
  };
  for (auto& a : q.activation_quantizers()) {
    index[a.name] = out.points.size();
    out.points.push_back({a.name});
  }
  im.trace = [&](const std::string& n, const Tensor& t) {
    auto it = emulated.find(n);
    DEAREST_CHECK(it != emulated.end() && it->second.shape() == t.shape(), "compare_integer: no emulated tensor like ", n);
    IntegerPoint& p = out.points[index.at(n)];
    const int32_t* a = t.data<int32_t>();
    const int32_t* b = it->second.data<int32_t>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t d = std::abs(int64_t(a[i]) - b[i]);
      p.differ += d != 0;
      p.max_steps = std::max(p.max_steps, d);
    }
    p.elements += t.numel();
  };
  install(true);
  try {
    for (auto& x : batches) {
      emulated.clear();
      Tensor e = q(x).plain().contiguous(), i = im.forward(x);
      const int64_t N = e.size(0), C = e.size(1);
      const float* ed = e.data<float>();
      const float* id = i.data<float>();
      for (int64_t n = 0; n < N; ++n) {
        int64_t be = 0, bi = 0;
        for (int64_t c = 0; c < C; ++c) {
          if (ed[n * C + c] > ed[n * C + be]) be = c;
          if (id[n * C + c] > id[n * C + bi]) bi = c;
          out.max_logit_diff = std::max(out.max_logit_diff, double(std::fabs(ed[n * C + c] - id[n * C + c])));
          out.max_logit = std::max(out.max_logit, double(std::fabs(ed[n * C + c])));
        }
        out.top1_agree += be == bi;
      }
      out.images += N;
    }
  } catch (...) {
    install(false);
    throw;
  }
  install(false);
  return out;
}

Json to_json(const IntegerComparison& c) {
  Json j = Json::object();
  j.set("requant", c.requant);
  j.set("images", c.images);
  j.set("top1_agreement", c.agreement());
  j.set("top1_agree", c.top1_agree);
  j.set("max_logit_diff", c.max_logit_diff);
  j.set("max_abs_logit", c.max_logit);
  Json pts = Json::array();
  for (auto& p : c.points) {
    Json e = Json::object();
    e.set("point", p.name);
    e.set("elements", p.elements);
    e.set("differ", p.differ);
    e.set("max_steps", p.max_steps);
    pts.push(e);
  }
  j.set("points", pts);
  return j;
}

std::string integer_table(const IntegerComparison& c) {
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf, "integer-only (%s requantization) vs emulated: top-1 agreement %.2f%% (%lld of %lld images), max |logit diff| %.4g (max |logit| %.4g)\n",
                c.requant.c_str(), 100 * c.agreement(), (long long)c.top1_agree, (long long)c.images, c.max_logit_diff, c.max_logit);
  os << buf;
  std::snprintf(buf, sizeof buf, "%-28s %12s %10s %9s\n", "quantization point", "elements", "differ", "max steps");
  os << buf;
  for (auto& p : c.points) {
    std::snprintf(buf, sizeof buf, "%-28s %12lld %9.3f%% %9lld\n", p.name.c_str(), (long long)p.elements,
                  p.elements ? 100.0 * double(p.differ) / double(p.elements) : 0.0, (long long)p.max_steps);
    os << buf;
  }
  return os.str();
}

Json to_json(const WeightAudit& a) {
  Json j = Json::object();
  j.set("layer", a.name);
  j.set("kind", a.kind);
  j.set("scheme", a.scheme);
  j.set("bits", a.bits);
  j.set("elements", a.elements);
  j.set("channels", a.channels);
  j.set("scale_min", a.scale_min);
  j.set("scale_max", a.scale_max);
  j.set("zero_point_min", a.zero_point_min);
  j.set("zero_point_max", a.zero_point_max);
  j.set("weight_min", a.w_min);
  j.set("weight_max", a.w_max);
  j.set("clamped", a.clamped);
  j.set("rounded_up", a.rounded_up);
  j.set("flipped_vs_nearest", a.flipped);
  j.set("mean_abs_err", a.mean_abs_err);
  j.set("max_abs_err", a.max_abs_err);
  j.set("mean_err_steps", a.mean_err_steps);
  j.set("sqnr_db", std::isfinite(a.sqnr_db) ? Json(a.sqnr_db) : Json("inf"));
  return j;
}

Json to_json(const ActivationAudit& a) {
  Json j = Json::object();
  j.set("activation", a.name);
  j.set("scheme", a.scheme);
  j.set("mode", a.mode);
  j.set("bits", a.bits);
  j.set("scale", a.scale);
  j.set("zero_point", a.zero_point);
  j.set("range_lo", a.lo);
  j.set("range_hi", a.hi);
  j.set("elements_seen", a.seen.elements);
  j.set("clamped", a.seen.elements ? double(a.seen.clamped) / double(a.seen.elements) : 0.0);
  const double sq = a.seen.sqnr_db();
  j.set("sqnr_db", std::isfinite(sq) ? Json(sq) : Json("inf"));
  return j;
}

std::string weight_table(const std::vector<WeightAudit>& v) {
  std::ostringstream os;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-26s %4s %10s %10s %9s %8s %8s %8s %10s %8s\n", "layer", "bits", "step min",
                "step max", "zp range", "clamped", "up", "flipped", "err/step", "SQNR dB");
  os << buf;
  for (auto& a : v) {
    std::snprintf(buf, sizeof buf, "%-26s %4d %10.3g %10.3g %4.0f..%-4.0f %7.3f%% %7.2f%% %7.2f%% %10.4f %8.2f\n",
                  a.name.c_str(), a.bits, a.scale_min, a.scale_max, a.zero_point_min, a.zero_point_max, 100 * a.clamped,
                  100 * a.rounded_up, 100 * a.flipped, a.mean_err_steps, a.sqnr_db);
    os << buf;
  }
  return os.str();
}

std::string activation_table(const std::vector<ActivationAudit>& v) {
  std::ostringstream os;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-26s %4s %8s %10s %5s %11s %11s %9s %8s\n", "activation", "bits", "mode", "step",
                "zp", "lo", "hi", "clamped", "SQNR dB");
  os << buf;
  for (auto& a : v) {
    const double cl = a.seen.elements ? 100.0 * double(a.seen.clamped) / double(a.seen.elements) : 0.0;
    std::snprintf(buf, sizeof buf, "%-26s %4d %8s %10.4g %5.0f %11.4g %11.4g %8.3f%% %8.2f\n", a.name.c_str(), a.bits,
                  a.mode.c_str(), a.scale, a.zero_point, a.lo, a.hi, cl, a.seen.sqnr_db());
    os << buf;
  }
  return os.str();
}

}  // namespace dearest::quant
