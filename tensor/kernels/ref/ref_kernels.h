// Plain-loop reference kernels: the oracle the fast kernels are tested against, what the f64
// gradient checks differentiate, and what Backend::Reference (the audit mode) runs. Written to be
// read: one loop nest per formula, sums accumulated in double, compiled without FMA contraction.
// All tensors are contiguous NCHW; instantiated for float and double.
#pragma once
#include <cstdint>

#include "tensor/ops/nn_params.h"

namespace dearest::ref {

template <typename T>
void matmul(const T* a, int64_t sa0, int64_t sa1, const T* b, int64_t sb0, int64_t sb1, T* c, int64_t m, int64_t n,
            int64_t k);

struct ConvGeom {
  int64_t N, C, H, W;    // input
  int64_t O, KH, KW;     // weight [O, C/groups, KH, KW]
  int64_t OH, OW;        // output
};
template <typename T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeom& g, const Conv2dParams& p);
template <typename T>
void conv2d_backward_data(const T* gy, const T* w, T* gx, const ConvGeom& g, const Conv2dParams& p);
template <typename T>
void conv2d_backward_weights(const T* gy, const T* x, T* gw, T* gbias, const ConvGeom& g, const Conv2dParams& p);

struct PoolGeom {
  int64_t N, C, H, W, OH, OW;
};
// argmax (optional) receives, per output, the index h*W+w of the chosen input in its plane.
template <typename T>
void max_pool2d_forward(const T* x, T* y, int32_t* argmax, const PoolGeom& g, const Pool2dParams& p);
template <typename T>
void max_pool2d_backward(const T* gy, const int32_t* argmax, T* gx, const PoolGeom& g);
template <typename T> void avg_pool2d_forward(const T* x, T* y, const PoolGeom& g, const Pool2dParams& p);
template <typename T> void avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g, const Pool2dParams& p);
template <typename T> void adaptive_avg_pool2d_forward(const T* x, T* y, const PoolGeom& g);
template <typename T> void adaptive_avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g);

// Batch norm over [N, C, HW]. Training: mean and biased variance of the batch are written out.
// relu: the output is max(0, y) (the fused conv-BN-ReLU block).
template <typename T>
void batch_norm_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, int64_t N, int64_t C,
                        int64_t HW, double eps, bool training, bool relu);
// y (the forward output) is needed only when relu is set, as the mask.
template <typename T>
void batch_norm_backward(const T* gy, const T* x, const T* gamma, const T* mean, const T* var, const T* y, T* gx,
                         T* ggamma, T* gbeta, int64_t N, int64_t C, int64_t HW, double eps, bool training, bool relu);

// Softmax over the middle dim of [outer, n, inner]; log selects log-softmax.
template <typename T> void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);
template <typename T>
void softmax_backward(const T* y, const T* gy, T* gx, int64_t outer, int64_t n, int64_t inner, bool log);

}  // namespace dearest::ref
