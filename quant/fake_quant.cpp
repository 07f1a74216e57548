#include "quant/fake_quant.h"

#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "quant/channels.h"
#include "quant/element.h"
#include "tensor/ops/elementwise.h"

namespace dearest::quant {

namespace {

void check_inputs(const Tensor& x, const QuantScheme& s, const QParams& qp, const Tensor& up, ChannelView& v) {
  s.validate();
  DEAREST_CHECK(is_floating(x.dtype()), "fake_quantize: expected a floating tensor, got ", x.describe());
  v = channel_view(s, x.shape());
  DEAREST_CHECK(qp.scale.defined() && qp.zero_point.defined() && qp.scale.dtype() == DType::F32 &&
                    qp.zero_point.dtype() == DType::I32,
                "fake_quantize: qparams must be f32 scale and i32 zero point");
  DEAREST_CHECK(qp.scale.numel() == v.C && qp.zero_point.numel() == v.C, "fake_quantize: ", v.C,
                s.per_channel ? " channels" : " tensor", " but qparams for ", qp.scale.numel(), " (tensor ",
                x.describe(), ", axis ", s.axis, ")");
  if (s.form == ScaleForm::DivideFloatZero)
    DEAREST_CHECK(qp.zero_float.defined() && qp.zero_float.numel() == v.C && qp.zero_float.dtype() == DType::F32,
                  "fake_quantize: the x/s+zf form needs an f32 float zero point per channel");
  if (uses_mask(s.rounding)) {
    DEAREST_CHECK(up.defined() && up.shape() == x.shape() && up.dtype() == DType::U8,
                  "fake_quantize: ", rounding_name(s.rounding), " rounding needs a u8 mask of shape ", shape_str(x.shape()), ", got ",
                  up.defined() ? up.describe() : std::string("none"));
  }
}

}  // namespace

namespace {

// One contiguous run of elements sharing a channel's qparams. Form and rounding are template
// arguments so the per-element switches fold away; the arithmetic is element.h's, bit for bit.
struct Span {
  const float* x;
  float* y;
  int32_t* q;         // may be null
  uint8_t* in_range;  // may be null
  const uint8_t* up;  // mask rounding only
  int64_t n;
  float sc, inv, zf;
  int32_t z;
};

template <ScaleForm F, Rounding R>
void fake_quantize_span(const Span& s, bool clamp, int64_t qmin, int64_t qmax) {
  for (int64_t k = 0; k < s.n; ++k) {
    const float val = scaled_element(F, s.x[k], s.sc, s.inv, s.z, s.zf);
    const int64_t unclamped = unclamped_integer(F, round_element(R, val, uses_mask(R) ? s.up[k] : 0), s.z);
    const int64_t q = clamp ? std::min(std::max(unclamped, qmin), qmax) : unclamped;
    if (s.in_range) s.in_range[k] = uint8_t(!clamp || (unclamped >= qmin && unclamped <= qmax));
    if (s.q) s.q[k] = int32_t(q);
    s.y[k] = dequantize_element(F, q, s.sc, s.z);
  }
}

// The same round trip for the common case (a clamping scheme, a nearest-type rounding, no
// integers wanted) in float arithmetic only, which the compiler vectorizes: the loop above is
// scalar (int64 conversions, a division per element) and was 13% of a Qu-ANTI-zation attack step.
// Bit for bit the same results: rounded values are whole floats, the clamp bounds and the zero
// point (|z| < 2^23, checked by the caller) are exact in float, so (r + z), the clamp and
// (q -/+ z) lose nothing where the integer path's value is in range, and every value the clamp
// moves lands on the same bound. Where the integer conversion is undefined (NaN, |r| >= 2^63) the
// integer path gives INT64_MIN, clamped to qmin and out of range: so does this one.
template <ScaleForm F, Rounding R, bool kMask>
void fake_quantize_span_float(const Span& s, float qminf, float qmaxf) {
  // Locals, not the span's fields: a store through the u8 mask may alias anything, and re-reading
  // n and z after every store keeps the loop scalar.
  const int64_t n = s.n;
  const int32_t z = s.z;
  const float zi = float(z), sc = s.sc, inv = s.inv, zf = s.zf;
  const float* __restrict x = s.x;
  float* __restrict y = s.y;
  uint8_t* __restrict m = s.in_range;
  constexpr float kInt64Limit = 9223372036854775808.0f;  // 2^63
  for (int64_t k = 0; k < n; ++k) {
    const float r = round_element(R, scaled_element(F, x[k], sc, inv, z, zf), 0);
    const float u = (F == ScaleForm::MulScale || F == ScaleForm::DivideFloatZero) ? r : r + zi;
    const bool convertible = std::fabs(r) < kInt64Limit;
    // + 0.0f: a rounded -0.0 is the integer 0, whose float is +0.0
    const float q = (convertible ? std::min(std::max(u, qminf), qmaxf) : qminf) + 0.0f;
    if constexpr (kMask) m[k] = uint8_t(convertible & (u >= qminf) & (u <= qmaxf));
    y[k] = F == ScaleForm::MulScale ? (q + zi) / sc : (q - zi) * sc;
  }
}

using FloatSpanKernel = void (*)(const Span&, float, float);

template <ScaleForm F, Rounding R>
FloatSpanKernel float_span_kernel(bool mask) {
  return mask ? fake_quantize_span_float<F, R, true> : fake_quantize_span_float<F, R, false>;
}

template <ScaleForm F>
FloatSpanKernel float_span_kernel(Rounding r, bool mask) {
  switch (r) {
    case Rounding::HalfEven: return float_span_kernel<F, Rounding::HalfEven>(mask);
    case Rounding::HalfUp: return float_span_kernel<F, Rounding::HalfUp>(mask);
    case Rounding::Floor: return float_span_kernel<F, Rounding::Floor>(mask);
    case Rounding::Ceil: return float_span_kernel<F, Rounding::Ceil>(mask);
    default: return nullptr;  // std::round and the flipped roundings do not vectorize: the loop above
  }
}

// The float-only kernel for this call, or null when the integer loop must run.
FloatSpanKernel float_span_kernel(const QuantScheme& s, bool want_q, bool want_mask) {
  if (want_q || !s.clamp || std::max(std::abs(s.qmin), std::abs(s.qmax)) >= (int64_t(1) << 23)) return nullptr;
  switch (s.form) {
    case ScaleForm::MulInverse: return float_span_kernel<ScaleForm::MulInverse>(s.rounding, want_mask);
    case ScaleForm::Divide: return float_span_kernel<ScaleForm::Divide>(s.rounding, want_mask);
    case ScaleForm::MulScale: return float_span_kernel<ScaleForm::MulScale>(s.rounding, want_mask);
    case ScaleForm::DivideFloatZero: return float_span_kernel<ScaleForm::DivideFloatZero>(s.rounding, want_mask);
  }
  return nullptr;
}

using SpanKernel = void (*)(const Span&, bool, int64_t, int64_t);

template <ScaleForm F>
SpanKernel span_kernel(Rounding r) {
  switch (r) {
    case Rounding::HalfEven: return fake_quantize_span<F, Rounding::HalfEven>;
    case Rounding::HalfUp: return fake_quantize_span<F, Rounding::HalfUp>;
    case Rounding::HalfAway: return fake_quantize_span<F, Rounding::HalfAway>;
    case Rounding::Floor: return fake_quantize_span<F, Rounding::Floor>;
    case Rounding::Ceil: return fake_quantize_span<F, Rounding::Ceil>;
    case Rounding::Flipped: return fake_quantize_span<F, Rounding::Flipped>;
    case Rounding::Mask: return fake_quantize_span<F, Rounding::Mask>;
    case Rounding::FlipMask: return fake_quantize_span<F, Rounding::FlipMask>;
  }
  fail("fake_quantize: unknown rounding");
}

SpanKernel span_kernel(ScaleForm f, Rounding r) {
  switch (f) {
    case ScaleForm::MulInverse: return span_kernel<ScaleForm::MulInverse>(r);
    case ScaleForm::Divide: return span_kernel<ScaleForm::Divide>(r);
    case ScaleForm::MulScale: return span_kernel<ScaleForm::MulScale>(r);
    case ScaleForm::DivideFloatZero: return span_kernel<ScaleForm::DivideFloatZero>(r);
  }
  fail("fake_quantize: unknown scale form");
}

}  // namespace

FakeQuantResult fake_quantize_raw(const Tensor& x_in, const QuantScheme& s, const QParams& qp, const Tensor& up_in,
                                  bool want_q, bool want_mask) {
  // A blocked tensor under a per-tensor scheme: quantized in its own byte order, the result in the
  // same layout (no reorder to plain and back). Integers and masks stay plain-only: their element
  // order must be the logical one.
  if (!want_q && !want_mask && !uses_mask(s.rounding)) {
    const Tensor bytes = per_tensor_bytes(s, x_in);
    if (bytes.defined()) {
      FakeQuantResult r = fake_quantize_raw(bytes, s, qp, up_in, false, false);
      r.y = Tensor::wrap(r.y.storage(), x_in.shape(), DType::F32, x_in.blocked_layout());
      return r;
    }
  }
  ChannelView v;
  check_inputs(x_in, s, qp, up_in, v);
  const bool f64 = x_in.dtype() == DType::F64;
  Tensor x = x_in.plain().contiguous().to(DType::F32);
  Tensor up = uses_mask(s.rounding) ? up_in.contiguous() : Tensor();
  FakeQuantResult r;
  r.y = Tensor::empty(x.shape(), DType::F32);
  if (want_q) r.q = Tensor::empty(x.shape(), DType::I32);
  if (want_mask) r.in_range = Tensor::empty(x.shape(), DType::U8);
  const float* xs = x.data<float>();
  float* ys = r.y.data<float>();
  int32_t* qs = want_q ? r.q.data<int32_t>() : nullptr;
  uint8_t* ms = want_mask ? r.in_range.data<uint8_t>() : nullptr;
  const uint8_t* us = up.defined() ? up.data<uint8_t>() : nullptr;
  const float* scs = qp.scale.contiguous().data<float>();
  const int32_t* zps = qp.zero_point.contiguous().data<int32_t>();
  const float* zfs = s.form == ScaleForm::DivideFloatZero ? qp.zero_float.contiguous().data<float>() : nullptr;
  const int64_t rows = v.outer * v.C, inner = v.inner;
  const SpanKernel kernel = span_kernel(s.form, s.rounding);
  const FloatSpanKernel float_kernel = float_span_kernel(s, want_q, want_mask);
  const float qminf = float(s.qmin), qmaxf = float(s.qmax);
  // Work items are (row, chunk): a per-tensor activation is one row of millions of elements and
  // must still spread over the threads; a per-channel weight is many short rows.
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = std::max<int64_t>(1, (inner + kChunk - 1) / kChunk), items = rows * chunks;
  const bool clamp = s.clamp;
  const int64_t qmin = s.qmin, qmax = s.qmax;
#pragma omp parallel for schedule(static) if (rows * inner > 65536)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t row = it / chunks, begin = (it % chunks) * kChunk;
    const int64_t c = row % v.C, k = row * inner + begin;
    Span sp;
    sp.x = xs + k;
    sp.y = ys + k;
    sp.q = qs ? qs + k : nullptr;
    sp.in_range = ms ? ms + k : nullptr;
    sp.up = us ? us + k : nullptr;
    sp.n = std::min(kChunk, inner - begin);
    sp.sc = scs[c];
    sp.inv = 1.0f / sp.sc;
    sp.z = zps[c];
    sp.zf = zfs ? zfs[c] : 0.0f;
    if (float_kernel && std::abs(int64_t(sp.z)) < (int64_t(1) << 23)) float_kernel(sp, qminf, qmaxf);
    else kernel(sp, clamp, qmin, qmax);
  }
  if (f64) r.y = r.y.to(DType::F64);
  return r;
}

SpanFakeQuantizer::SpanFakeQuantizer(const QuantScheme& s, const QParams& qp, bool want_mask) {
  s.validate();
  DEAREST_CHECK(!s.per_channel && !uses_mask(s.rounding), "SpanFakeQuantizer: needs a per-tensor scheme without mask rounding");
  DEAREST_CHECK(qp.scale.numel() == 1 && qp.zero_point.numel() == 1 && qp.scale.dtype() == DType::F32 &&
                    qp.zero_point.dtype() == DType::I32,
                "SpanFakeQuantizer: needs one f32 scale and one i32 zero point");
  Span base{};
  base.sc = qp.scale.contiguous().data<float>()[0];
  base.inv = 1.0f / base.sc;
  base.z = qp.zero_point.contiguous().data<int32_t>()[0];
  if (s.form == ScaleForm::DivideFloatZero) {
    DEAREST_CHECK(qp.zero_float.defined() && qp.zero_float.numel() == 1, "SpanFakeQuantizer: the x/s+zf form needs a float zero point");
    base.zf = qp.zero_float.contiguous().data<float>()[0];
  }
  // The same choice of kernel as fake_quantize_raw makes for every span.
  const FloatSpanKernel fk = float_span_kernel(s, false, want_mask);
  const SpanKernel ik = span_kernel(s.form, s.rounding);
  const float qminf = float(s.qmin), qmaxf = float(s.qmax);
  const bool use_float = fk && std::abs(int64_t(base.z)) < (int64_t(1) << 23);
  const bool clamp = s.clamp;
  const int64_t qmin = s.qmin, qmax = s.qmax;
  run_ = [=](const float* x, float* y, uint8_t* in_range, int64_t n) {
    Span sp = base;
    sp.x = x;
    sp.y = y;
    sp.in_range = want_mask ? in_range : nullptr;
    sp.n = n;
    if (use_float) fk(sp, qminf, qmaxf);
    else ik(sp, clamp, qmin, qmax);
  };
}

Tensor fake_quantize(const Tensor& x, const QuantScheme& s, const QParams& qp, Ste ste, const Tensor& up) {
  const bool need = grad_enabled() && x.requires_grad();
  FakeQuantResult r = fake_quantize_raw(x, s, qp, up, false, need && ste == Ste::Clipped);
  if (!need) return r.y;
  const DType dt = x.dtype();
  return record("fake_quantize", r.y, {x}, [m = SavedTensor(r.in_range), ste, dt](const Tensor& g) {
    if (ste == Ste::Plain) return std::vector<Tensor>{g};  // in whatever layout it came
    Tensor gp = g.plain();
    return std::vector<Tensor>{raw::binary(raw::Binary::Mul, gp, m.get().to(dt))};
  });
}

Tensor quantize_bias(const Tensor& bias, const Tensor& step, Rounding r) {
  Tensor b = bias.detach().plain().contiguous().to(DType::F32), s = step.contiguous();
  DEAREST_CHECK(b.dim() == 1 && s.dtype() == DType::F32 && s.numel() == b.numel(), "quantize_bias: bias ", b.describe(),
                " and steps ", s.describe(), " must be 1-d of the same length");
  Tensor out = Tensor::empty(b.shape(), DType::F32);
  for (int64_t c = 0; c < b.numel(); ++c) {
    const float st = s.data<float>()[c];
    out.data<float>()[c] = round_element(r, b.data<float>()[c] / st, 0) * st;
  }
  if (bias.dtype() == DType::F64) out = out.to(DType::F64);
  if (!(grad_enabled() && bias.requires_grad())) return out;
  return record("quantize_bias", out, {bias}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor scaled_value(const Tensor& x_in, const QuantScheme& s, const QParams& qp) {
  ChannelView v;
  QuantScheme nearest = s;
  nearest.rounding = Rounding::HalfEven;
  check_inputs(x_in, nearest, qp, Tensor(), v);
  Tensor x = x_in.plain().contiguous().to(DType::F32);
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* xs = x.data<float>();
  float* o = out.data<float>();
  const float* scs = qp.scale.contiguous().data<float>();
  const int32_t* zps = qp.zero_point.contiguous().data<int32_t>();
  const float* zfs = s.form == ScaleForm::DivideFloatZero ? qp.zero_float.contiguous().data<float>() : nullptr;
  for (int64_t row = 0; row < v.outer * v.C; ++row) {
    const int64_t c = row % v.C;
    const float inv = 1.0f / scs[c];
    for (int64_t i = 0; i < v.inner; ++i)
      o[row * v.inner + i] = scaled_element(s.form, xs[row * v.inner + i], scs[c], inv, zps[c], zfs ? zfs[c] : 0.0f);
  }
  return out;
}

}  // namespace dearest::quant
