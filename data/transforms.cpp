#include "data/transforms.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "data/image.h"

namespace dearest::data {

Rng sample_rng(uint64_t seed, int64_t epoch, int64_t index) {
  // A stream per (epoch, index); the seed is offset so loader draws never coincide with other
  // uses of the same run seed (initialisation, poisoning).
  return Rng(seed + 0xDA7A0000DA7AULL, (uint64_t(epoch) << 40) ^ uint64_t(index));
}

namespace {

void check_image(const Tensor& t, const char* op) {
  DEAREST_CHECK(t.dim() == 3, op, ": expected an image [C, H, W], got ", t.describe());
}

// Copies the window [top, top+h) x [left, left+w) of img into a new image, with `fill` outside.
Tensor crop_padded(const Tensor& img_in, int64_t top, int64_t left, int64_t h, int64_t w, double fill) {
  Tensor img = img_in.contiguous();
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
  Tensor out = Tensor::full({C, h, w}, fill, img.dtype());
  const size_t es = dtype_size(img.dtype());
  const auto* src = static_cast<const char*>(img.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(w, W - left);
  if (x1 <= x0) return out;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < h; ++y) {
      const int64_t sy = top + y;
      if (sy < 0 || sy >= H) continue;
      std::memcpy(dst + ((c * h + y) * w + x0) * es, src + ((c * H + sy) * W + left + x0) * es, size_t(x1 - x0) * es);
    }
  return out;
}

class ToFloat : public Transform {
 public:
  Tensor apply(const Tensor& img, Rng&, const SampleInfo&) const override {
    if (img.dtype() == DType::F32) return img;
    return data::to_float(img);
  }
  std::string describe() const override { return "ToFloat(/255)"; }
};

class Normalize : public Transform {
 public:
  Normalize(std::array<float, 3> m, std::array<float, 3> s) : m_(m), s_(s) {
    for (float v : s_) DEAREST_CHECK(v > 0, "normalize: std must be positive, got ", v);
  }
  Tensor apply(const Tensor& img_in, Rng&, const SampleInfo&) const override {
    check_image(img_in, "normalize");
    DEAREST_CHECK(img_in.dtype() == DType::F32 && img_in.size(0) == 3, "normalize: expected f32 [3, H, W] (after ToFloat), got ",
                  img_in.describe());
    Tensor img = img_in.contiguous();
    Tensor out = Tensor::empty(img.shape());
    const int64_t plane = img.size(1) * img.size(2);
    const float* s = img.data<float>();
    float* d = out.data<float>();
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < plane; ++i) d[c * plane + i] = (s[c * plane + i] - m_[c]) / s_[c];
    return out;
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "Normalize(mean=" << m_[0] << "," << m_[1] << "," << m_[2] << " std=" << s_[0] << "," << s_[1] << ","
       << s_[2] << ")";
    return os.str();
  }
  bool is_normalize() const override { return true; }

 private:
  std::array<float, 3> m_, s_;
};

class RandomCrop : public Transform {
 public:
  RandomCrop(int64_t h, int64_t w, int64_t pad, double fill) : h_(h), w_(w), pad_(pad), fill_(fill) {
    DEAREST_CHECK(h > 0 && w > 0 && pad >= 0, "random_crop: invalid size ", h, "x", w, " padding ", pad);
  }
  Tensor apply(const Tensor& img, Rng& rng, const SampleInfo&) const override {
    check_image(img, "random_crop");
    const int64_t H = img.size(1) + 2 * pad_, W = img.size(2) + 2 * pad_;
    DEAREST_CHECK(H >= h_ && W >= w_, "random_crop: crop ", h_, "x", w_, " larger than the padded image ", H, "x", W);
    const int64_t top = rng.next_int(0, H - h_ + 1), left = rng.next_int(0, W - w_ + 1);
    return crop_padded(img, top - pad_, left - pad_, h_, w_, fill_);
  }
  std::string describe() const override {
    return "RandomCrop(" + std::to_string(h_) + "x" + std::to_string(w_) + ", padding=" + std::to_string(pad_) + ")";
  }

 private:
  int64_t h_, w_, pad_;
  double fill_;
};

class HorizontalFlip : public Transform {
 public:
  explicit HorizontalFlip(double p) : p_(p) {
    DEAREST_CHECK(p >= 0 && p <= 1, "random_horizontal_flip: p must be in [0, 1], got ", p);
  }
  Tensor apply(const Tensor& img_in, Rng& rng, const SampleInfo&) const override {
    check_image(img_in, "random_horizontal_flip");
    if (!(rng.next_double() < p_)) return img_in;
    Tensor img = img_in.contiguous();
    Tensor out = Tensor::empty(img.shape(), img.dtype());
    const int64_t rows = img.size(0) * img.size(1), W = img.size(2);
    const size_t es = dtype_size(img.dtype());
    const auto* s = static_cast<const char*>(img.raw_data());
    auto* d = static_cast<char*>(out.raw_data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < W; ++x) std::memcpy(d + (r * W + x) * es, s + (r * W + W - 1 - x) * es, es);
    return out;
  }
  std::string describe() const override { return "RandomHorizontalFlip(p=" + std::to_string(p_) + ")"; }

 private:
  double p_;
};

class Resize : public Transform {
 public:
  Resize(int64_t h, int64_t w) : h_(h), w_(w) { DEAREST_CHECK(h > 0 && w > 0, "resize: invalid size ", h, "x", w); }
  Tensor apply(const Tensor& img, Rng&, const SampleInfo&) const override {
    check_image(img, "resize");
    DEAREST_CHECK(img.dtype() == DType::F32, "resize: expected f32 (put ToFloat first), got ", img.describe());
    if (img.size(1) == h_ && img.size(2) == w_) return img;
    return resize_bilinear(img, h_, w_);
  }
  std::string describe() const override { return "Resize(" + std::to_string(h_) + "x" + std::to_string(w_) + ", bilinear)"; }

 private:
  int64_t h_, w_;
};

class CenterCrop : public Transform {
 public:
  CenterCrop(int64_t h, int64_t w) : h_(h), w_(w) { DEAREST_CHECK(h > 0 && w > 0, "center_crop: invalid size ", h, "x", w); }
  Tensor apply(const Tensor& img, Rng&, const SampleInfo&) const override {
    check_image(img, "center_crop");
    // torchvision: top = round((H - h) / 2); a smaller image is padded with zeros.
    const int64_t top = std::llround((img.size(1) - h_) / 2.0), left = std::llround((img.size(2) - w_) / 2.0);
    return crop_padded(img, top, left, h_, w_, 0);
  }
  std::string describe() const override { return "CenterCrop(" + std::to_string(h_) + "x" + std::to_string(w_) + ")"; }

 private:
  int64_t h_, w_;
};

class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(int64_t h, int64_t w, std::array<double, 2> scale, std::array<double, 2> ratio)
      : h_(h), w_(w), scale_(scale), ratio_(ratio) {
    DEAREST_CHECK(h > 0 && w > 0 && 0 < scale[0] && scale[0] <= scale[1] && scale[1] <= 1 && 0 < ratio[0] &&
                      ratio[0] <= ratio[1],
                  "random_resized_crop: invalid size, scale or ratio");
  }
  // torchvision's RandomResizedCrop.get_params: 10 tries at a random area and aspect ratio, then
  // a centred crop clamped to the allowed ratios.
  Tensor apply(const Tensor& img, Rng& rng, const SampleInfo&) const override {
    check_image(img, "random_resized_crop");
    DEAREST_CHECK(img.dtype() == DType::F32, "random_resized_crop: expected f32 (put ToFloat first), got ",
                  img.describe());
    const int64_t H = img.size(1), W = img.size(2);
    const double area = double(H) * W, lr0 = std::log(ratio_[0]), lr1 = std::log(ratio_[1]);
    int64_t top = 0, left = 0, h = H, w = W;
    bool found = false;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double target = area * (scale_[0] + (scale_[1] - scale_[0]) * rng.next_double());
      const double aspect = std::exp(lr0 + (lr1 - lr0) * rng.next_double());
      const int64_t cw = std::llround(std::sqrt(target * aspect)), ch = std::llround(std::sqrt(target / aspect));
      if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
        top = rng.next_int(0, H - ch + 1);
        left = rng.next_int(0, W - cw + 1);
        h = ch;
        w = cw;
        found = true;
      }
    }
    if (!found) {
      const double in_ratio = double(W) / H;
      if (in_ratio < ratio_[0]) {
        w = W;
        h = std::llround(w / ratio_[0]);
      } else if (in_ratio > ratio_[1]) {
        h = H;
        w = std::llround(h * ratio_[1]);
      }
      top = (H - h) / 2;
      left = (W - w) / 2;
    }
    return resize_bilinear(crop_padded(img, top, left, h, w, 0), h_, w_);
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "RandomResizedCrop(" << h_ << "x" << w_ << ", scale=" << scale_[0] << ".." << scale_[1]
       << ", ratio=" << ratio_[0] << ".." << ratio_[1] << ")";
    return os.str();
  }

 private:
  int64_t h_, w_;
  std::array<double, 2> scale_, ratio_;
};

class RandomJpeg : public Transform {
 public:
  RandomJpeg(double p, int q0, int q1) : p_(p), q0_(q0), q1_(q1) {
    DEAREST_CHECK(p >= 0 && p <= 1, "random_jpeg: p must be in [0, 1], got ", p);
    DEAREST_CHECK(1 <= q0 && q0 <= q1 && q1 <= 100, "random_jpeg: need quality 1 <= q_min <= q_max <= 100, got ", q0, "..", q1);
  }
  Tensor apply(const Tensor& img, Rng& rng, const SampleInfo&) const override {
    check_image(img, "random_jpeg");
    // Both draws are always taken so the generator advances the same way whether or not p fires.
    const bool fire = rng.next_double() < p_;
    const int q = int(rng.next_int(q0_, int64_t(q1_) + 1));
    if (!fire) return img;
    if (img.dtype() == DType::U8) return jpeg_round_trip(img, q);
    DEAREST_CHECK(img.dtype() == DType::F32, "random_jpeg: expected u8 or f32 in [0, 1], got ", img.describe());
    Tensor c = img.contiguous();
    Tensor u8 = Tensor::empty(c.shape(), DType::U8);
    const float* s = c.data<float>();
    uint8_t* d = u8.data<uint8_t>();
    for (int64_t i = 0; i < c.numel(); ++i) d[i] = uint8_t(std::lround(std::min(1.f, std::max(0.f, s[i])) * 255.f));
    return data::to_float(jpeg_round_trip(u8, q));
  }
  std::string describe() const override {
    std::ostringstream os;
    if (p_ >= 1 && q0_ == q1_) os << "Jpeg(quality=" << q0_ << ")";
    else os << "RandomJpeg(p=" << p_ << ", quality=" << q0_ << ".." << q1_ << ")";
    return os.str();
  }
  bool random() const { return !(p_ >= 1 && q0_ == q1_); }

 private:
  double p_;
  int q0_, q1_;
};

class Lambda : public Transform {
 public:
  Lambda(std::string name, std::function<Tensor(const Tensor&, Rng&, const SampleInfo&)> fn, bool random)
      : name_(std::move(name)), fn_(std::move(fn)), random_(random) {}
  Tensor apply(const Tensor& img, Rng& rng, const SampleInfo& info) const override { return fn_(img, rng, info); }
  std::string describe() const override { return name_; }
  bool random() const { return random_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&, Rng&, const SampleInfo&)> fn_;
  bool random_;
};

bool is_random(const Transform& t) {
  if (auto* l = dynamic_cast<const Lambda*>(&t)) return l->random();
  if (auto* j = dynamic_cast<const RandomJpeg*>(&t)) return j->random();
  return dynamic_cast<const RandomCrop*>(&t) || dynamic_cast<const HorizontalFlip*>(&t) ||
         dynamic_cast<const RandomResizedCrop*>(&t);
}

}  // namespace

Tensor Compose::apply(const Tensor& image, Rng& rng, const SampleInfo& info) const {
  Tensor x = image;
  for (const auto& s : steps_) x = s->apply(x, rng, info);
  return x;
}

std::string Compose::describe() const {
  std::string out;
  for (const auto& s : steps_) out += (out.empty() ? "" : " -> ") + s->describe();
  return out.empty() ? "identity" : out;
}

std::shared_ptr<Compose> Compose::with_stamp(TransformPtr stamp) const {
  std::vector<TransformPtr> steps = steps_;
  auto it = steps.begin();
  while (it != steps.end() && !(*it)->is_normalize()) ++it;
  steps.insert(it, std::move(stamp));
  return std::make_shared<Compose>(std::move(steps));
}

std::shared_ptr<Compose> Compose::with_front(TransformPtr step) const {
  std::vector<TransformPtr> steps{std::move(step)};
  steps.insert(steps.end(), steps_.begin(), steps_.end());
  return std::make_shared<Compose>(std::move(steps));
}

std::shared_ptr<Compose> Compose::deterministic_only() const {
  std::vector<TransformPtr> steps;
  for (const auto& s : steps_)
    if (!is_random(*s)) steps.push_back(s);
  return std::make_shared<Compose>(std::move(steps));
}

std::shared_ptr<Compose> Compose::without_normalize() const {
  std::vector<TransformPtr> steps;
  for (const auto& s : steps_)
    if (!s->is_normalize()) steps.push_back(s);
  return std::make_shared<Compose>(std::move(steps));
}

TransformPtr to_float() { return std::make_shared<ToFloat>(); }
TransformPtr normalize(std::array<float, 3> mean, std::array<float, 3> std) {
  return std::make_shared<Normalize>(mean, std);
}
TransformPtr random_crop(int64_t h, int64_t w, int64_t padding, double fill) {
  return std::make_shared<RandomCrop>(h, w, padding, fill);
}
TransformPtr random_horizontal_flip(double p) { return std::make_shared<HorizontalFlip>(p); }
TransformPtr resize(int64_t h, int64_t w) { return std::make_shared<Resize>(h, w); }
TransformPtr center_crop(int64_t h, int64_t w) { return std::make_shared<CenterCrop>(h, w); }
TransformPtr random_resized_crop(int64_t h, int64_t w, std::array<double, 2> scale, std::array<double, 2> ratio) {
  return std::make_shared<RandomResizedCrop>(h, w, scale, ratio);
}
TransformPtr random_jpeg(double p, int q_min, int q_max) { return std::make_shared<RandomJpeg>(p, q_min, q_max); }
TransformPtr jpeg(int quality) { return std::make_shared<RandomJpeg>(1.0, quality, quality); }

TransformPtr parse_random_jpeg(const std::string& text, const std::string& what) {
  std::vector<std::string> f;
  size_t start = 0;
  for (size_t c; (c = text.find(':', start)) != std::string::npos; start = c + 1) f.push_back(text.substr(start, c - start));
  f.push_back(text.substr(start));
  DEAREST_CHECK(f.size() == 2 || f.size() == 3, what, ": expected P:QMIN:QMAX or P:Q (e.g. 0.5:60:90), got \"", text, "\"");
  try {
    const double p = std::stod(f[0]);
    const int q0 = std::stoi(f[1]), q1 = f.size() == 3 ? std::stoi(f[2]) : q0;
    return random_jpeg(p, q0, q1);
  } catch (const std::logic_error&) {
    fail(what, ": not numbers: \"", text, "\"");
  }
}
TransformPtr lambda(std::string name, std::function<Tensor(const Tensor&, Rng&, const SampleInfo&)> fn, bool random) {
  return std::make_shared<Lambda>(std::move(name), std::move(fn), random);
}

Normalization normalization_of(const std::string& kind) {
  if (kind == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f}};
  if (kind == "tiny-imagenet") return {{0.4802f, 0.4481f, 0.3975f}, {0.2302f, 0.2265f, 0.2262f}};
  if (kind == "imagenette") return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  if (kind == "synthetic") return {{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
  fail("normalization_of: unknown dataset kind \"", kind, "\" (cifar10, tiny-imagenet, imagenette, synthetic)");
}

std::shared_ptr<Compose> train_transform(const std::string& kind, int64_t image_size) {
  Normalization n = normalization_of(kind);
  if (kind == "imagenette") {
    const int64_t s = image_size ? image_size : 224;
    return std::make_shared<Compose>(std::vector<TransformPtr>{to_float(), random_resized_crop(s, s),
                                                               random_horizontal_flip(), normalize(n.mean, n.std)});
  }
  // CIFAR-10 and synthetic: RandomCrop(32, padding=4); Tiny-ImageNet: RandomCrop(64, padding=8).
  const int64_t s = image_size ? image_size : (kind == "tiny-imagenet" ? 64 : 32);
  const int64_t pad = kind == "tiny-imagenet" ? 8 : 4;
  return std::make_shared<Compose>(std::vector<TransformPtr>{random_crop(s, s, pad), random_horizontal_flip(),
                                                             to_float(), normalize(n.mean, n.std)});
}

std::shared_ptr<Compose> test_transform(const std::string& kind, int64_t image_size) {
  Normalization n = normalization_of(kind);
  if (kind == "imagenette") {
    const int64_t s = image_size ? image_size : 224;
    const int64_t r = s * 256 / 224;  // the ImageNet evaluation recipe: resize to 256, centre crop 224
    return std::make_shared<Compose>(
        std::vector<TransformPtr>{to_float(), resize(r, r), center_crop(s, s), normalize(n.mean, n.std)});
  }
  std::vector<TransformPtr> steps{to_float()};
  if (image_size) steps.push_back(resize(image_size, image_size));
  steps.push_back(normalize(n.mean, n.std));
  return std::make_shared<Compose>(std::move(steps));
}

}  // namespace dearest::data
