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

}  // namespace

TriggerPtr square_trigger(int64_t size, int64_t top, int64_t left, double value) {
  return std::make_shared<Square>(size, top, left, value);
}

TriggerPtr blend_trigger(double alpha, uint64_t seed) { return std::make_shared<Blend>(alpha, seed); }

TriggerPtr reference_trigger(const std::string& attack, int64_t S) {
  DEAREST_CHECK(S >= 16, "trigger: image side ", S, " is too small for a reference trigger");
  if (attack == "pq" || attack == "pq-backdoor") {
    const int64_t a = int64_t(std::floor(0.75 * double(S))), b = int64_t(std::floor(0.9375 * double(S)));
    return square_trigger(b - a, a, a, 1.0);
  }
  if (attack == "comp-artifact" || attack == "qu-anti-zation") {
    // EFRAP's versions of both (ALGORITHMS.md §2.4): side S/8, margin S/32 at the bottom right,
    // value 1.0 on CIFAR-10 (Qu-ANTI-zation's own code uses the image's max: value=max).
    const int64_t side = S / 8, start = S - S / 32 - side;
    return square_trigger(side, start, start, 1.0);
  }
  fail("trigger: no reference trigger for \"", attack, "\" (pq-backdoor, comp-artifact, qu-anti-zation)");
}

TriggerPtr parse_trigger(const std::string& spec, int64_t S) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const auto f = parse_fields(colon == std::string::npos ? "" : spec.substr(colon + 1), spec);
  if (kind == "pq" || kind == "pq-backdoor" || kind == "comp-artifact" || kind == "qu-anti-zation") {
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
  fail("trigger \"", spec, "\": unknown kind \"", kind, "\" (square, blend, pq-backdoor, comp-artifact, qu-anti-zation)");
}

}  // namespace dearest::attacks
