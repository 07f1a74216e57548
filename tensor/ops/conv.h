// 2-d convolution (NCHW input, OIHW weight, optional bias): forward and both backward passes, with
// the oneDNN kernel (f32, Backend::Fast) or the reference loops (f64, or Backend::Reference).
#pragma once
#include "tensor/ops/nn_params.h"
#include "tensor/tensor.h"

namespace dearest::raw {

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
// Whether conv2d runs this geometry with Winograd: asked for (--conv winograd) and available on
// this host for it (AVX-512, 3x3 stride 1, 16 or more input channels); never under the reference
// backend. Cost models ask here rather than repeat the kernel's rules.
bool conv2d_runs_winograd(const Shape& x_shape, const Shape& w_shape, bool with_bias, const Conv2dParams& p);
// `x` with its bytes in the layout conv2d's kernel reads for this geometry (plain under the
// reference backend): a loop that convolves the same input many times reorders it once.
Tensor conv2d_input_layout(const Tensor& x, const Shape& w_shape, bool with_bias, const Conv2dParams& p);
Tensor conv2d_backward_data(const Tensor& gy, const Tensor& w, const Shape& x_shape, bool with_bias,
                            const Conv2dParams& p);
struct ConvWeightGrads {
  Tensor w, bias;  // bias undefined when there is none
};
ConvWeightGrads conv2d_backward_weights(const Tensor& gy, const Tensor& x, const Shape& w_shape, bool with_bias,
                                        const Conv2dParams& p);

}  // namespace dearest::raw
