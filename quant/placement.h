// Where producer placement (MQBench's rule) puts an activation quantizer: the one rule shared by
// QuantizedModel and the attacks' training-time emulation, so that both quantize the same tensors.
#pragma once
#include <map>
#include <string>

#include "nn/module.h"

namespace dearest::quant {

// The residual block whose input the conv at `conv` reads, where that input has other readers
// (a BasicBlock's conv1, its downsample conv, and the identity path): producer placement puts
// one quantizer on the block's input for all of them. "" for every other conv or linear.
std::string producer_block(const std::map<std::string, nn::Module*>& by_name, const std::string& conv);

}  // namespace dearest::quant
