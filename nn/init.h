// Parameter initialisation as PyTorch does it, from the project's RNG (values differ from
// PyTorch's generator; the distributions are the same).
#pragma once
#include "tensor/rng.h"
#include "tensor/tensor.h"

namespace dearest::nn {

// The generator every initialiser draws from; set it before building a model for a seeded run.
void set_init_seed(uint64_t seed);
Rng& init_rng();

// torch.nn.Conv2d / Linear reset_parameters: weight ~ U(-b, b) with b = 1/sqrt(fan_in)
// (kaiming_uniform with a = sqrt(5)), bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_init_conv_linear(Tensor& w, Tensor& b);
// kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out), as torchvision's ResNet.
void kaiming_normal_fan_out(Tensor& w);

}  // namespace dearest::nn
