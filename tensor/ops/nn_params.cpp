#include "tensor/ops/nn_params.h"

#include <sstream>

namespace dearest {

std::string Conv2dParams::str() const {
  std::ostringstream os;
  os << "s" << stride_h << "x" << stride_w << " p" << pad_h << "x" << pad_w << " d" << dil_h << "x" << dil_w << " g"
     << groups;
  return os.str();
}

std::string Pool2dParams::str() const {
  std::ostringstream os;
  os << "k" << kernel_h << "x" << kernel_w << " s" << stride_h << "x" << stride_w << " p" << pad_h << "x" << pad_w
     << (ceil_mode ? " ceil" : "") << (count_include_pad ? " incl" : " excl");
  return os.str();
}

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t span = in + 2 * pad - k;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // PyTorch: the last window must start inside the input or the left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

}  // namespace dearest
