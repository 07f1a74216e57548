#include "data/registry.h"

#include "data/cifar10.h"
#include "data/imagenette.h"
#include "data/synthetic.h"
#include "data/tinyimagenet.h"

namespace dearest::data {

DataSpec parse_data_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  std::string kind = spec.substr(0, colon), path = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "cifar" || kind == "cifar-10") kind = "cifar10";
  if (kind == "tiny" || kind == "tinyimagenet" || kind == "tiny-imagenet-200") kind = "tiny-imagenet";
  DEAREST_CHECK(kind == "cifar10" || kind == "tiny-imagenet" || kind == "imagenette" || kind == "synthetic",
                "--data: unknown dataset \"", kind,
                "\" in \"", spec, "\" (cifar10:PATH, tiny-imagenet:PATH, imagenette:PATH, synthetic[:N])");
  DEAREST_CHECK(kind == "synthetic" || !path.empty(), "--data: ", kind, " needs a folder: ", kind, ":PATH");
  return {kind, path};
}

std::vector<std::string> splits_of(const std::string& kind) {
  if (kind == "cifar10" || kind == "synthetic") return {"train", "test"};
  return {"train", "val"};
}
std::string train_split(const std::string&) { return "train"; }
std::string test_split(const std::string& kind) { return splits_of(kind)[1]; }

int64_t image_size_of(const std::string& kind) {
  if (kind == "tiny-imagenet") return 64;
  if (kind == "imagenette") return 224;
  return 32;
}

DatasetPtr open_dataset(const DataSpec& spec, const std::string& split, uint64_t synthetic_seed) {
  if (spec.kind == "cifar10") return open_cifar10(spec.path, split);
  if (spec.kind == "tiny-imagenet") return open_tiny_imagenet(spec.path, split);
  if (spec.kind == "imagenette") return open_imagenette(spec.path, split);
  SyntheticOptions o;
  o.seed = synthetic_seed;
  if (!spec.path.empty()) {
    try {
      size_t used = 0;
      o.size = std::stoll(spec.path, &used);
      DEAREST_CHECK(used == spec.path.size() && o.size > 0, "");
    } catch (const std::exception&) {
      fail("--data: synthetic:N needs a positive number of images, got \"", spec.path, "\"");
    }
  }
  if (split == "test") o.size = std::max<int64_t>(1, o.size / 5);
  return open_synthetic(split, o);
}

}  // namespace dearest::data
