#include "data/image.h"

#include "data/image_decode.h"

#include <stb/stb_image_write.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace dearest::data {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DEAREST_CHECK(in.good(), path, ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  DEAREST_CHECK(!in.bad(), path, ": read error");
  return ss.str();
}

Tensor decode_image(const std::string& bytes, const std::string& name) {
  RgbImage rgb = decode_rgb(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
  const int64_t h = rgb.height, w = rgb.width, plane = h * w;
  Tensor out = Tensor::empty({3, h, w}, DType::U8);
  uint8_t* o = out.data<uint8_t>();
  for (int64_t i = 0; i < plane; ++i)  // HWC -> CHW
    for (int k = 0; k < 3; ++k) o[k * plane + i] = rgb.hwc[size_t(i * 3 + k)];
  return out;
}

Tensor read_image(const std::string& path) { return decode_image(read_file(path), path); }

void write_png(const std::string& path, const Tensor& image_in) {
  Tensor img = image_in.contiguous();
  DEAREST_CHECK(img.dim() == 3 && (img.size(0) == 3 || img.size(0) == 1), "write_png: ", path,
                ": expected an image [3 or 1, H, W], got ", img.describe());
  const int64_t c = img.size(0), h = img.size(1), w = img.size(2);
  std::vector<uint8_t> hwc(size_t(h * w * 3));
  std::vector<double> v = img.to_vector();
  const bool is_float = is_floating(img.dtype());
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < 3; ++k) {
        double p = v[size_t(((c == 1 ? 0 : k) * h + y) * w + x)];
        if (is_float) p = std::min(1.0, std::max(0.0, p)) * 255.0 + 0.5;
        hwc[size_t((y * w + x) * 3 + k)] = uint8_t(std::min(255.0, std::max(0.0, p)));
      }
  const std::string tmp = path + ".tmp";
  DEAREST_CHECK(stbi_write_png(tmp.c_str(), int(w), int(h), 3, hwc.data(), int(w * 3)) != 0, "write_png: cannot write ",
                tmp);
  std::filesystem::rename(tmp, path);
}

Tensor jpeg_round_trip(const Tensor& image_u8, int quality) {
  Tensor img = image_u8.contiguous();
  DEAREST_CHECK(img.dim() == 3 && img.size(0) == 3 && img.dtype() == DType::U8, "jpeg_round_trip: expected u8 [3, H, W], got ",
                img.describe());
  DEAREST_CHECK(quality >= 1 && quality <= 100, "jpeg_round_trip: quality must be in 1..100, got ", quality);
  const int64_t h = img.size(1), w = img.size(2), plane = h * w;
  std::vector<uint8_t> hwc(size_t(plane * 3));
  const uint8_t* s = img.data<uint8_t>();
  for (int64_t i = 0; i < plane; ++i)
    for (int k = 0; k < 3; ++k) hwc[size_t(i * 3 + k)] = s[k * plane + i];
  std::string bytes;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size)); };
  DEAREST_CHECK(stbi_write_jpg_to_func(sink, &bytes, int(w), int(h), 3, hwc.data(), quality) != 0,
                "jpeg_round_trip: the encoder failed on a ", w, "x", h, " image");
  return decode_image(bytes, "jpeg_round_trip");
}

Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w) {
  Tensor img = image.contiguous();
  DEAREST_CHECK(img.dim() == 3 && img.dtype() == DType::F32, "resize_bilinear: expected f32 [C, H, W], got ",
                img.describe());
  DEAREST_CHECK(out_h >= 1 && out_w >= 1, "resize_bilinear: output size ", out_h, "x", out_w);
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
  Tensor out = Tensor::empty({C, out_h, out_w});
  const float* src = img.data<float>();
  float* dst = out.data<float>();
  const double sh = double(H) / out_h, sw = double(W) / out_w;
  // Source coordinate of each output pixel centre, clamped at the border as PyTorch does.
  auto axis = [](int64_t o, double scale, int64_t n, int64_t& i0, int64_t& i1, float& f) {
    double s = (o + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    i0 = std::min<int64_t>(int64_t(s), n - 1);
    i1 = std::min<int64_t>(i0 + 1, n - 1);
    f = float(s - double(i0));
  };
  for (int64_t y = 0; y < out_h; ++y) {
    int64_t y0, y1;
    float fy;
    axis(y, sh, H, y0, y1, fy);
    for (int64_t x = 0; x < out_w; ++x) {
      int64_t x0, x1;
      float fx;
      axis(x, sw, W, x0, x1, fx);
      for (int64_t c = 0; c < C; ++c) {
        const float* p = src + c * H * W;
        const float top = p[y0 * W + x0] * (1 - fx) + p[y0 * W + x1] * fx;
        const float bot = p[y1 * W + x0] * (1 - fx) + p[y1 * W + x1] * fx;
        dst[(c * out_h + y) * out_w + x] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

Tensor to_float(const Tensor& image_u8) {
  DEAREST_CHECK(image_u8.dtype() == DType::U8, "to_float: expected a u8 image, got ", image_u8.describe());
  Tensor src = image_u8.contiguous();
  Tensor out = Tensor::empty(src.shape());
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  for (int64_t i = 0; i < src.numel(); ++i) d[i] = float(s[i]) / 255.0f;
  return out;
}

Tensor upscale_nearest(const Tensor& image, int64_t f) {
  DEAREST_CHECK(image.dim() == 3 && image.dtype() == DType::F32, "upscale_nearest: expected f32 [C, H, W]");
  DEAREST_CHECK(f >= 1, "upscale_nearest: the factor must be at least 1, got ", f);
  const Tensor img = image.contiguous();
  const int64_t C = img.size(0), h = img.size(1), w = img.size(2);
  Tensor out = Tensor::zeros({C, h * f, w * f});
  const float* s = img.data<float>();
  float* d = out.data<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < h * f; ++y)
      for (int64_t x = 0; x < w * f; ++x) d[(c * h * f + y) * w * f + x] = s[(c * h + y / f) * w + x / f];
  return out;
}

Tensor image_grid(const std::vector<std::vector<Tensor>>& rows, int64_t g) {
  DEAREST_CHECK(!rows.empty() && !rows[0].empty(), "image_grid: no images");
  const Tensor& first = rows[0][0];
  DEAREST_CHECK(first.dim() == 3 && first.dtype() == DType::F32, "image_grid: expected f32 [C, H, W] images");
  const int64_t C = first.size(0), h = first.size(1), w = first.size(2), n = int64_t(rows[0].size());
  Tensor grid = Tensor::zeros({C, int64_t(rows.size()) * (h + g), n * (w + g)});
  grid.fill_(1);
  float* gp = grid.data<float>();
  const int64_t GW = grid.size(2), GH = grid.size(1);
  for (size_t r = 0; r < rows.size(); ++r) {
    DEAREST_CHECK(int64_t(rows[r].size()) <= n, "image_grid: row ", r, " is longer than the first");
    for (size_t i = 0; i < rows[r].size(); ++i) {
      const Tensor im = rows[r][i].contiguous();
      DEAREST_CHECK(im.dim() == 3 && im.size(0) == C && im.size(1) == h && im.size(2) == w,
                    "image_grid: every image must be [", C, ", ", h, ", ", w, "]");
      const float* s = im.data<float>();
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x)
            gp[(c * GH + int64_t(r) * (h + g) + y) * GW + int64_t(i) * (w + g) + x] = s[(c * h + y) * w + x];
    }
  }
  return grid;
}

}  // namespace dearest::data
