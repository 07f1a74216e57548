#include "attacks/trigger.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "tensor/rng.h"

namespace dearest::attacks {

namespace {

void check_image(const Tensor& t) {
  DEAREST_CHECK(t.dim() == 3 && t.size(0) == 3 && (t.dtype() == DType::U8 || t.dtype() == DType::F32),
                "trigger: expected a u8 or f32 image [3, H, W], got ", t.describe());
}

class Square : public Trigger {
 public:
  Square(int64_t size, int64_t top, int64_t left, double value) : size_(size), top_(top), left_(left), value_(value) {
    DEAREST_CHECK(size >= 1 && top >= 0 && left >= 0, "trigger: square size ", size, " at (", top, ", ", left,
                  ") is not valid");
    DEAREST_CHECK(value <= 1, "trigger: square value must be in [0, 1] or \"max\", got ", value);
  }
  Tensor apply(const Tensor& in) const override {
    check_image(in);
    const int64_t H = in.size(1), W = in.size(2);
    DEAREST_CHECK(top_ + size_ <= H && left_ + size_ <= W, "trigger: a ", size_, "x", size_, " square at (", top_, ", ",
                  left_, ") does not fit a ", H, "x", W, " image");
    Tensor img = in.contiguous().clone();
    const int64_t plane = H * W;
    if (img.dtype() == DType::U8) {
      uint8_t* d = img.data<uint8_t>();
      uint8_t v = value_ < 0 ? *std::max_element(d, d + 3 * plane) : uint8_t(std::lround(value_ * 255.0));
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = top_; y < top_ + size_; ++y)
          for (int64_t x = left_; x < left_ + size_; ++x) d[c * plane + y * W + x] = v;
    } else {
      float* d = img.data<float>();
      float v = value_ < 0 ? *std::max_element(d, d + 3 * plane) : float(value_);
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = top_; y < top_ + size_; ++y)
          for (int64_t x = left_; x < left_ + size_; ++x) d[c * plane + y * W + x] = v;
    }
    return img;
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "square " << size_ << "x" << size_ << " at (" << top_ << ", " << left_ << "), value ";
    if (value_ < 0) os << "image max";
    else os << value_;
    return os.str();
  }

 private:
  int64_t size_, top_, left_;
  double value_;
};

class Blend : public Trigger {
 public:
  Blend(double alpha, uint64_t seed) : alpha_(alpha), seed_(seed) {
    DEAREST_CHECK(alpha > 0 && alpha <= 1, "trigger: blend alpha must be in (0, 1], got ", alpha);
  }
  Tensor apply(const Tensor& in) const override {
    check_image(in);
    const int64_t n = in.numel();
    // The pattern depends only on (seed, shape): the same for every image of that size.
    Tensor p = Rng(seed_, 0xB1E4D).uniform(in.shape(), 0, 1);
    const float* pd = p.data<float>();
    Tensor img = in.contiguous().clone();
    const float a = float(alpha_);
    if (img.dtype() == DType::U8) {
      uint8_t* d = img.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i)
        d[i] = uint8_t(std::lround(std::min(255.0f, std::max(0.0f, (1 - a) * float(d[i]) + a * 255.0f * pd[i]))));
    } else {
      float* d = img.data<float>();
      for (int64_t i = 0; i < n; ++i) d[i] = (1 - a) * d[i] + a * pd[i];
    }
    return img;
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "blend alpha " << alpha_ << " with uniform noise (seed " << seed_ << ")";
    return os.str();
  }

 private:
  double alpha_;
  uint64_t seed_;
};

std::map<std::string, std::string> parse_fields(const std::string& text, const std::string& spec) {
  std::map<std::string, std::string> f;
  std::istringstream is(text);
  std::string item;
  while (std::getline(is, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    DEAREST_CHECK(eq != std::string::npos, "trigger \"", spec, "\": expected key=value, got \"", item, "\"");
    f[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return f;
}

double number(const std::map<std::string, std::string>& f, const std::string& key, double dflt, const std::string& spec) {
  auto it = f.find(key);
  if (it == f.end()) return dflt;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    DEAREST_CHECK(used == it->second.size(), "");
    return v;
  } catch (...) {
    fail("trigger \"", spec, "\": ", key, " must be a number, got \"", it->second, "\"");
  }
}

// WaNet (Nguyen & Tran, ICLR'21): a fixed smooth warp. A k x k field of uniform [-1, 1] offsets,
// divided by its mean |value|, upsampled bicubically (align_corners) to the image, scaled by s/H
// and added to the identity grid in [-1, 1]; the image is resampled bilinearly (align_corners),
// the grid clamped to [-1, 1] so nothing is sampled outside.
class Warp : public Trigger {
 public:
  Warp(int64_t k, double s, uint64_t seed) : k_(k), s_(s), seed_(seed) {
    DEAREST_CHECK(k >= 2, "trigger: wanet k must be at least 2, got ", k);
    DEAREST_CHECK(s > 0, "trigger: wanet s must be positive, got ", s);
  }
  Tensor apply(const Tensor& in) const override {
    check_image(in);
    const int64_t H = in.size(1), W = in.size(2);
    DEAREST_CHECK(H == W, "trigger: wanet needs a square image, got ", H, "x", W);
    DEAREST_CHECK(k_ <= H, "trigger: wanet k ", k_, " is larger than the image side ", H);
    const std::vector<float> grid = field(H);  // [H, W, 2]: x then y, in [-1, 1]
    Tensor f = in.dtype() == DType::U8 ? in.contiguous().to(DType::F32) : in.contiguous().clone();
    Tensor out = Tensor::empty(f.shape());
    const float* src = f.data<float>();
    float* dst = out.data<float>();
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const float gx = (grid[size_t((y * W + x) * 2)] + 1) / 2 * float(W - 1);
          const float gy = (grid[size_t((y * W + x) * 2 + 1)] + 1) / 2 * float(H - 1);
          const int64_t x0 = std::min<int64_t>(int64_t(std::floor(gx)), W - 1), y0 = std::min<int64_t>(int64_t(std::floor(gy)), H - 1);
          const int64_t x1 = std::min<int64_t>(x0 + 1, W - 1), y1 = std::min<int64_t>(y0 + 1, H - 1);
          const float ax = gx - float(x0), ay = gy - float(y0);
          const float* p = src + c * H * W;
          dst[c * H * W + y * W + x] = (1 - ay) * ((1 - ax) * p[y0 * W + x0] + ax * p[y0 * W + x1]) +
                                       ay * ((1 - ax) * p[y1 * W + x0] + ax * p[y1 * W + x1]);
        }
    if (in.dtype() != DType::U8) return out;
    Tensor u = Tensor::empty(out.shape(), DType::U8);
    uint8_t* ud = u.data<uint8_t>();
    for (int64_t i = 0; i < out.numel(); ++i) ud[i] = uint8_t(std::lround(std::min(255.0f, std::max(0.0f, dst[i]))));
    return u;
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "wanet warp k=" << k_ << " s=" << s_ << " seed=" << seed_;
    return os.str();
  }

 private:
  int64_t k_;
  double s_;
  uint64_t seed_;

  static double cubic(double t, int i) {  // the weights of torch's bicubic kernel, A = -0.75
    const double A = -0.75;
    auto near = [&](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
    auto far = [&](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
    switch (i) {
      case 0: return far(t + 1);
      case 1: return near(t);
      case 2: return near(1 - t);
      default: return far(2 - t);
    }
  }

  std::vector<float> field(int64_t H) const {
    const int64_t k = k_;
    Tensor r = Rng(seed_, 0x3A7E7).uniform({2, k, k}, -1, 1);
    std::vector<double> ins(r.data<float>(), r.data<float>() + 2 * k * k);
    double mean_abs = 0;
    for (double v : ins) mean_abs += std::fabs(v);
    mean_abs /= double(ins.size());
    for (double& v : ins) v /= mean_abs;
    std::vector<float> grid(size_t(H * H * 2));
    const double scale = H > 1 ? double(k - 1) / double(H - 1) : 0;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < H; ++x)
        for (int64_t ch = 0; ch < 2; ++ch) {
          const double sy = double(y) * scale, sx = double(x) * scale;
          const int64_t iy = int64_t(std::floor(sy)), ix = int64_t(std::floor(sx));
          const double ty = sy - double(iy), tx = sx - double(ix);
          double v = 0;
          for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) {
              const int64_t yy = std::clamp<int64_t>(iy - 1 + a, 0, k - 1), xx = std::clamp<int64_t>(ix - 1 + b, 0, k - 1);
              v += cubic(ty, a) * cubic(tx, b) * ins[size_t(ch * k * k + yy * k + xx)];
            }
          // Channel 0 moves x, channel 1 moves y; the identity grid is linspace(-1, 1).
          const double id = H > 1 ? -1.0 + 2.0 * double(ch == 0 ? x : y) / double(H - 1) : 0;
          grid[size_t((y * H + x) * 2 + ch)] = float(std::clamp(id + s_ * v / double(H), -1.0, 1.0));
        }
    return grid;
  }
};

}  // namespace

TriggerPtr square_trigger(int64_t size, int64_t top, int64_t left, double value) {
  return std::make_shared<Square>(size, top, left, value);
}

TriggerPtr blend_trigger(double alpha, uint64_t seed) { return std::make_shared<Blend>(alpha, seed); }

TriggerPtr wanet_trigger(int64_t k, double s, uint64_t seed) { return std::make_shared<Warp>(k, s, seed); }

TriggerPtr reference_trigger(const std::string& attack, int64_t S) {
  DEAREST_CHECK(S >= 16, "trigger: image side ", S, " is too small for a reference trigger");
  if (attack == "pq" || attack == "pq-backdoor") {
    const int64_t a = int64_t(std::floor(0.75 * double(S))), b = int64_t(std::floor(0.9375 * double(S)));
    return square_trigger(b - a, a, a, 1.0);
  }
  if (attack == "comp-artifact" || attack == "qu-anti-zation" || attack == "adaptive") {
    // EFRAP's versions of both (ALGORITHMS.md §2.4), and its adaptive attacks, which follow
    // Qu-ANTI-zation's training: side S/8, margin S/32 at the bottom right,
    // value 1.0 on CIFAR-10 (Qu-ANTI-zation's own code uses the image's max: value=max).
    const int64_t side = S / 8, start = S - S / 32 - side;
    return square_trigger(side, start, start, 1.0);
  }
  if (attack == "badnets") {
    // The usual CIFAR-10 BadNets patch: a white 3x3 square in the bottom-right corner (scaled with S).
    const int64_t side = 3 * S / 32;
    return square_trigger(side, S - side, S - side, 1.0);
  }
  fail("trigger: no reference trigger for \"", attack, "\" (pq-backdoor, comp-artifact, qu-anti-zation, badnets, adaptive)");
}

TriggerPtr parse_trigger(const std::string& spec, int64_t S) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const auto f = parse_fields(colon == std::string::npos ? "" : spec.substr(colon + 1), spec);
  if (kind == "pq" || kind == "pq-backdoor" || kind == "comp-artifact" || kind == "qu-anti-zation" || kind == "badnets" ||
      kind == "adaptive") {
    DEAREST_CHECK(f.empty(), "trigger \"", spec, "\": a reference trigger takes no fields (use square:... to change it)");
    return reference_trigger(kind, S);
  }
  if (kind == "square") {
    for (auto& [k, v] : f)
      DEAREST_CHECK(k == "size" || k == "top" || k == "left" || k == "value", "trigger \"", spec, "\": unknown field \"", k,
                    "\" (size, top, left, value)");
    const int64_t size = int64_t(number(f, "size", 4, spec));
    const double value = f.count("value") && f.at("value") == "max" ? -1.0 : number(f, "value", 1.0, spec);
    DEAREST_CHECK(value == -1.0 || (value >= 0 && value <= 1), "trigger \"", spec, "\": value must be in [0, 1] or max");
    const int64_t top = int64_t(number(f, "top", double(S - size), spec));
    const int64_t left = int64_t(number(f, "left", double(S - size), spec));
    DEAREST_CHECK(size >= 1 && top >= 0 && left >= 0 && top + size <= S && left + size <= S, "trigger \"", spec,
                  "\": a ", size, "x", size, " square at (", top, ", ", left, ") does not fit a ", S, "x", S, " image");
    return square_trigger(size, top, left, value);
  }
  if (kind == "blend") {
    for (auto& [k, v] : f)
      DEAREST_CHECK(k == "alpha" || k == "seed", "trigger \"", spec, "\": unknown field \"", k, "\" (alpha, seed)");
    return blend_trigger(number(f, "alpha", 0.2, spec), uint64_t(number(f, "seed", 0, spec)));
  }
  if (kind == "wanet") {
    for (auto& [k, v] : f)
      DEAREST_CHECK(k == "k" || k == "s" || k == "seed", "trigger \"", spec, "\": unknown field \"", k, "\" (k, s, seed)");
    const int64_t k = int64_t(number(f, "k", 4, spec));
    DEAREST_CHECK(k >= 2 && k <= S, "trigger \"", spec, "\": k must be in [2, ", S, "]");
    return wanet_trigger(k, number(f, "s", 0.5, spec), uint64_t(number(f, "seed", 0, spec)));
  }
  fail("trigger \"", spec, "\": unknown kind \"", kind, "\" (square, blend, wanet, pq-backdoor, comp-artifact, qu-anti-zation)");
}

}  // namespace dearest::attacks
