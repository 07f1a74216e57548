#include "nn/init.h"

#include <cmath>

namespace dearest::nn {

namespace {
Rng& rng_ref() {
  static Rng r(0, 0x1717);
  return r;
}
int64_t fan_in(const Tensor& w) { return w.numel() / w.size(0); }
}  // namespace

void set_init_seed(uint64_t seed) { rng_ref() = Rng(seed, 0x1717); }
Rng& init_rng() { return rng_ref(); }

void default_init_conv_linear(Tensor& w, Tensor& b) {
  const double bound = 1.0 / std::sqrt(double(fan_in(w)));
  w.copy_(init_rng().uniform(w.shape(), -bound, bound, w.dtype()));
  if (b.defined()) b.copy_(init_rng().uniform(b.shape(), -bound, bound, b.dtype()));
}

void kaiming_normal_fan_out(Tensor& w) {
  const int64_t fan_out = w.size(0) * (w.numel() / (w.size(0) * w.size(1)));
  w.copy_(init_rng().normal(w.shape(), 0, std::sqrt(2.0 / double(fan_out)), w.dtype()));
}

}  // namespace dearest::nn
