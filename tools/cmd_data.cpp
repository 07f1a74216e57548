// dearest data inspect --data KIND:PATH: what a dataset folder holds (counts per split and class,
// image sizes, what the loader found) and contact sheets of a few samples per class, as stored
// and as the training augmentation shows them.
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "data/contact_sheet.h"
#include "data/registry.h"
#include "data/transforms.h"
#include "tensor/json.h"
#include "tools/cli.h"

namespace dearest::cli {

namespace {

int inspect(const po::variables_map& vm) {
  const data::DataSpec spec = data::parse_data_spec(vm["data"].as<std::string>());
  const bool json = vm.count("json") > 0;
  const std::string out = vm.count("out") ? vm["out"].as<std::string>() : "inspect-" + spec.kind;
  const int64_t per_class = vm["per-class"].as<int64_t>();
  std::filesystem::create_directories(out);
  std::vector<std::string> splits = data::splits_of(spec.kind);
  if (vm.count("split")) splits = {vm["split"].as<std::string>()};
  Json summary = Json::object();
  summary.set("data", vm["data"].as<std::string>());
  Json jsplits = Json::object();
  for (const std::string& split : splits) {
    data::DatasetPtr ds = data::open_dataset(spec, split);
    // Image sizes of a sample of images (every image for small sets): a loader reads them anyway.
    std::map<std::string, int64_t> sizes;
    const int64_t step = std::max<int64_t>(1, ds->size() / 200);
    for (int64_t i = 0; i < ds->size(); i += step) {
      Tensor img = ds->image(i);
      sizes[std::to_string(img.size(1)) + "x" + std::to_string(img.size(2))]++;
    }
    const std::string sheet = out + "/contact_" + split + ".png";
    const std::string sheet_aug = out + "/contact_" + split + "_augmented.png";
    const int64_t tile = std::min<int64_t>(96, std::max<int64_t>(32, data::image_size_of(spec.kind)));
    const int64_t rows = vm["classes"].as<int64_t>();
    data::write_contact_sheet(*ds, *data::test_transform(spec.kind)->without_normalize()->deterministic_only(),
                              per_class, tile, sheet, rows);
    data::write_contact_sheet(*ds, *data::train_transform(spec.kind)->without_normalize(), per_class, tile, sheet_aug,
                              rows);
    std::vector<int64_t> counts = ds->class_counts();
    Json js = Json::object();
    js.set("description", ds->describe());
    js.set("images", ds->size());
    Json jc = Json::object();
    for (size_t c = 0; c < counts.size(); ++c) jc.set(ds->class_names()[c], counts[c]);
    js.set("class_counts", jc);
    Json jsz = Json::object();
    for (const auto& [k, v] : sizes) jsz.set(k, v);
    js.set("image_sizes_sampled", jsz);
    Json jr = Json::array();
    for (const auto& line : ds->report()) jr.push(line);
    js.set("report", jr);
    js.set("contact_sheet", sheet);
    js.set("contact_sheet_augmented", sheet_aug);
    jsplits.set(split, js);
    if (json) continue;
    std::cout << ds->describe() << "\n";
    for (const auto& line : ds->report()) std::cout << "  " << line << "\n";
    std::cout << "  image sizes (" << (step == 1 ? "all" : "every " + std::to_string(step) + "th") << "):";
    for (const auto& [k, v] : sizes) std::cout << " " << k << " x" << v;
    std::cout << "\n  per class:";
    const size_t shown = std::min<size_t>(counts.size(), 20);
    for (size_t c = 0; c < shown; ++c) std::cout << (c % 5 ? "  " : "\n    ") << std::setw(3) << c << " " << std::left
                                              << std::setw(22) << ds->class_names()[c].substr(0, 22) << std::right
                                              << std::setw(6) << counts[c];
    if (counts.size() > shown) {
      int64_t lo = *std::min_element(counts.begin(), counts.end()), hi = *std::max_element(counts.begin(), counts.end());
      std::cout << "\n    ... " << counts.size() - shown << " more classes (counts " << lo << ".." << hi << ")";
    }
    std::cout << "\n  contact sheets: " << sheet << ", " << sheet_aug << "\n\n";
  }
  summary.set("splits", jsplits);
  if (json) std::cout << summary.dump(2) << "\n";
  return 0;
}

}  // namespace

Command data_command() {
  return {"data", "inspect a dataset: `dearest data inspect --data cifar10:PATH` (counts, sizes, contact sheets)",
          [](po::options_description& d) {
            d.add_options()("action", po::value<std::string>()->default_value("inspect"), "inspect (the only action)")
                ("data", po::value<std::string>()->required(),
                 "cifar10:PATH, tiny-imagenet:PATH, imagenette:PATH or synthetic[:N[:SEED]]")
                ("split", po::value<std::string>(), "one split only (default: all)")
                ("per-class", po::value<int64_t>()->default_value(8), "samples per class on the contact sheets")
                ("classes", po::value<int64_t>()->default_value(20), "rows (classes) on the contact sheets, from class 0")
                ("out", po::value<std::string>(), "folder for the contact sheets (default inspect-KIND)")
                ("json", "print the summary as JSON");
          },
          [](const po::variables_map& vm) {
            const std::string a = vm["action"].as<std::string>();
            DEAREST_CHECK(a == "inspect", "data: unknown action \"", a, "\" (inspect)");
            return inspect(vm);
          },
          {"action"}};
}

}  // namespace dearest::cli
