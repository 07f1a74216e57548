#include "quant/tensor_quantizer.h"

#include "autograd/grad_mode.h"
#include "quant/qparams.h"

#include <cmath>

namespace dearest::quant {

double QuantStats::sqnr_db() const {
  if (noise <= 0) return INFINITY;
  return 10.0 * std::log10(signal / noise);
}

namespace {
void record_stats(QuantStats& st, const Tensor& x, const QuantScheme& s, const QParams& qp, const Tensor& up) {
  FakeQuantResult r = fake_quantize_raw(x.detach(), s, qp, up, false, true);
  Tensor xf = x.detach().plain().contiguous().to(DType::F32);
  const float* a = xf.data<float>();
  const float* b = r.y.data<float>();
  const uint8_t* m = r.in_range.data<uint8_t>();
  for (int64_t i = 0; i < xf.numel(); ++i) {
    st.signal += double(a[i]) * a[i];
    st.noise += double(b[i] - a[i]) * (b[i] - a[i]);
    st.clamped += !m[i];
  }
  st.elements += xf.numel();
}
}  // namespace

TensorQuantizer::TensorQuantizer(QuantScheme scheme, ObserverOptions obs, Ste ste)
    : scheme_(scheme), obs_opts_(obs), observer_(std::make_unique<Observer>(scheme, obs)), ste_(ste) {}

Tensor TensorQuantizer::operator()(const Tensor& x) {
  switch (mode) {
    case Mode::Off: return x;
    case Mode::Observe: {
      NoGradGuard ng;
      observer_->observe(x.detach());
      return x;
    }
    case Mode::Fixed:
      DEAREST_CHECK(has_qparams(), "quantizer: no qparams (calibrate first)");
      if (stats) record_stats(*stats, x, scheme_, qp_, up_mask);
      return fake_quantize(x, scheme_, qp_, ste_, up_mask);
    case Mode::Dynamic: {
      QParams qp;
      {
        NoGradGuard ng;
        auto [mn, mx] = tensor_range(scheme_, x.detach());
        qp = qparams_from_range(scheme_, mn, mx);
      }
      if (stats) record_stats(*stats, x, scheme_, qp, up_mask);
      return fake_quantize(x, scheme_, qp, ste_, up_mask);
    }
  }
  return x;
}

void TensorQuantizer::freeze() {
  if (observer_->needs_second_pass()) fail("quantizer: the ", observer_name(obs_opts_.kind), " observer needs its second pass");
  qp_ = observer_->qparams();
  mode = Mode::Fixed;
}

QParams TensorQuantizer::observed_qparams(const Tensor& x) const {
  NoGradGuard ng;
  Observer o(scheme_, obs_opts_);
  const Tensor xd = x.detach();
  o.observe(xd);
  if (o.needs_second_pass()) {
    o.begin_second_pass();
    o.observe(xd);
  }
  return o.qparams();
}

void TensorQuantizer::set_qparams(QParams qp) {
  qp_ = std::move(qp);
  mode = Mode::Fixed;
}

void TensorQuantizer::set_scheme(const QuantScheme& s) {
  s.validate();
  scheme_ = s;
}

const char* mode_name(TensorQuantizer::Mode m) {
  switch (m) {
    case TensorQuantizer::Mode::Off: return "off";
    case TensorQuantizer::Mode::Observe: return "observe";
    case TensorQuantizer::Mode::Fixed: return "fixed";
    case TensorQuantizer::Mode::Dynamic: return "dynamic";
  }
  return "?";
}

}  // namespace dearest::quant
