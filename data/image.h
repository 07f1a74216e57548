// Image files and pixel operations shared by the loaders, transforms and reports. Images are
// tensors [3, H, W]: u8 as decoded, f32 in [0, 1] once converted.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dearest::data {

// The whole file as bytes; throws naming the path when it cannot be read.
std::string read_file(const std::string& path);
// JPEG or PNG (anything stb_image reads) to u8 [3, H, W]; grayscale and RGBA become RGB.
// `name` is used in errors ("<name>: not a decodable image: <reason>").
Tensor decode_image(const std::string& bytes, const std::string& name);
Tensor read_image(const std::string& path);
// Writes u8 [3, H, W], or f32 [3, H, W] clamped to [0, 1], as PNG (via a temporary name).
void write_png(const std::string& path, const Tensor& image);

// Encodes u8 [3, H, W] as a baseline JPEG at `quality` (1..100; stb_image_write, 4:2:0 chroma
// below 91 as libjpeg's defaults) and decodes it again: the loss a JPEG copy of a dataset carries.
Tensor jpeg_round_trip(const Tensor& image_u8, int quality);

// Nearest-neighbour upscaling of f32 [C, H, W] by an integer factor: small images made visible.
Tensor upscale_nearest(const Tensor& image, int64_t factor);

// f32 images [C, H, W] of one size tiled in rows (each row as long as the first), with a white
// gutter of `gutter` pixels: a figure of many small images.
Tensor image_grid(const std::vector<std::vector<Tensor>>& rows, int64_t gutter = 2);

// Bilinear resize of f32 [C, H, W], half-pixel centres (torch.nn.functional.interpolate with
// mode="bilinear", align_corners=False, no antialiasing).
Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w);
// u8 -> f32 in [0, 1] (x / 255), the ToTensor of the reference code.
Tensor to_float(const Tensor& image_u8);

}  // namespace dearest::data
