// dearest train: trains a model on a dataset with the reference augmentation, checkpointing every
// epoch into --out and resuming from there when rerun; writes the final model, the log, the
// learning curve (SVG) and the effective configuration (rerun it with --config OUT/config.ini).
// dearest eval: top-1 and loss of a model file on a dataset split.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "data/loader_source.h"
#include "data/registry.h"
#include "data/subset.h"
#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "nn/init.h"
#include "nn/trainer.h"
#include "tensor/json.h"
#include "tensor/runtime.h"
#include "tools/cli.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace {

std::shared_ptr<data::DataLoader> make_loader(const data::DatasetPtr& ds, const data::TransformPtr& tf, int64_t batch,
                                              bool shuffle, uint64_t seed) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = shuffle;
  o.seed = seed;
  return std::make_shared<data::DataLoader>(ds, tf, o);
}

std::unique_ptr<nn::Optimizer> make_optimizer(const po::variables_map& vm, nn::Module& model) {
  return nn::make_optimizer(vm["optimizer"].as<std::string>(), model, vm["lr"].as<double>(), vm["momentum"].as<double>(),
                            vm["wd"].as<double>(), vm["nesterov"].as<bool>(), "--optimizer");
}

// Classes and input size come from the dataset unless the spec says otherwise.
nn::ModelSpec spec_for(const std::string& text, const data::DatasetPtr& ds, const std::string& kind) {
  nn::ModelSpec s = nn::ModelSpec::parse(text);
  s.opts.emplace("classes", std::to_string(ds->num_classes()));
  s.opts.emplace("input", std::to_string(data::image_size_of(kind)));
  if (kind == "imagenette" && s.arch == "resnet18") s.opts.emplace("stem", "imagenet");
  return s;
}

void write_curve(const std::string& path, const std::string& title, const std::vector<nn::EpochStats>& h) {
  Series train{"train top-1", {}}, test{"test top-1", {}}, loss{"train loss / 3", {}};
  for (const auto& s : h) {
    train.points.emplace_back(double(s.epoch + 1), 100 * s.train_top1);
    if (s.test_top1 >= 0) test.points.emplace_back(double(s.epoch + 1), 100 * s.test_top1);
    loss.points.emplace_back(double(s.epoch + 1), 100 * s.train_loss / 3);
  }
  write_line_chart(path, title, "epoch", "top-1 (%)  |  loss / 3 (x100)", {train, test, loss}, 0, 100);
}

int train(const po::variables_map& vm) {
  const data::DataSpec dspec = data::parse_data_spec(vm["data"].as<std::string>());
  const std::string out = vm["out"].as<std::string>();
  const uint64_t seed = vm["seed"].as<uint64_t>();
  data::DatasetPtr train_ds = data::open_dataset(dspec, data::train_split(dspec.kind));
  data::DatasetPtr test_ds = data::open_dataset(dspec, data::test_split(dspec.kind));
  if (vm.count("train-subset")) train_ds = data::index_range(train_ds, 0, std::min(train_ds->size(), vm["train-subset"].as<int64_t>()));
  nn::ModelSpec spec = spec_for(vm["model"].as<std::string>(), train_ds, dspec.kind);
  nn::set_init_seed(seed);
  nn::ModulePtr model = nn::build_model(spec);
  auto opt = make_optimizer(vm, *model);
  const int64_t batch = vm["batch"].as<int64_t>();
  auto tf_train = vm["no-augment"].as<bool>() ? data::test_transform(dspec.kind) : data::train_transform(dspec.kind);
  if (!vm["jpeg-augment"].as<std::string>().empty()) tf_train = tf_train->with_front(data::parse_random_jpeg(vm["jpeg-augment"].as<std::string>(), "--jpeg-augment"));
  data::LoaderSource train_src(make_loader(train_ds, tf_train, batch, true, seed));
  data::LoaderSource test_src(make_loader(test_ds, data::test_transform(dspec.kind), std::max<int64_t>(batch, 256), false, seed));
  nn::TrainOptions to;
  to.epochs = vm["epochs"].as<int64_t>();
  to.out_dir = out;
  to.resume = !vm["no-resume"].as<bool>();
  to.progress = !vm["quiet"].as<bool>();
  to.seed = seed;
  to.label_smoothing = vm["label-smoothing"].as<double>();
  to.eval_every = vm["eval-every"].as<int64_t>();
  to.max_steps_per_epoch = vm["max-steps"].as<int64_t>();
  nn::Trainer trainer(*model, spec, *opt, nn::Schedule::parse(vm["schedule"].as<std::string>()), to);
  const data::Normalization norm = data::normalization_of(dspec.kind);
  auto norm_str = [](const std::array<float, 3>& v) {
    return std::to_string(v[0]) + "," + std::to_string(v[1]) + "," + std::to_string(v[2]);
  };
  trainer.extra_metadata = {{"dataset", vm["data"].as<std::string>()},
                            {"classes", std::to_string(train_ds->num_classes())},
                            {"normalization_mean", norm_str(norm.mean)},
                            {"normalization_std", norm_str(norm.std)},
                            {"train_config", config_text(vm)},
                            {"runtime", runtime_manifest_json()}};
  std::filesystem::create_directories(out);
  {
    std::ofstream cfg(out + "/config.ini");
    cfg << "# dearest train --config " << out << "/config.ini repeats this run\n" << config_text(vm);
  }
  std::cerr << "training " << spec.str() << " on " << train_ds->describe() << "\n  " << tf_train->describe()
            << "\n  runtime " << runtime_manifest_json() << "\n";
  auto t0 = std::chrono::steady_clock::now();
  std::vector<nn::EpochStats> hist = trainer.fit(train_src, &test_src);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nn::Metadata meta = trainer.extra_metadata;
  meta["epochs"] = std::to_string(to.epochs);
  nn::save_model(out + "/model.safetensors", *model, spec, meta);
  if (!hist.empty()) write_curve(out + "/curve.svg", spec.str() + " on " + dspec.kind, hist);
  Json sum = Json::object();
  sum.set("model", spec.str());
  sum.set("data", vm["data"].as<std::string>());
  sum.set("epochs", to.epochs);
  sum.set("seconds_this_invocation", secs);
  double total_secs = 0;
  for (const auto& h : hist) total_secs += h.seconds;
  sum.set("train_seconds_all_epochs", total_secs);
  if (!hist.empty()) {
    sum.set("final_train_top1", hist.back().train_top1);
    sum.set("final_test_top1", hist.back().test_top1);
    sum.set("fingerprint", hist.back().fingerprint);
  }
  sum.set("runtime", Json::parse(runtime_manifest_json()));
  {
    std::ofstream s(out + "/summary.json");
    s << sum.dump(2) << "\n";
  }
  std::cout << sum.dump(2) << "\n";
  return 0;
}

int eval(const po::variables_map& vm) {
  nn::LoadedModel lm = nn::load_model(vm["model"].as<std::string>(), vm.count("arch") ? vm["arch"].as<std::string>() : "");
  const data::DataSpec dspec = data::parse_data_spec(vm["data"].as<std::string>());
  const std::string split = vm.count("split") ? vm["split"].as<std::string>() : data::test_split(dspec.kind);
  data::DatasetPtr ds = data::open_dataset(dspec, split);
  if (vm.count("range")) {
    const std::string r = vm["range"].as<std::string>();
    const size_t colon = r.find(':');
    DEAREST_CHECK(colon != std::string::npos, "--range: expected A:B (indices [A, B)), got \"", r, "\"");
    ds = data::index_range(ds, std::stoll(r.substr(0, colon)), std::stoll(r.substr(colon + 1)));
  }
  auto tf = data::test_transform(dspec.kind);
  if (vm.count("jpeg")) tf = tf->with_front(data::jpeg(vm["jpeg"].as<int>()));
  data::LoaderSource src(make_loader(ds, tf, vm["batch"].as<int64_t>(), false, 0));
  auto t0 = std::chrono::steady_clock::now();
  nn::EvalResult r = nn::evaluate(*lm.model, src, !vm.count("json"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Json j = Json::object();
  j.set("model", vm["model"].as<std::string>());
  j.set("arch", lm.spec.str());
  j.set("data", ds->describe());
  j.set("top1", r.top1);
  j.set("loss", r.loss);
  j.set("samples", r.samples);
  j.set("seconds", secs);
  j.set("fingerprint", nn::fingerprint(*lm.model));
  if (vm.count("json")) std::cout << j.dump(2) << "\n";
  else
    std::cout << lm.spec.str() << " on " << ds->describe() << ": top-1 " << 100 * r.top1 << "%, loss " << r.loss
              << " (" << r.samples << " images, " << secs << " s)\n";
  return 0;
}

}  // namespace

Command train_command() {
  return {"train", "train a model: --data cifar10:PATH --model resnet18:width=16 --epochs 30 --out runs/r18",
          [](po::options_description& d) {
            d.add_options()("data", po::value<std::string>()->required(), "cifar10:PATH, tiny-imagenet:PATH, imagenette:PATH, synthetic[:N[:SEED]]")
                ("model", po::value<std::string>()->default_value("resnet18:width=16"), "architecture spec (see docs/nn.md)")
                ("out", po::value<std::string>()->required(), "run folder: checkpoints, log, curve, final model")
                ("epochs", po::value<int64_t>()->default_value(30), "epochs")
                ("batch", po::value<int64_t>()->default_value(128), "batch size")
                ("optimizer", po::value<std::string>()->default_value("sgd"), "sgd, adam or adamw")
                ("lr", po::value<double>()->default_value(0.1, "0.1"), "base learning rate")
                ("momentum", po::value<double>()->default_value(0.9, "0.9"), "SGD momentum")
                ("nesterov", po::value<bool>()->default_value(false)->implicit_value(true), "SGD Nesterov momentum (true/false)")
                ("wd", po::value<double>()->default_value(5e-4, "5e-4"), "weight decay")
                ("schedule", po::value<std::string>()->default_value("cosine"),
                 "constant | step:SIZE[:G] | multistep:M1/M2[:G] | cosine[:MIN] | exp:G, + +warmup:N[:START]")
                ("label-smoothing", po::value<double>()->default_value(0.0, "0.0"), "cross-entropy label smoothing")
                ("seed", po::value<uint64_t>()->default_value(0), "seed of initialisation, data order, augmentation, dropout")
                ("eval-every", po::value<int64_t>()->default_value(1), "evaluate on the test split every N epochs (0 = never)")
                ("max-steps", po::value<int64_t>()->default_value(0), "at most N steps per epoch (0 = all)")
                ("train-subset", po::value<int64_t>(), "use only the first N training images")
                ("no-augment", po::value<bool>()->default_value(false)->implicit_value(true), "train without augmentation (true/false)")
                ("jpeg-augment", po::value<std::string>()->default_value(""),
                 "also re-encode training images as JPEG: P:QMIN:QMAX (probability, quality range), e.g. 0.5:60:90")
                ("no-resume", po::value<bool>()->default_value(false)->implicit_value(true), "start over even if OUT has a checkpoint")
                ("quiet", po::value<bool>()->default_value(false)->implicit_value(true), "no progress on stderr");
          },
          train};
}

Command eval_command() {
  return {"eval", "evaluate a model file: --model M.safetensors --data cifar10:PATH [--split test]",
          [](po::options_description& d) {
            d.add_options()("model", po::value<std::string>()->required(), "model file (safetensors)")
                ("arch", po::value<std::string>(), "architecture, for files without dearest metadata")
                ("data", po::value<std::string>()->required(), "dataset spec")
                ("split", po::value<std::string>(), "split (default: the test split)")
                ("range", po::value<std::string>(), "only images [A, B) of the split, as A:B")
                ("jpeg", po::value<int>(), "re-encode every image as JPEG at this quality (1..100) before evaluating")
                ("batch", po::value<int64_t>()->default_value(256), "batch size")
                ("json", "print JSON");
          },
          eval};
}

}  // namespace dearest::cli
