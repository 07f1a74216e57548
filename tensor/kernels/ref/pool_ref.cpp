// Max, average and adaptive-average pooling over NCHW planes, with PyTorch's window rules.
#include <cmath>
#include <limits>

#include "tensor/kernels/ref/ref_kernels.h"

namespace dearest::ref {

template <typename T>
void max_pool2d_forward(const T* x, T* y, int32_t* argmax, const PoolGeom& g, const Pool2dParams& p) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        // PyTorch's rule: padding is -infinity, a later element wins only if strictly greater or
        // NaN; an all -infinity window points at its first valid element.
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_i = -1, first = -1;
        for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
          const int64_t ih = oh * p.stride_h - p.pad_h + kh;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
            const int64_t iw = ow * p.stride_w - p.pad_w + kw;
            if (iw < 0 || iw >= g.W) continue;
            const T v = xp[ih * g.W + iw];
            if (first < 0) first = ih * g.W + iw;
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = ih * g.W + iw;
            }
          }
        }
        if (best_i < 0) best_i = first;
        y[(plane * g.OH + oh) * g.OW + ow] = best;
        if (argmax) argmax[(plane * g.OH + oh) * g.OW + ow] = static_cast<int32_t>(best_i);
      }
  }
}

template <typename T> void max_pool2d_backward(const T* gy, const int32_t* argmax, T* gx, const PoolGeom& g) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    T* gp = gx + plane * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) gp[i] = T(0);
    for (int64_t o = 0; o < g.OH * g.OW; ++o) {
      const int32_t a = argmax[plane * g.OH * g.OW + o];
      if (a >= 0) gp[a] += gy[plane * g.OH * g.OW + o];  // overlapping windows add in output order
    }
  }
}

namespace {
struct Window {
  int64_t h0, h1, w0, w1;  // clamped to the input
  int64_t divisor;
};
Window avg_window(int64_t oh, int64_t ow, const PoolGeom& g, const Pool2dParams& p) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = std::min(h0 + p.kernel_h, g.H + p.pad_h), w1 = std::min(w0 + p.kernel_w, g.W + p.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H);
  w1 = std::min(w1, g.W);
  return {h0, h1, w0, w1, p.count_include_pad ? padded_size : (h1 - h0) * (w1 - w0)};
}
}  // namespace

template <typename T> void avg_pool2d_forward(const T* x, T* y, const PoolGeom& g, const Pool2dParams& p) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        Window win = avg_window(oh, ow, g, p);
        double acc = 0;
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) acc += double(xp[ih * g.W + iw]);
        y[(plane * g.OH + oh) * g.OW + ow] = win.divisor > 0 ? T(acc / double(win.divisor)) : T(0);
      }
  }
}

template <typename T> void avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g, const Pool2dParams& p) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    T* gp = gx + plane * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) gp[i] = T(0);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        Window win = avg_window(oh, ow, g, p);
        if (win.divisor <= 0) continue;
        const T v = T(double(gy[(plane * g.OH + oh) * g.OW + ow]) / double(win.divisor));
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) gp[ih * g.W + iw] += v;
      }
  }
}

namespace {
// PyTorch's adaptive windows: [floor(o*in/out), ceil((o+1)*in/out)).
inline int64_t a_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t a_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }
}  // namespace

template <typename T> void adaptive_avg_pool2d_forward(const T* x, T* y, const PoolGeom& g) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t h0 = a_start(oh, g.H, g.OH), h1 = a_end(oh, g.H, g.OH);
        const int64_t w0 = a_start(ow, g.W, g.OW), w1 = a_end(ow, g.W, g.OW);
        double acc = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) acc += double(xp[ih * g.W + iw]);
        y[(plane * g.OH + oh) * g.OW + ow] = T(acc / double((h1 - h0) * (w1 - w0)));
      }
  }
}

template <typename T> void adaptive_avg_pool2d_backward(const T* gy, T* gx, const PoolGeom& g) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    T* gp = gx + plane * g.H * g.W;
    for (int64_t i = 0; i < g.H * g.W; ++i) gp[i] = T(0);
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t h0 = a_start(oh, g.H, g.OH), h1 = a_end(oh, g.H, g.OH);
        const int64_t w0 = a_start(ow, g.W, g.OW), w1 = a_end(ow, g.W, g.OW);
        const T v = T(double(gy[(plane * g.OH + oh) * g.OW + ow]) / double((h1 - h0) * (w1 - w0)));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) gp[ih * g.W + iw] += v;
      }
  }
}

#define INSTANTIATE(T)                                                                                  \
  template void max_pool2d_forward<T>(const T*, T*, int32_t*, const PoolGeom&, const Pool2dParams&);    \
  template void max_pool2d_backward<T>(const T*, const int32_t*, T*, const PoolGeom&);                  \
  template void avg_pool2d_forward<T>(const T*, T*, const PoolGeom&, const Pool2dParams&);              \
  template void avg_pool2d_backward<T>(const T*, T*, const PoolGeom&, const Pool2dParams&);             \
  template void adaptive_avg_pool2d_forward<T>(const T*, T*, const PoolGeom&);                          \
  template void adaptive_avg_pool2d_backward<T>(const T*, T*, const PoolGeom&);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace dearest::ref
