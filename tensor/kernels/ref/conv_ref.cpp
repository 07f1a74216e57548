// Direct convolution: forward, backward-data and backward-weights as three gathers, so every
// output element is summed by one thread in a fixed order.
#include "tensor/kernels/ref/ref_kernels.h"

namespace dearest::ref {

template <typename T>
void conv2d_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeom& g, const Conv2dParams& p) {
  const int64_t cg = g.C / p.groups, og = g.O / p.groups;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o) {
      const int64_t grp = o / og;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double acc = bias ? double(bias[o]) : 0.0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dil_w;
                if (iw < 0 || iw >= g.W) continue;
                acc += double(x[((n * g.C + grp * cg + c) * g.H + ih) * g.W + iw]) *
                       double(w[((o * cg + c) * g.KH + kh) * g.KW + kw]);
              }
            }
          y[((n * g.O + o) * g.OH + oh) * g.OW + ow] = T(acc);
        }
    }
}

template <typename T>
void conv2d_backward_data(const T* gy, const T* w, T* gx, const ConvGeom& g, const Conv2dParams& p) {
  const int64_t cg = g.C / p.groups, og = g.O / p.groups;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c) {
      const int64_t grp = c / cg, ci = c % cg;
      for (int64_t ih = 0; ih < g.H; ++ih)
        for (int64_t iw = 0; iw < g.W; ++iw) {
          double acc = 0;
          for (int64_t oi = 0; oi < og; ++oi) {
            const int64_t o = grp * og + oi;
            for (int64_t kh = 0; kh < g.KH; ++kh) {
              const int64_t th = ih + p.pad_h - kh * p.dil_h;
              if (th < 0 || th % p.stride_h) continue;
              const int64_t oh = th / p.stride_h;
              if (oh >= g.OH) continue;
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t tw = iw + p.pad_w - kw * p.dil_w;
                if (tw < 0 || tw % p.stride_w) continue;
                const int64_t ow = tw / p.stride_w;
                if (ow >= g.OW) continue;
                acc += double(gy[((n * g.O + o) * g.OH + oh) * g.OW + ow]) *
                       double(w[((o * cg + ci) * g.KH + kh) * g.KW + kw]);
              }
            }
          }
          gx[((n * g.C + c) * g.H + ih) * g.W + iw] = T(acc);
        }
    }
}

template <typename T>
void conv2d_backward_weights(const T* gy, const T* x, T* gw, T* gbias, const ConvGeom& g, const Conv2dParams& p) {
  const int64_t cg = g.C / p.groups, og = g.O / p.groups;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < g.O; ++o) {
    const int64_t grp = o / og;
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          double acc = 0;
          for (int64_t n = 0; n < g.N; ++n)
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t ow = 0; ow < g.OW; ++ow) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dil_w;
                if (iw < 0 || iw >= g.W) continue;
                acc += double(gy[((n * g.O + o) * g.OH + oh) * g.OW + ow]) *
                       double(x[((n * g.C + grp * cg + c) * g.H + ih) * g.W + iw]);
              }
            }
          gw[((o * cg + c) * g.KH + kh) * g.KW + kw] = T(acc);
        }
    if (gbias) {
      double acc = 0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.OH * g.OW; ++i) acc += double(gy[(n * g.O + o) * g.OH * g.OW + i]);
      gbias[o] = T(acc);
    }
  }
}

#define INSTANTIATE(T)                                                                                    \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvGeom&, const Conv2dParams&); \
  template void conv2d_backward_data<T>(const T*, const T*, T*, const ConvGeom&, const Conv2dParams&);     \
  template void conv2d_backward_weights<T>(const T*, const T*, T*, T*, const ConvGeom&, const Conv2dParams&);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace dearest::ref
