#include "quant/tensor_quantizer.h"

#include "autograd/grad_mode.h"
#include "quant/qparams.h"

namespace dearest::quant {

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
      return fake_quantize(x, scheme_, qp_, ste_, up_mask);
    case Mode::Dynamic: {
      QParams qp;
      {
        NoGradGuard ng;
        auto [mn, mx] = tensor_range(scheme_, x.detach());
        qp = qparams_from_range(scheme_, mn, mx);
      }
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
