// Figures of a finished run, drawn from its summary.json: the attack's curve (CDA and ASR of the
// float model and of each epoch quantizer, epoch by epoch, over every stage).
#pragma once
#include <string>

#include "tensor/json.h"

namespace dearest::cli {

// From dearest attack's summary (fractions); epoch 0 is the start model when it was judged.
void write_attack_curve(const Json& summary, const std::string& svg);

}  // namespace dearest::cli
