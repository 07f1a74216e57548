// dearest explain gradcam|tsne: what the models look at and how they arrange the images, side by
// side (the EFRAP supplementary's Figures 4 and 5): Grad-CAM heatmaps of triggered test images,
// and t-SNE maps of the penultimate features of clean and triggered images, for each model given
// (float or quantized files: typically the standard quantized model and EFRAP's).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "attacks/judge.h"
#include "data/image.h"
#include "data/registry.h"
#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "nn/gradcam.h"
#include "nn/tsne.h"
#include "quant/serialize.h"
#include "tensor/rng.h"
#include "tools/backdoor_options.h"
#include "tools/cli.h"
#include "tools/defend_common.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace {

namespace fs = std::filesystem;

struct Loaded {
  std::string file, label;
  nn::ModelSpec spec;
  nn::ModulePtr model;
  std::unique_ptr<quant::QuantizedModel> q;  // owns the quantized model's state
};

Loaded load_any(const std::string& file, const std::string& label) {
  Loaded l;
  l.file = file;
  l.label = label;
  if (quant::is_quantized_file(file)) {
    l.q = quant::load_quantized(file).model;
    l.spec = l.q->spec();
    l.model = l.q->model_ptr();
  } else {
    nn::LoadedModel lm = nn::load_model(file);
    l.spec = lm.spec;
    l.model = lm.model;
  }
  l.model->eval();
  return l;
}

// Images in [0, 1] [N, 3, H, W] and their labels; `stamp` adds the trigger.
Tensor images_of(const data::DatasetPtr& ds, const std::vector<int64_t>& idx, const data::TransformPtr& tf,
                 const attacks::TriggerPtr& stamp) {
  std::vector<Tensor> v;
  Rng rng(0);
  for (int64_t i : idx) {
    Tensor img = tf->apply(ds->get(i).image, rng, {});
    if (stamp) img = stamp->apply(img);
    v.push_back(img.reshape({1, img.size(0), img.size(1), img.size(2)}));
  }
  return cat(v, 0);
}

Tensor normalized(const Tensor& x, const std::string& kind) {
  const data::Normalization nz = data::normalization_of(kind);
  Tensor y = x.contiguous().clone();
  const int64_t n = y.size(0), hw = y.size(2) * y.size(3);
  float* p = y.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t k = 0; k < hw; ++k) {
        float& v = p[(i * 3 + c) * hw + k];
        v = (v - nz.mean[size_t(c)]) / nz.std[size_t(c)];
      }
  return y;
}

std::vector<int32_t> predictions(nn::Module& m, const Tensor& x) {
  NoGradGuard ng;
  const Tensor a = argmax(m(x), 1).contiguous();
  return std::vector<int32_t>(a.data<int32_t>(), a.data<int32_t>() + a.numel());
}

// Heat colours (blue -> red) blended half and half with the image.
Tensor overlay(const Tensor& image, const float* heat) {
  Tensor out = image.contiguous().clone();
  const int64_t hw = out.size(1) * out.size(2);
  float* p = out.data<float>();
  for (int64_t k = 0; k < hw; ++k) {
    const float h = heat[k];
    const float rgb[3] = {std::clamp(1.5f - std::fabs(4 * h - 3), 0.f, 1.f), std::clamp(1.5f - std::fabs(4 * h - 2), 0.f, 1.f),
                          std::clamp(1.5f - std::fabs(4 * h - 1), 0.f, 1.f)};
    for (int c = 0; c < 3; ++c) p[c * hw + k] = 0.5f * p[c * hw + k] + 0.5f * rgb[c];
  }
  return out;
}

int explain(const po::variables_map& vm) {
  const std::string what = vm["what"].as<std::string>(), out = vm["out"].as<std::string>();
  DEAREST_CHECK(what == "gradcam" || what == "tsne", "explain: expected gradcam or tsne, got \"", what, "\"");
  const std::vector<std::string> files = split_list(vm["model"].as<std::string>());
  DEAREST_CHECK(!files.empty(), "--model: give one or more model files, comma separated");
  std::vector<std::string> labels = vm.count("labels") ? split_list(vm["labels"].as<std::string>()) : files;
  DEAREST_CHECK(labels.size() == files.size(), "--labels: ", labels.size(), " labels for ", files.size(), " models");
  const attacks::JudgeOptions jo = backdoor_options(vm, files[0]);
  std::vector<Loaded> models;
  for (size_t i = 0; i < files.size(); ++i) models.push_back(load_any(files[i], labels[i]));
  fs::create_directories(out);
  const data::DatasetPtr test = data::open_dataset(jo.data, data::test_split(jo.data.kind));
  const auto tf = data::test_transform(jo.data.kind)->without_normalize();
  const int64_t want = jo.images > 0 ? jo.images : what == "gradcam" ? 8 : 300;
  std::vector<int64_t> clean_idx, asr_idx;
  for (int64_t i = 0; i < test->size() && (int64_t(clean_idx.size()) < want || int64_t(asr_idx.size()) < want); ++i) {
    if (int64_t(clean_idx.size()) < want) clean_idx.push_back(i);
    if (int64_t(asr_idx.size()) < want && test->get(i).label != jo.target) asr_idx.push_back(i);
  }
  const Tensor trig = images_of(test, asr_idx, tf, jo.trigger);
  Json summary = Json::object();
  summary.set("what", what);
  summary.set("trigger", jo.trigger->describe());
  summary.set("target", int64_t(jo.target));
  Json per = Json::array();

  if (what == "gradcam") {
    // One row of triggered images, then one row of heatmaps per model (for the class it predicts).
    const Tensor xin = normalized(trig, jo.data.kind);
    const int64_t n = trig.size(0), f = trig.size(2) < 64 ? 4 : 1;
    std::vector<std::vector<Tensor>> rows(1 + models.size());
    for (int64_t i = 0; i < n; ++i) rows[0].push_back(data::upscale_nearest(trig.select(0, i), f));
    for (size_t m = 0; m < models.size(); ++m) {
      const std::string layer = vm.count("layer") ? vm["layer"].as<std::string>() : nn::gradcam_layer(*models[m].model, models[m].spec);
      const std::vector<int32_t> pred = predictions(*models[m].model, xin);
      const Tensor heat = nn::grad_cam(*models[m].model, layer, xin, pred);
      Json j = Json::object();
      j.set("model", models[m].file);
      j.set("label", models[m].label);
      j.set("layer", layer);
      Json p = Json::array();
      int64_t to_target = 0;
      for (int64_t i = 0; i < n; ++i) {
        p.push(int64_t(pred[size_t(i)]));
        to_target += pred[size_t(i)] == jo.target;
        rows[m + 1].push_back(data::upscale_nearest(overlay(trig.select(0, i), heat.data<float>() + i * heat.size(1) * heat.size(2)), f));
      }
      j.set("predictions", p);
      j.set("sent_to_target", to_target);
      per.push(j);
    }
    const Tensor grid = data::image_grid(rows);
    data::write_png(out + "/gradcam.png", grid);
    std::printf("%s/gradcam.png: row 1 the triggered test images; then one row per model:\n", out.c_str());
    for (size_t m = 0; m < models.size(); ++m)
      std::printf("  row %zu: %s (%ld of %ld sent to the target class %d)\n", m + 2, models[m].label.c_str(),
                  long(per.items()[m]["sent_to_target"].as_int()), long(n), jo.target);
  } else {
    const Tensor clean = images_of(test, clean_idx, tf, nullptr);
    std::vector<int32_t> labels_clean;
    for (int64_t i : clean_idx) labels_clean.push_back(test->get(i).label);
    const Tensor both = normalized(cat({clean, trig}, 0), jo.data.kind);
    nn::TsneOptions to;
    to.perplexity = vm["perplexity"].as<double>();
    to.iterations = vm["tsne-iterations"].as<int>();
    for (size_t m = 0; m < models.size(); ++m) {
      const Tensor feats = nn::penultimate_features(*models[m].model, both);
      const nn::TsneResult r = nn::tsne(feats, to);
      std::vector<PointGroup> groups;
      int32_t classes = 0;
      for (int32_t l : labels_clean) classes = std::max(classes, l + 1);
      for (int32_t c = 0; c < classes; ++c) groups.push_back({"class " + std::to_string(c), {}, false});
      groups.push_back({"triggered", {}, true});
      for (size_t i = 0; i < r.points.size(); ++i) {
        const auto& p = r.points[i];
        if (i < labels_clean.size())
          groups[size_t(labels_clean[i])].points.emplace_back(p[0], p[1]);
        else
          groups.back().points.emplace_back(p[0], p[1]);
      }
      char name[32];
      std::snprintf(name, sizeof name, "tsne-%zu.svg", m + 1);
      write_scatter(out + "/" + name, "t-SNE of penultimate features: " + models[m].label, groups);
      Json j = Json::object();
      j.set("model", models[m].file);
      j.set("label", models[m].label);
      j.set("figure", std::string(name));
      j.set("kl", r.kl);
      per.push(j);
      std::printf("%s/%s: %s (KL %.3f)\n", out.c_str(), name, models[m].label.c_str(), r.kl);
    }
  }
  summary.set("models", per);
  write_text(out + "/" + what + ".json", summary.dump(2) + "\n");
  return 0;
}

}  // namespace

Command explain_command() {
  return {"explain", "Grad-CAM heatmaps or t-SNE maps of triggered images, model beside model: gradcam|tsne --model A,B",
          [](po::options_description& d) {
            d.add_options()
                ("what", po::value<std::string>()->required(), "gradcam or tsne")
                ("model", po::value<std::string>()->required(), "model files (float or quantized), comma separated")
                ("labels", po::value<std::string>(), "a name per model for the figures (default: the file names)")
                ("data", po::value<std::string>()->required(), "dataset spec (its test split is used)")
                ("out", po::value<std::string>()->required(), "output folder: gradcam.png or tsne-K.svg, and a JSON summary")
                ("layer", po::value<std::string>(), "gradcam: the layer (default: ResNet layer4, VGG the last feature ReLU)")
                ("perplexity", po::value<double>()->default_value(30, "30"), "tsne: perplexity")
                ("tsne-iterations", po::value<int>()->default_value(1000), "tsne: gradient steps");
            add_backdoor_options(d);
          },
          explain,
          {"what"}};
}

}  // namespace dearest::cli
