// Geometry of convolutions and poolings over NCHW tensors, shared by the reference and oneDNN kernels.
#pragma once
#include <cstdint>
#include <string>

namespace dearest {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  std::string str() const;
};

struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg-pool divisor (PyTorch's default is true)
  std::string str() const;
};

// Output extent of a convolution / pooling window sweep (PyTorch's formulas, ceil_mode included).
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil);
int64_t pool_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode);

}  // namespace dearest
