#include "tools/defend_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "attacks/metrics.h"
#include "tools/svg_plot.h"
#include "nn/checkpoint.h"

namespace dearest::cli {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void write_text(const std::string& path, const std::string& text) {
  // The folder may not exist yet (a --standard-cache beside the output): a finished defense must
  // not be lost to it.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  // The process id in the temporary's name: parallel cells of a study share standard caches.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp);
    f << text;
    DEAREST_CHECK(f.good(), tmp, ": cannot write");
  }
  std::filesystem::rename(tmp, path);
}

Json metrics_json(const attacks::BackdoorMetrics& m) {
  Json j = Json::object();
  j.set("cda", 100 * m.cda);
  j.set("asr", 100 * m.asr);
  j.set("clean_images", m.clean_images);
  j.set("asr_images", m.asr_images);
  return j;
}

Json metrics_json(const NamedMetrics& m) {
  Json j = Json::object();
  for (auto& [k, v] : m) j.set(k, metrics_json(v));
  return j;
}

namespace {

attacks::BackdoorMetrics metrics_from_json(const Json& j) {
  attacks::BackdoorMetrics m;
  m.cda = j["cda"].as_number() / 100;
  m.asr = j["asr"].as_number() / 100;
  m.clean_images = j["clean_images"].as_int();
  m.asr_images = j["asr_images"].as_int();
  return m;
}

}  // namespace

quant::CalibOptions calib_options(const po::variables_map& vm, const std::string& data_kind) {
  quant::CalibOptions co;
  co.size = vm["calib-size"].as<int64_t>();
  co.batch = vm["calib-batch"].as<int64_t>();
  co.pool = vm["calib-pool"].as<double>();
  co.seed = vm["seed"].as<uint64_t>();
  co.augment = vm["calib-augment"].as<bool>();
  const std::string split = vm["calib-split"].as<std::string>();
  DEAREST_CHECK(split == "train" || split == "test", "--calib-split: expected train or test, got \"", split, "\"");
  co.split = split == "train" ? data::train_split(data_kind) : data::test_split(data_kind);
  DEAREST_CHECK(co.size > 0 && co.batch > 0, "defend: the calibration set must have images (--calib-size, --calib-batch)");
  DEAREST_CHECK(co.pool > 0 && co.pool <= 1, "--calib-pool: expected a fraction in (0, 1], got ", co.pool);
  return co;
}

Json standard_key(nn::Module& model, const std::string& data_text, const std::string& trigger_spec,
                  const attacks::JudgeOptions& jo, const std::string& standard_list, const quant::CalibOptions& co) {
  Json key = Json::object();
  key.set("weights", nn::fingerprint(model));
  key.set("data", data_text);
  key.set("trigger", trigger_spec);
  key.set("target", int64_t(jo.target));
  key.set("include_target", jo.include_target);
  key.set("images", jo.images);
  key.set("batch", jo.batch);
  key.set("standard", standard_list);
  const quant::CalibOptions d;  // caches written before calibration options joined the key stay valid
  if (co.size != d.size || co.batch != d.batch || co.pool != d.pool || co.seed != d.seed || co.augment != d.augment ||
      co.split != data::train_split(jo.data.kind))
    key.set("calibration", std::to_string(co.size) + ":" + std::to_string(co.batch) + ":" + std::to_string(co.pool) + ":" +
                               std::to_string(co.seed) + ":" + (co.augment ? "aug" : "plain") + ":" + co.split);
  return key;
}

StandardNumbers standard_numbers(attacks::Judge& judge, const nn::ModelSpec& spec, nn::Module& model,
                                 const std::vector<attacks::QuantTarget>& standards, const Json& key,
                                 const std::string& cache) {
  StandardNumbers s;
  // The cache keeps an entry per key: studies over one attacked model judged on different images
  // or calibration sets share the file without evicting each other. (A file of one entry, with
  // "key" at the top, is what earlier builds wrote.)
  Json entries = Json::array();
  if (!cache.empty() && std::filesystem::exists(cache)) {
    std::ifstream f(cache);
    const Json c = Json::parse(std::string(std::istreambuf_iterator<char>(f), {}), cache);
    if (c.contains("entries"))
      entries = c["entries"];
    else if (c.contains("key"))
      entries.push(c);
    for (const Json& e : entries.items())
      if (e["key"].dump() == key.dump()) {
        s.fp = metrics_from_json(e["float"]);
        for (auto& [k, v] : e["standard"].members()) s.standard.emplace_back(k, metrics_from_json(v));
        s.cached = true;
        return s;
      }
  }
  s.fp = judge.float_metrics(model);
  for (auto& t : standards) s.standard.emplace_back(t.label(), judge.quantized_metrics(spec, model, t));
  if (!cache.empty()) {
    Json e = Json::object();
    e.set("key", key);
    e.set("float", metrics_json(s.fp));
    e.set("standard", metrics_json(s.standard));
    entries.push(e);
    Json c = Json::object();
    c.set("entries", entries);
    write_text(cache, c.dump(2) + "\n");
  }
  return s;
}

void print_result_table(const std::string& model_file, const attacks::JudgeOptions& jo, const StandardNumbers& s,
                        const NamedMetrics& defended) {
  const double asr_std = 100 * s.standard.at(0).second.asr;
  std::printf("%s, trigger %s -> %d (%s)\n%-30s %8s %8s %8s\n", model_file.c_str(), jo.trigger->describe().c_str(), jo.target,
              jo.include_target ? "target class included" : "target class excluded", "", "CDA %", "ASR %", "DTM");
  std::printf("%-30s %8.2f %8.2f\n", "float", 100 * s.fp.cda, 100 * s.fp.asr);
  for (auto& [k, m] : s.standard)
    std::printf("%-30s %8.2f %8.2f %8.2f\n", ("standard " + k).c_str(), 100 * m.cda, 100 * m.asr,
                attacks::dtm(100 * m.cda, asr_std, 100 * m.asr));
  for (auto& [k, m] : defended)
    std::printf("%-30s %8.2f %8.2f %8.2f\n", k.c_str(), 100 * m.cda, 100 * m.asr, attacks::dtm(100 * m.cda, asr_std, 100 * m.asr));
}

// flip-rate.svg (the share of each layer's weights rounded away from nearest) and loss.svg (L_A, the
// activation error, while each of the first 8 layers learns).
void write_efrap_figures(const std::string& out, const std::vector<defenses::EfrapLayerReport>& reports) {
  std::vector<std::string> names;
  BarSeries fr{"flip rate %", {}};
  std::vector<Series> curves;
  for (const auto& r : reports) {
    names.push_back(r.name);
    fr.values.push_back(100 * r.flip_rate);
    if (curves.size() < 8 && !r.curve.empty()) {
      Series s{r.name, {}};
      for (const auto& p : r.curve) s.points.emplace_back(double(p.iteration), p.act);
      curves.push_back(s);
    }
  }
  if (names.empty()) return;
  write_bar_chart(out + "/flip-rate.svg", "EFRAP: weights rounded away from nearest, per layer", "%", names, {fr}, 0, 100);
  if (!curves.empty())
    write_line_chart(out + "/loss.svg", "EFRAP: activation error L_A while learning (first 8 layers)", "iteration", "L_A", curves);
}

}  // namespace dearest::cli
