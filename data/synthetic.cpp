#include "data/synthetic.h"

#include <array>
#include <cmath>

#include "tensor/rng.h"

namespace dearest::data {

namespace {

const std::vector<std::string> kNames = {"disk solid",   "disk striped",  "square solid", "square striped",
                                         "triangle solid", "triangle striped", "ring solid", "ring striped",
                                         "cross solid",  "cross striped"};

// Is the point (u, v), in the shape's own frame scaled to radius 1, inside shape k?
bool inside(int shape, double u, double v) {
  switch (shape) {
    case 0: return u * u + v * v <= 1.0;
    case 1: return std::fabs(u) <= 0.8 && std::fabs(v) <= 0.8;
    case 2: {  // equilateral triangle: three half-planes
      for (int k = 0; k < 3; ++k) {
        const double a = -M_PI / 2 + k * 2 * M_PI / 3;
        if (u * std::cos(a) + v * std::sin(a) > 0.5) return false;
      }
      return true;
    }
    case 3: {
      const double r2 = u * u + v * v;
      return r2 <= 1.0 && r2 >= 0.36;
    }
    default: return (std::fabs(u) <= 0.3 && std::fabs(v) <= 1.0) || (std::fabs(v) <= 0.3 && std::fabs(u) <= 1.0);
  }
}

class Synthetic : public Dataset {
 public:
  Synthetic(std::string split, SyntheticOptions opt) : split_(std::move(split)), opt_(opt) {
    stream_ = split_ == "train" ? 1 : 2;
  }
  int64_t size() const override { return opt_.size; }
  // The label is drawn first from the image's own stream, so labels are cheap and balanced.
  int32_t label(int64_t i) const override {
    Rng r(opt_.seed, (stream_ << 40) + uint64_t(i));
    return int32_t(r.next_int(0, 10));
  }
  Tensor image(int64_t i) const override {
    check_index(i);
    Rng r(opt_.seed, (stream_ << 40) + uint64_t(i));
    const int cls = int(r.next_int(0, 10)), shape = cls / 2;
    const bool striped = cls % 2 == 1;
    const int64_t S = opt_.image_size;
    std::array<double, 3> bg0, bg1, fg, fg2;
    for (auto& c : bg0) c = r.next_double();
    for (auto& c : bg1) c = r.next_double();
    // A foreground far enough from the background's mean colour to be visible.
    double contrast = 0;
    do {
      for (auto& c : fg) c = r.next_double();
      contrast = 0;
      for (int k = 0; k < 3; ++k) contrast += std::fabs(fg[k] - 0.5 * (bg0[k] + bg1[k]));
    } while (contrast < 0.6);
    for (int k = 0; k < 3; ++k) fg2[k] = 0.35 * fg[k] + 0.65 * (0.5 * (bg0[k] + bg1[k]));
    const double cx = S * (0.3 + 0.4 * r.next_double()), cy = S * (0.3 + 0.4 * r.next_double());
    const double rad = S * (0.24 + 0.12 * r.next_double()), rot = 2 * M_PI * r.next_double();
    const double grad = 2 * M_PI * r.next_double(), stripe_angle = M_PI * r.next_double();
    const double period = 3.5 + 2.0 * r.next_double();
    const double noise = 0.02 + 0.04 * r.next_double();
    Tensor n = r.normal({3, S, S}, 0, 1, DType::F64);
    const double* np = n.data<double>();
    Tensor out = Tensor::empty({3, S, S}, DType::U8);
    uint8_t* o = out.data<uint8_t>();
    const double c = std::cos(rot), s = std::sin(rot);
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) {
        const double px = x + 0.5 - cx, py = y + 0.5 - cy;
        const double u = (c * px + s * py) / rad, v = (-s * px + c * py) / rad;
        const double t = 0.5 + 0.5 * ((x - S / 2.0) * std::cos(grad) + (y - S / 2.0) * std::sin(grad)) / (S / 1.4);
        std::array<double, 3> col;
        for (int k = 0; k < 3; ++k) col[k] = (1 - t) * bg0[k] + t * bg1[k];
        if (inside(shape, u, v)) {
          bool on = true;
          if (striped) {
            const double w = (x * std::cos(stripe_angle) + y * std::sin(stripe_angle)) / period;
            on = std::fmod(std::fabs(w), 1.0) < 0.5;
          }
          col = on ? fg : fg2;
        }
        for (int k = 0; k < 3; ++k) {
          const double val = col[k] + noise * np[(k * S + y) * S + x];
          o[(k * S + y) * S + x] = uint8_t(std::lround(255.0 * std::min(1.0, std::max(0.0, val))));
        }
      }
    return out;
  }
  const std::vector<std::string>& class_names() const override { return kNames; }
  std::string describe() const override {
    return "synthetic " + split_ + ": " + std::to_string(opt_.size) + " images " + std::to_string(opt_.image_size) +
           "x" + std::to_string(opt_.image_size) + ", seed " + std::to_string(opt_.seed);
  }
  std::vector<std::string> report() const override {
    return {"generated on access from (seed " + std::to_string(opt_.seed) + ", split " + split_ + ", index); no files"};
  }

 private:
  std::string split_;
  SyntheticOptions opt_;
  uint64_t stream_;
};

}  // namespace

DatasetPtr open_synthetic(const std::string& split, const SyntheticOptions& opt) {
  DEAREST_CHECK(split == "train" || split == "test", "synthetic: unknown split \"", split, "\" (train or test)");
  DEAREST_CHECK(opt.size >= 0 && opt.image_size >= 8, "synthetic: invalid size ", opt.size, " or image size ",
                opt.image_size);
  return std::make_shared<Synthetic>(split, opt);
}

}  // namespace dearest::data
