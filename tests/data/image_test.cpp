#include "data/image.h"

#include <stb/stb_image_write.h>

#include "tests/data/data_test_util.h"

namespace dearest::data {
namespace {

using test::ScratchDir;

// A JPEG of `comp` channels (1 = grayscale) with a horizontal ramp, written by stb.
std::string jpeg_file(const ScratchDir& d, const std::string& name, int w, int h, int comp) {
  std::vector<uint8_t> px(size_t(w * h * comp));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < comp; ++c) px[size_t((y * w + x) * comp + c)] = uint8_t(x * 255 / (w - 1));
  const std::string path = d.path() + "/" + name;
  EXPECT_NE(stbi_write_jpg(path.c_str(), w, h, comp, px.data(), 95), 0);
  return path;
}

TEST(Image, DecodesJpegAndGrayscaleBecomesRgb) {
  ScratchDir d("image");
  Tensor rgb = read_image(jpeg_file(d, "rgb.jpg", 16, 8, 3));
  EXPECT_EQ(rgb.shape(), Shape({3, 8, 16}));
  Tensor gray = read_image(jpeg_file(d, "gray.jpg", 16, 8, 1));
  EXPECT_EQ(gray.shape(), Shape({3, 8, 16}));
  for (int64_t x = 0; x < 16; ++x) {
    EXPECT_EQ(gray.at({0, 4, x}), gray.at({1, 4, x}));
    EXPECT_EQ(gray.at({0, 4, x}), gray.at({2, 4, x}));
  }
  EXPECT_LT(gray.at({0, 4, 0}), 20);
  EXPECT_GT(gray.at({0, 4, 15}), 235);
}

TEST(Image, PngRoundTrip) {
  ScratchDir d("png");
  Tensor img = Rng(3).integers({3, 5, 7}, 0, 256).to(DType::U8);
  write_png(d.path() + "/a.png", img);
  EXPECT_TRUE(dearest::test::bitwise_equal(read_image(d.path() + "/a.png"), img));
  Tensor f = to_float(img);
  EXPECT_FLOAT_EQ(float(f.at({1, 2, 3})), float(img.at({1, 2, 3})) / 255.0f);
  write_png(d.path() + "/f.png", f);  // floats in [0, 1] round to the same bytes
  EXPECT_TRUE(dearest::test::bitwise_equal(read_image(d.path() + "/f.png"), img));
}

TEST(Image, BadFilesRaiseNamingTheFile) {
  ScratchDir d("image_bad");
  EXPECT_ERROR_CONTAINS(read_image(d.file("empty.JPEG", "")), "empty.JPEG", "empty file");
  EXPECT_ERROR_CONTAINS(read_image(d.file("junk.JPEG", "this is not a jpeg at all")), "junk.JPEG", "not a decodable image");
  std::string jpg = read_file(jpeg_file(d, "cut.jpg", 32, 32, 3));
  EXPECT_ERROR_CONTAINS(decode_image(jpg.substr(0, 20), "cut.jpg"), "cut.jpg", "not a decodable image");
  EXPECT_ERROR_CONTAINS(read_image(d.path() + "/missing.JPEG"), "missing.JPEG", "cannot open");
}

TEST(Image, BilinearResizeMatchesPyTorch) {
  // torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
  Tensor x = Tensor::from_vector<float>({0, 1, 2, 3}, {1, 2, 2});
  Tensor y = resize_bilinear(x, 4, 4);
  std::vector<double> expect = {0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3};
  EXPECT_LT(dearest::test::max_abs_diff(y, Tensor::from_vector<double>(expect, {1, 4, 4})), 1e-6);
  // Downsampling by 2 averages each 2x2 block's centre pair.
  Tensor z = resize_bilinear(Tensor::arange(0, 16).reshape({1, 4, 4}), 2, 2);
  EXPECT_EQ(z.to_vector(), std::vector<double>({2.5, 4.5, 10.5, 12.5}));
}

}  // namespace
}  // namespace dearest::data

namespace dearest::data {
namespace {

// Regression for a fuzzer finding: stb_image 2.27 writes past its Huffman table when a JPEG's DHT
// counts sum to more than 256. decode_rgb rejects such a file before stb parses it.
TEST(Image, RejectsJpegHuffmanTableOverflow) {
  std::string jpg;
  std::vector<uint8_t> px(16 * 16 * 3, 77);
  stbi_write_jpg_to_func([](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
  }, &jpg, 16, 16, 3, px.data(), 90);
  EXPECT_EQ(decode_image(jpg, "ok.jpg").shape(), Shape({3, 16, 16}));
  const size_t dht = jpg.find("\xFF\xC4");
  ASSERT_NE(dht, std::string::npos);
  for (int k = 0; k < 16; ++k) jpg[dht + 5 + size_t(k)] = char(0xFF);  // 16 x 255 = 4080 codes
  EXPECT_ERROR_CONTAINS(decode_image(jpg, "evil.jpg"), "evil.jpg", "corrupt JPEG", "4080 codes");
  // Formats other than JPEG and PNG are refused before any decoder runs.
  EXPECT_ERROR_CONTAINS(decode_image("BM" + std::string(60, '\0'), "x.bmp"), "x.bmp", "neither JPEG nor PNG");
}

TEST(Image, UpscaleNearestAndGrid) {
  Tensor a = Tensor::from_vector<float>({0.f, 1.f, 0.5f, 0.25f}, {1, 2, 2});
  Tensor u = upscale_nearest(a, 3);
  ASSERT_EQ(u.shape(), (Shape{1, 6, 6}));
  EXPECT_EQ(u.data<float>()[0 * 6 + 2], 0.f);   // (0, 2) comes from (0, 0)
  EXPECT_EQ(u.data<float>()[2 * 6 + 3], 1.f);   // (2, 3) from (0, 1)
  EXPECT_EQ(u.data<float>()[5 * 6 + 0], 0.5f);  // (5, 0) from (1, 0)
  EXPECT_EQ(u.data<float>()[4 * 6 + 5], 0.25f); // (4, 5) from (1, 1)
  Tensor g = image_grid({{a, a}, {u.slice(1, 0, 2).slice(2, 0, 2).contiguous()}}, 1);
  ASSERT_EQ(g.shape(), (Shape{1, 6, 6}));  // 2 rows and 2 columns of 2x2 with 1-pixel gutters
  EXPECT_EQ(g.data<float>()[0 * 6 + 4], 1.f);   // row 0, column 1, pixel (0, 1)
  EXPECT_EQ(g.data<float>()[2 * 6 + 0], 1.f);   // the gutter below row 0 is white
  EXPECT_EQ(g.data<float>()[3 * 6 + 3], 1.f);   // row 1 has one image: the rest stays white
  EXPECT_EQ(g.data<float>()[3 * 6 + 0], 0.f);   // row 1, pixel (0, 0) of the cropped upscale
  EXPECT_THROW(upscale_nearest(a, 0), Error);
  EXPECT_THROW(image_grid({{a}, {a, a}}), Error);
}

}  // namespace
}  // namespace dearest::data
