#include "quant/integer_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "quant/element.h"
#include "quant/fake_quant.h"

namespace dearest::quant {

namespace {

// x * real in fixed point with 48 fractional bits, then one rounding shift with tie rule r.
int64_t scale_round(int64_t x, double real, Rounding r) {
  constexpr int kBits = 48;
  const __int128 m = __int128(std::llround(std::ldexp(real, kBits)));
  const __int128 p = __int128(x) * m;
  __int128 q = p >> kBits;  // floor
  const __int128 rem = p - (q << kBits), half = __int128(1) << (kBits - 1);
  if (rem > half) ++q;
  else if (rem == half) {
    if (r == Rounding::HalfAway) q += p > 0 ? 1 : 0;
    else if (r == Rounding::HalfEven) q += (q & 1) ? 1 : 0;
    else q += 1;  // half up
  }
  return int64_t(q);
}

float step_of(const TensorQuantizer& t) { return t.qparams().scale.data<float>()[0]; }
int32_t zero_of(const TensorQuantizer& t) { return t.qparams().zero_point.data<int32_t>()[0]; }

}  // namespace

std::string IntegerModel::unsupported_reason(QuantizedModel& q) {
  const QuantConfig& c = q.config();
  const std::string arch = q.spec().arch;
  if (arch != "resnet18" && arch.rfind("vgg16", 0) != 0) return "only ResNet-18 and VGG-16 models";
  for (auto& [n, m] : q.model().named_modules())
    if (m->type() == "BatchNorm2d" && !static_cast<nn::BatchNorm2d*>(m)->folded)
      return "batch norm must be folded (presets tflite-int8, pytorch-fbgemm, pytorch-qnnpack)";
  if (c.a_bits == 0) return "activations must be quantized";
  if (c.dynamic_acts || c.dynamic_weights) return "ranges must be static, not per batch";
  if (c.placement != Placement::Producer) return "activation quantizers must sit at the producers";
  if (arch == "resnet18" && !c.quantize_add_inputs) return "both inputs of each residual add must be quantized";
  if (!c.layers.empty() || !c.skip.empty()) return "every conv and linear layer must be quantized";
  for (auto& l : q.layers()) {
    if (!l.weight->has_qparams()) return l.name + " is not calibrated";
    const auto& z = l.weight->qparams().zero_point;
    for (int64_t i = 0; i < z.numel(); ++i)
      if (z.data<int32_t>()[i] != 0) return l.name + ": weights must be symmetric (zero point 0)";
    if (l.weight->scheme().form == ScaleForm::MulScale) return l.name + ": multiplicative scales are not supported";
  }
  for (auto& a : q.activation_quantizers())
    if (a.q->scheme().per_channel || a.q->scheme().form == ScaleForm::MulScale || !a.q->has_qparams())
      return a.name + ": activations must be per-tensor with a calibrated step";
  return "";
}

IntegerModel::IntegerModel(QuantizedModel& q, bool reference, Requant requant)
    : q_(q), reference_(reference), requant_(requant) {
  const std::string why = unsupported_reason(q);
  DEAREST_CHECK(why.empty(), "integer model: ", q.spec().str(), " (", q.config().preset, "): ", why);
  for (auto& l : q.layers()) {
    Layer L;
    L.ql = &l;
    L.w = q.integer_weight(l);
    const int64_t O = L.w.size(0);
    L.wscale = Tensor::empty({O}, DType::F32);
    const auto& qp = l.weight->qparams();
    for (int64_t o = 0; o < O; ++o) L.wscale.data<float>()[o] = qp.scale.data<float>()[qp.channels() == 1 ? 0 : o];
    if (l.is_conv) {
      auto* c = static_cast<nn::Conv2d*>(l.module);
      if (c->has_bias()) L.bias = c->bias().detach().contiguous().clone();
    } else {
      auto* li = static_cast<nn::Linear*>(l.module);
      if (li->has_bias()) {
        for (auto& [k, t] : li->state_dict())
          if (k == "bias") L.bias = t.detach().contiguous().clone();
      }
    }
    layers_[l.name] = L;
  }
  for (auto& a : q.activation_quantizers()) acts_[a.name] = a.q.get();
}

const TensorQuantizer& IntegerModel::act_quantizer(const std::string& name) const {
  auto it = acts_.find(name);
  DEAREST_CHECK(it != acts_.end(), "integer model: no activation quantizer ", name);
  return *it->second;
}

IntegerModel::Act IntegerModel::quantize_input(const Tensor& x) {
  const QuantLayer& first = q_.layers().front();
  const TensorQuantizer& in = *first.input;
  Tensor q = fake_quantize_raw(x, in.scheme(), in.qparams(), {}, true).q;
  if (trace) trace(first.input_name, q);
  return {q, step_of(in), zero_of(in)};
}

Tensor IntegerModel::accumulate(const Layer& l, const Act& in) const {
  // The int32 bias at scale s_in * s_w[c], rounded half away from zero as TFLite's converter does.
  Tensor bq;
  const int64_t O = l.w.size(0);
  if (l.bias.defined()) {
    bq = Tensor::empty({O}, DType::I32);
    for (int64_t o = 0; o < O; ++o) {
      const float s = in.scale * l.wscale.data<float>()[o];
      bq.data<int32_t>()[o] = int32_t(round_element(l.ql->weight->scheme().rounding, l.bias.data<float>()[o] / s, 0));
    }
  }
  if (l.ql->is_conv)
    return int_conv2d(in.q, in.zero, l.w, bq, static_cast<nn::Conv2d*>(l.ql->module)->params, reference_);
  Tensor x = in.q.dim() == 2 ? in.q : in.q.reshape({in.q.size(0), -1});
  return int_linear(x, in.zero, l.w, bq, reference_);
}

int64_t IntegerModel::rescale(int32_t x, double real, const FixedMultiplier& m, Rounding tie) const {
  return requant_ == Requant::Gemmlowp ? int64_t(multiply_by_quantized_multiplier(x, m)) : scale_round(x, real, tie);
}

IntegerModel::Act IntegerModel::requantize(const Tensor& acc, const Layer& l, float in_scale, const TensorQuantizer& out,
                                           bool relu, bool relu6) const {
  const float so = step_of(out);
  const int32_t zo = zero_of(out);
  const auto& s = out.scheme();
  int64_t lo = s.qmin, hi = s.qmax;
  if (relu || relu6) lo = std::max<int64_t>(lo, zo);
  if (relu6) hi = std::min<int64_t>(hi, zo + int64_t(std::round(6.0f / so)));
  const int64_t O = acc.size(1), inner = acc.numel() / (acc.size(0) * O);
  std::vector<FixedMultiplier> m(static_cast<size_t>(O));
  std::vector<double> real(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    real[size_t(o)] = double(in_scale) * double(l.wscale.data<float>()[o]) / double(so);
    m[size_t(o)] = quantize_multiplier(real[size_t(o)]);
  }
  Tensor r = Tensor::empty(acc.shape(), DType::I32);
  const int32_t* a = acc.data<int32_t>();
  int32_t* d = r.data<int32_t>();
  const Rounding tie = s.rounding;
  for (int64_t i = 0; i < acc.numel(); ++i) {
    const int64_t o = (i / inner) % O;
    const int64_t v = rescale(a[i], real[size_t(o)], m[size_t(o)], tie) + zo;
    d[i] = int32_t(std::min(std::max(v, lo), hi));
  }
  return {r, so, zo};
}

IntegerModel::Act IntegerModel::add(const Act& a, const Act& b, const TensorQuantizer& out, bool relu) const {
  // TFLite's int8 Add: both inputs to a common scale with 20 bits of headroom, then to the output.
  const int left = 20;
  const double twice_max = 2.0 * std::max(double(a.scale), double(b.scale));
  const float so = step_of(out);
  const int32_t zo = zero_of(out);
  const FixedMultiplier ma = quantize_multiplier(double(a.scale) / twice_max);
  const FixedMultiplier mb = quantize_multiplier(double(b.scale) / twice_max);
  const FixedMultiplier mo = quantize_multiplier(twice_max / (double(int64_t(1) << left) * double(so)));
  const auto& s = out.scheme();
  const int64_t lo = relu ? std::max<int64_t>(s.qmin, zo) : s.qmin, hi = s.qmax;
  DEAREST_CHECK(a.q.shape() == b.q.shape(), "integer add: shapes ", shape_str(a.q.shape()), " and ", shape_str(b.q.shape()));
  Tensor r = Tensor::empty(a.q.shape(), DType::I32);
  const int32_t* x = a.q.data<int32_t>();
  const int32_t* y = b.q.data<int32_t>();
  int32_t* d = r.data<int32_t>();
  // Single rounding: (qa - za) * sa/so + (qb - zb) * sb/so on a common 48-bit grid, rounded once.
  const int64_t A = std::llround(std::ldexp(double(a.scale) / double(so), 40));
  const int64_t B = std::llround(std::ldexp(double(b.scale) / double(so), 40));
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t v;
    if (requant_ == Requant::Gemmlowp) {
      const int32_t sa = multiply_by_quantized_multiplier((x[i] - a.zero) * (1 << left), ma);
      const int32_t sb = multiply_by_quantized_multiplier((y[i] - b.zero) * (1 << left), mb);
      v = int64_t(multiply_by_quantized_multiplier(sa + sb, mo)) + zo;
    } else {
      v = scale_round(int64_t(x[i] - a.zero) * A + int64_t(y[i] - b.zero) * B, std::ldexp(1.0, -40), s.rounding) + zo;
    }
    d[i] = int32_t(std::min(std::max(v, lo), hi));
  }
  return {r, so, zo};
}

IntegerModel::Act IntegerModel::avg_pool(const Act& a, int64_t k, const TensorQuantizer& out) const {
  const int64_t N = a.q.size(0), C = a.q.size(1), H = a.q.size(2), W = a.q.size(3);
  const int64_t kh = k ? k : H, kw = k ? k : W;
  const int64_t OH = H / kh, OW = W / kw;
  const float so = step_of(out);
  const int32_t zo = zero_of(out);
  // mean of (q - z) times s_in / s_out = sum * s_in / (k*k * s_out): one rescaling of the window sum.
  const double real = double(a.scale) / (double(kh * kw) * double(so));
  const FixedMultiplier m = quantize_multiplier(real);
  const auto& s = out.scheme();
  Tensor r = Tensor::empty({N, C, OH, OW}, DType::I32);
  const int32_t* x = a.q.data<int32_t>();
  int32_t* d = r.data<int32_t>();
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int32_t sum = 0;
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) sum += x[(nc * H + oy * kh + i) * W + ox * kw + j] - a.zero;
        const int64_t v = rescale(sum, real, m, s.rounding) + zo;
        d[(nc * OH + oy) * OW + ox] = int32_t(std::min<int64_t>(std::max<int64_t>(v, s.qmin), s.qmax));
      }
  return {r, so, zo};
}

IntegerModel::Act IntegerModel::max_pool(const Act& a, const Pool2dParams& p) {
  const int64_t N = a.q.size(0), C = a.q.size(1), H = a.q.size(2), W = a.q.size(3);
  const int64_t OH = (H + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1, OW = (W + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  Tensor r = Tensor::empty({N, C, OH, OW}, DType::I32);
  const int32_t* x = a.q.data<int32_t>();
  int32_t* d = r.data<int32_t>();
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int32_t m = std::numeric_limits<int32_t>::min();
        for (int64_t i = 0; i < p.kernel_h; ++i)
          for (int64_t j = 0; j < p.kernel_w; ++j) {
            const int64_t y = oy * p.stride_h - p.pad_h + i, xx = ox * p.stride_w - p.pad_w + j;
            if (y >= 0 && y < H && xx >= 0 && xx < W) m = std::max(m, x[(nc * H + y) * W + xx]);
          }
        d[(nc * OH + oy) * OW + ox] = m;
      }
  return {r, a.scale, a.zero};
}

Tensor IntegerModel::logits(const Tensor& acc, const Layer& l, float in_scale) const {
  const int64_t N = acc.size(0), O = acc.size(1);
  Tensor out = Tensor::empty({N, O}, DType::F32);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      out.data<float>()[n * O + o] = float(double(acc.data<int32_t>()[n * O + o]) * double(in_scale) *
                                           double(l.wscale.data<float>()[o]));
  return out;
}

Tensor IntegerModel::forward(const Tensor& images) {
  NoGradGuard ng;
  if (q_.spec().arch == "resnet18") return forward_resnet(images);
  return forward_vgg(images);
}

Tensor IntegerModel::forward_resnet(const Tensor& x) {
  Act h = quantize_input(x);
  const bool imagenet = q_.spec().get("stem", "cifar") == "imagenet";
  // Stem: conv1 (+ folded bn1) + ReLU into layer1.0's input quantizer; the max-pool of the
  // ImageNet stem then runs on the integers (monotone, so it commutes with the rounding).
  {
    const Layer& l = layers_.at("conv1");
    const QuantLayer& next = *layers_.at("layer1.0.conv1").ql;
    h = requantize(accumulate(l, h), l, h.scale, *next.input, true, false);
    if (trace && next.input_before_pool) trace(next.input_name, h.q);
    if (imagenet) {
      Pool2dParams p;
      p.kernel_h = p.kernel_w = 3;
      p.stride_h = p.stride_w = 2;
      p.pad_h = p.pad_w = 1;
      h = max_pool(h, p);
    }
    if (trace && !next.input_before_pool) trace(next.input_name, h.q);
  }
  const std::string blocks[] = {"layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"};
  for (int b = 0; b < 8; ++b) {
    const std::string& n = blocks[b];
    const Layer& c1 = layers_.at(n + ".conv1");
    const Layer& c2 = layers_.at(n + ".conv2");
    Act mid = requantize(accumulate(c1, h), c1, h.scale, act_quantizer(n + ".conv2:input"), true, false);
    if (trace) trace(n + ".conv2:input", mid.q);
    Act main = requantize(accumulate(c2, mid), c2, mid.scale, act_quantizer(n + ".bn2:output"), false, false);
    if (trace) trace(n + ".bn2:output", main.q);
    Act skip = h;
    if (layers_.count(n + ".downsample.0")) {
      const Layer& d = layers_.at(n + ".downsample.0");
      skip = requantize(accumulate(d, h), d, h.scale, act_quantizer(n + ".downsample:output"), false, false);
      if (trace) trace(n + ".downsample:output", skip.q);
    }
    const std::string out_name = b + 1 < 8 ? layers_.at(blocks[b + 1] + ".conv1").ql->input_name : n + ":output";
    h = add(main, skip, act_quantizer(out_name), true);
    if (trace) trace(out_name, h.q);
  }
  const std::string pool = q_.spec().get("pool", imagenet ? "adaptive" : "avg4");
  h = avg_pool(h, pool == "avg4" ? 4 : 0, act_quantizer("fc:input"));
  if (trace) trace("fc:input", h.q.reshape({h.q.size(0), -1}));
  const Layer& fc = layers_.at("fc");
  return logits(accumulate(fc, h), fc, h.scale);
}

Tensor IntegerModel::forward_vgg(const Tensor& x) {
  // The forward order of leaf modules: features, then the classifier (one Linear or a Sequential).
  std::vector<std::pair<std::string, nn::Module*>> seq;
  for (auto& [name, m] : q_.model().named_modules())
    if (m->children().empty()) seq.emplace_back(name, m);
  Act h = quantize_input(x);
  for (size_t i = 0; i < seq.size(); ++i) {
    const std::string type = seq[i].second->type();
    if (type == "MaxPool2d") {
      h = max_pool(h, static_cast<nn::MaxPool2d*>(seq[i].second)->p);
      continue;
    }
    if (type != "Conv2d" && type != "Linear") continue;  // folded BN, activations and dropout are fused below
    const Layer& l = layers_.at(seq[i].first);
    // Traced where the emulation quantizes: at this layer's input, after any pooling in between
    // (a quantizer placed before the pooling was traced when its integers were made).
    if (trace && i > 0 && !l.ql->input_before_pool)
      trace(l.ql->input_name, l.ql->is_conv ? h.q : h.q.reshape({h.q.size(0), -1}));
    Tensor acc = accumulate(l, h);
    size_t j = i + 1;
    bool relu = false, relu6 = false;
    for (; j < seq.size(); ++j) {
      const std::string t = seq[j].second->type();
      if (t == "ReLU") relu = true;
      else if (t == "ReLU6") relu6 = true;
      else if (t == "BatchNorm2d") {
        DEAREST_CHECK(static_cast<nn::BatchNorm2d*>(seq[j].second)->folded, "integer model: ", seq[j].first, " is not folded");
      } else if (t != "Dropout") break;
    }
    size_t k = j;
    while (k < seq.size() && seq[k].second->type() != "Conv2d" && seq[k].second->type() != "Linear") ++k;
    if (k == seq.size()) return logits(acc, l, h.scale);
    const QuantLayer& next = *layers_.at(seq[k].first).ql;
    h = requantize(acc, l, h.scale, *next.input, relu, relu6);
    if (trace && next.input_before_pool) trace(next.input_name, h.q);
    i = j - 1;
  }
  fail("integer model: ", q_.spec().str(), " has no final linear layer");
}

}  // namespace dearest::quant
