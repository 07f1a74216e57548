#include "data/contact_sheet.h"

#include "data/image.h"

namespace dearest::data {

void write_contact_sheet(const Dataset& ds, const Transform& transform, int64_t per_class, int64_t tile,
                         const std::string& path, int64_t max_classes, uint64_t seed, int64_t epoch) {
  DEAREST_CHECK(per_class >= 1 && tile >= 4, "contact sheet: per_class ", per_class, " and tile ", tile,
                " must be positive");
  const int64_t classes = std::min(ds.num_classes(), max_classes), gap = 2;
  std::vector<std::vector<int64_t>> picks(static_cast<size_t>(classes));
  for (int64_t i = 0; i < ds.size(); ++i) {
    if (ds.label(i) >= classes) continue;
    auto& p = picks[size_t(ds.label(i))];
    if (int64_t(p.size()) < per_class) p.push_back(i);
  }
  const int64_t H = classes * (tile + gap) + gap, W = per_class * (tile + gap) + gap;
  Tensor sheet = Tensor::full({3, H, W}, 1.0);  // white background and gaps
  for (int64_t c = 0; c < classes; ++c)
    for (size_t k = 0; k < picks[size_t(c)].size(); ++k) {
      const int64_t i = picks[size_t(c)][k];
      Rng rng = sample_rng(seed, epoch, i);
      Tensor img = transform.apply(ds.image(i), rng, {i, ds.label(i)});
      if (img.dtype() == DType::U8) img = to_float(img);
      DEAREST_CHECK(img.dim() == 3 && img.size(0) == 3, "contact sheet: transform gave ", img.describe());
      img = resize_bilinear(img, tile, tile);
      const int64_t y0 = gap + c * (tile + gap), x0 = gap + int64_t(k) * (tile + gap);
      sheet.slice(1, y0, y0 + tile).slice(2, x0, x0 + tile).copy_(img);
    }
  write_png(path, sheet);
}

}  // namespace dearest::data
