#include "data/loader.h"

#include <omp.h>

#include <cstring>

namespace dearest::data {

DataLoader::DataLoader(DatasetPtr dataset, TransformPtr transform, LoaderOptions opt)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), opt_(opt) {
  DEAREST_CHECK(dataset_ != nullptr, "DataLoader: no dataset");
  DEAREST_CHECK(opt_.batch_size >= 1, "DataLoader: batch size must be at least 1, got ", opt_.batch_size);
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::order(int64_t epoch) const {
  if (!opt_.shuffle) {
    std::vector<int64_t> o(size_t(dataset_->size()));
    for (int64_t i = 0; i < dataset_->size(); ++i) o[size_t(i)] = i;
    return o;
  }
  Rng rng(opt_.seed + 0x5A4D1E, uint64_t(epoch));
  return rng.permutation(dataset_->size());
}

Tensor DataLoader::sample(int64_t epoch, int64_t index) const {
  dataset_->check_index(index);
  Rng rng = sample_rng(opt_.seed, epoch, index);
  const SampleInfo info{index, dataset_->label(index)};
  Tensor img = dataset_->image(index);
  return transform_ ? transform_->apply(img, rng, info) : img;
}

Batch DataLoader::batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order) const {
  DEAREST_CHECK(b >= 0 && b < num_batches(), "DataLoader: batch ", b, " out of range [0, ", num_batches(), ")");
  const int64_t begin = b * opt_.batch_size;
  const int64_t n = std::min<int64_t>(opt_.batch_size, int64_t(order.size()) - begin);
  Batch out;
  out.epoch = epoch;
  out.number = b;
  out.indices.assign(order.begin() + begin, order.begin() + begin + n);
  std::vector<Tensor> items(static_cast<size_t>(n));
  std::vector<std::string> errors(static_cast<size_t>(n));
  // An exception must not leave an OpenMP region: each slot records its own error instead.
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t k = 0; k < n; ++k) {
    try {
      items[size_t(k)] = sample(epoch, out.indices[size_t(k)]).contiguous();
    } catch (const std::exception& e) {
      errors[size_t(k)] = e.what();
    }
  }
  for (int64_t k = 0; k < n; ++k)
    DEAREST_CHECK(errors[size_t(k)].empty(), errors[size_t(k)]);
  const Tensor& first = items[0];
  Shape shape = first.shape();
  shape.insert(shape.begin(), n);
  out.images = Tensor::empty(shape, first.dtype());
  out.labels = Tensor::empty({n}, DType::I32);
  const size_t bytes = first.nbytes();
  for (int64_t k = 0; k < n; ++k) {
    const Tensor& t = items[size_t(k)];
    DEAREST_CHECK(t.shape() == first.shape() && t.dtype() == first.dtype(), "DataLoader: sample ",
                  out.indices[size_t(k)], " of ", dataset_->describe(), " is ", t.describe(), " after the transform, but sample ",
                  out.indices[0], " is ", first.describe(), " (add a resize or crop to the transform)");
    std::memcpy(static_cast<char*>(out.images.raw_data()) + size_t(k) * bytes, t.raw_data(), bytes);
    out.labels.data<int32_t>()[k] = dataset_->label(out.indices[size_t(k)]);
  }
  return out;
}

DataLoader::Epoch::Epoch(const DataLoader* l, int64_t epoch, int64_t first)
    : loader_(l), epoch_(epoch), next_(first), order_(std::make_shared<const std::vector<int64_t>>(l->order(epoch))) {
  DEAREST_CHECK(first >= 0 && first <= l->num_batches(), "DataLoader: cannot start epoch ", epoch, " at batch ", first);
}

bool DataLoader::Epoch::next(Batch& out) {
  const int64_t total = loader_->num_batches();
  if (next_ >= total) return false;
  if (!loader_->opt_.prefetch) {
    out = loader_->batch(epoch_, next_++, *order_);
    return true;
  }
  // The task captures values only, so the Epoch may be moved while a batch is in flight.
  auto launch = [l = loader_, e = epoch_, order = order_](int64_t b) {
    return std::async(std::launch::async, [l, e, order, b] {
      omp_set_num_threads(1);  // this thread's own team only: it must not compete with the trainer's
      return l->batch(e, b, *order);
    });
  };
  if (!pending_.valid()) pending_ = launch(next_);
  out = pending_.get();  // rethrows a loading error here, in the caller's thread
  ++next_;
  if (next_ < total) pending_ = launch(next_);
  return true;
}

}  // namespace dearest::data
