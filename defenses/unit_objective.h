// L_A of one EFRAP unit and its gradient with respect to the layer's weight, computed without
// the autograd graph: the per-iteration hot path of EFRAP. Three exact ways, chosen per unit:
//
//   gram   for units whose output is affine in the weight (conv -> BN, linear): with
//          P the input patches, E = unit(float W, X_q) - Y and D = W̃ - W, per output channel c
//            L_A = (1/M) sum_c [ a_c^2 D_c^T G D_c + 2 a_c D_c^T R_c + |E_c|^2 ],
//            dL_A/dW̃_c = (2 a_c / M) (a_c G D_c + R_c),     G = P P^T, R = P E^T,
//          a_c the BN scale and M the rows L_A averages over. G and R are computed once per cached
//          batch, so an iteration costs one C x K x K product instead of two convolutions.
//   fused  conv -> (BN) -> (ReLU/ReLU6) -> (activation quantizer): the forward convolution, one
//          pass for the tail, the loss and its gradient, and the backward-weights convolution.
//   graph  anything else (e.g. a VGG unit with max-pooling): the autograd graph of the unit.
// All three compute the same function; they differ in float rounding only (tests compare them).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "defenses/layer_units.h"

namespace dearest::defenses {

class UnitObjective {
 public:
  virtual ~UnitObjective() = default;
  // L_A at weight `w` on cached batch `b`; writes dL_A/dw into `grad` (w's shape, plain f32).
  virtual double value_and_grad(const Tensor& w, size_t b, Tensor& grad) = 0;
  virtual const char* kind() const = 0;
};

enum class ObjectiveKind { Auto, Gram, Fused, Graph };
ObjectiveKind parse_objective_kind(const std::string& s);

// `inputs` / `targets`: the unit's cached quantized inputs and float targets per batch;
// `w_float`: the layer's float weight (the gram form expands around it). Auto picks gram when the
// unit is affine and the Gram matrices are cheaper than the convolutions and fit in
// `gram_budget_bytes`, else fused when the tail allows, else graph. Asking for a form the unit
// does not allow is an error.
std::unique_ptr<UnitObjective> make_unit_objective(const LayerUnit& u, const std::vector<Tensor>& inputs,
                                                   const std::vector<Tensor>& targets, const Tensor& w_float,
                                                   ObjectiveKind kind = ObjectiveKind::Auto,
                                                   int64_t gram_budget_bytes = int64_t(3) << 30);

}  // namespace dearest::defenses
