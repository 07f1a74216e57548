#include "quant/calibration.h"

#include <cmath>

#include "data/loader.h"
#include "data/subset.h"
#include "data/transforms.h"

namespace dearest::quant {

std::vector<Tensor> calibration_batches(const data::DataSpec& spec, const CalibOptions& o) {
  DEAREST_CHECK(o.size >= 1 && o.batch >= 1, "calibration: size and batch must be positive, got ", o.size, " and ", o.batch);
  DEAREST_CHECK(o.pool > 0 && o.pool <= 1, "calibration: pool must be in (0, 1], got ", o.pool);
  const std::string split = o.split.empty() ? data::train_split(spec.kind) : o.split;
  data::DatasetPtr ds = data::open_dataset(spec, split);
  const int64_t pool = std::max<int64_t>(1, int64_t(std::ceil(o.pool * double(ds->size()))));
  DEAREST_CHECK(pool >= o.size, "calibration: ", o.size, " images asked for but the pool (first ", o.pool * 100, "% of ",
                split, ") has ", pool, "; raise --calib-pool");
  ds = data::index_range(ds, 0, pool);
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.shuffle = true;
  lo.seed = o.seed;
  auto tf = o.augment ? data::train_transform(spec.kind) : data::test_transform(spec.kind);
  data::DataLoader loader(ds, tf, lo);
  std::vector<Tensor> out;
  const auto order = loader.order(0);
  int64_t taken = 0;
  for (int64_t b = 0; b < loader.num_batches() && taken < o.size; ++b) {
    data::Batch batch = loader.batch(0, b, order);
    Tensor x = batch.images;
    if (taken + x.size(0) > o.size) x = x.slice(0, 0, o.size - taken).contiguous();
    taken += x.size(0);
    out.push_back(x);
  }
  return out;
}

}  // namespace dearest::quant
