// One quantized tensor in a model (a layer's weight, or the activation at a layer's input): its
// scheme, observer and qparams, and the mode that says what a forward does with it.
#pragma once
#include <memory>

#include "quant/fake_quant.h"
#include "quant/observer.h"

namespace dearest::quant {

// What a quantizer did to the tensors that went through it while `stats` was set (audit).
struct QuantStats {
  int64_t elements = 0, clamped = 0;
  double signal = 0, noise = 0;  // sum x^2, sum (x̂ - x)^2
  double sqnr_db() const;
};

class TensorQuantizer {
 public:
  enum class Mode {
    Off,      // pass through
    Observe,  // pass through, feeding the observer (calibration)
    Fixed,    // fake-quantize with the frozen qparams
    Dynamic,  // fake-quantize with qparams from this very tensor's min and max (no gradient through them)
  };
  TensorQuantizer(QuantScheme scheme, ObserverOptions obs, Ste ste = Ste::Clipped);

  Tensor operator()(const Tensor& x);
  // qparams from the observer; mode becomes Fixed.
  void freeze();
  void set_qparams(QParams qp);  // mode becomes Fixed
  // The qparams a fresh observer of this quantizer's kind gives for `x` alone (both passes where
  // the kind needs two); the quantizer itself is left as it was.
  QParams observed_qparams(const Tensor& x) const;

  Mode mode = Mode::Off;
  std::shared_ptr<QuantStats> stats;  // when set, every quantizing forward adds to it
  Tensor up_mask;  // u8, the tensor's shape: Mask: round up (1) or down per element; FlipMask: flip (1) or nearest

  const QuantScheme& scheme() const { return scheme_; }
  void set_scheme(const QuantScheme& s);  // e.g. another rounding; keeps the qparams
  const QParams& qparams() const { return qp_; }
  bool has_qparams() const { return qp_.scale.defined(); }
  Observer& observer() { return *observer_; }
  Ste ste() const { return ste_; }
  void set_ste(Ste s) { ste_ = s; }

 private:
  QuantScheme scheme_;
  ObserverOptions obs_opts_;
  std::unique_ptr<Observer> observer_;
  QParams qp_;
  Ste ste_;
};

const char* mode_name(TensorQuantizer::Mode m);

}  // namespace dearest::quant
