// The audit: what quantization did, layer by layer. Weights: bits, scale and zero point, range,
// clamping, rounding direction, flips against nearest rounding, error and SQNR. Activations:
// their qparams and, over given batches, clamping and SQNR.
#pragma once
#include <string>
#include <vector>

#include "quant/integer_model.h"
#include "quant/quantized_model.h"
#include "tensor/json.h"

namespace dearest::quant {

struct WeightAudit {
  std::string name, kind, scheme;
  int bits = 0;
  int64_t elements = 0, channels = 0;
  double scale_min = 0, scale_max = 0, zero_point_min = 0, zero_point_max = 0;
  double w_min = 0, w_max = 0;            // the float weights' range
  double clamped = 0;                     // fraction of weights outside the integer range
  double rounded_up = 0;                  // fraction whose integer is above v (x/s): rounded up
  double flipped = 0;                     // fraction whose integer differs from half-even nearest
  double mean_abs_err = 0, max_abs_err = 0;  // |ŵ - w|
  double mean_err_steps = 0;              // |ŵ - w| / step, averaged
  double sqnr_db = 0;
};

struct ActivationAudit {
  std::string name, scheme, mode;
  int bits = 0;
  double scale = 0, zero_point = 0, lo = 0, hi = 0;  // representable range [lo, hi] (fixed qparams)
  QuantStats seen;                                   // over the audited batches
};

std::vector<WeightAudit> audit_weights(QuantizedModel& q);
std::vector<ActivationAudit> audit_activations(QuantizedModel& q, const std::vector<Tensor>& batches);

// The integer-only model against the emulation on the same images.
struct IntegerPoint {
  std::string name;
  int64_t elements = 0, differ = 0, max_steps = 0;
};
struct IntegerComparison {
  std::string requant;
  int64_t images = 0, top1_agree = 0;
  double max_logit_diff = 0, max_logit = 0;
  std::vector<IntegerPoint> points;  // per quantization point, summed over the images
  double agreement() const { return images ? double(top1_agree) / double(images) : 0; }
};
IntegerComparison compare_integer(QuantizedModel& q, const std::vector<Tensor>& batches, Requant requant = Requant::Gemmlowp);
Json to_json(const IntegerComparison& c);
std::string integer_table(const IntegerComparison& c);

Json to_json(const WeightAudit& a);
Json to_json(const ActivationAudit& a);
std::string weight_table(const std::vector<WeightAudit>& v);
std::string activation_table(const std::vector<ActivationAudit>& v);

}  // namespace dearest::quant
