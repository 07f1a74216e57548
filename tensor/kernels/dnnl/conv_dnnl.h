// oneDNN convolution (f32): direct algorithm, layouts chosen by oneDNN (format_tag::any), the
// forward descriptor as the hint for both backward passes, descriptors and primitives cached per
// geometry. Inputs may be plain or blocked; weights are plain OIHW (the master copy the optimizer
// and the quantizers see) and reordered to the layout each pass wants; weight gradients come back
// plain.
#pragma once
#include "tensor/ops/nn_params.h"
#include "tensor/tensor.h"

namespace dearest::dnnlk {

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
Tensor conv2d_backward_data(const Tensor& gy, const Tensor& w, const Shape& x_shape, bool with_bias,
                            const Conv2dParams& p);
// Whether the forward pass of this convolution runs Winograd (asked for and available here).
bool conv2d_runs_winograd(const Shape& x_shape, const Shape& w_shape, bool with_bias, const Conv2dParams& p);
// `x` in the layout the forward pass of this convolution reads.
Tensor conv2d_input_layout(const Tensor& x, const Shape& w_shape, bool with_bias, const Conv2dParams& p);
// gbias is left undefined when with_bias is false.
void conv2d_backward_weights(const Tensor& gy, const Tensor& x, const Shape& w_shape, bool with_bias,
                             const Conv2dParams& p, Tensor& gw, Tensor& gbias);

}  // namespace dearest::dnnlk
