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
                "\" in \"", spec, "\" (cifar10:PATH, tiny-imagenet:PATH, imagenette:PATH, synthetic[:N[:SEED]])");
  DEAREST_CHECK(kind == "synthetic" || !path.empty(), "--data: ", kind, " needs a folder: ", kind, ":PATH");
  DataSpec out{kind, path};
  if (kind != "synthetic" || path.empty()) return out;
  // synthetic:N or synthetic:N:SEED, both whole non-negative numbers (N positive)
  auto number = [&](const std::string& t, const char* what) -> uint64_t {
    DEAREST_CHECK(!t.empty() && t.find_first_not_of("0123456789") == std::string::npos && t.size() <= 18, "--data: ",
                  what, " in \"", spec, "\" is not a whole number: \"", t, "\" (synthetic[:N[:SEED]])");
    return std::stoull(t);
  };
  const size_t c2 = path.find(':');
  out.path = path.substr(0, c2);
  DEAREST_CHECK(number(out.path, "the number of images N") > 0, "--data: synthetic:N needs a positive number of images, got \"",
                out.path, "\"");
  if (c2 != std::string::npos) out.seed = number(path.substr(c2 + 1), "the SEED");
  return out;
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

DatasetPtr open_dataset(const DataSpec& spec, const std::string& split) {
  if (spec.kind == "cifar10") return open_cifar10(spec.path, split);
  if (spec.kind == "tiny-imagenet") return open_tiny_imagenet(spec.path, split);
  if (spec.kind == "imagenette") return open_imagenette(spec.path, split);
  SyntheticOptions o;
  o.seed = spec.seed;
  if (!spec.path.empty()) o.size = std::stoll(spec.path);  // checked by parse_data_spec
  if (split == "test") o.size = std::max<int64_t>(1, o.size / 5);
  return open_synthetic(split, o);
}

}  // namespace dearest::data
