#include "tools/backdoor_options.h"

#include "data/registry.h"
#include "tensor/json.h"
#include "tensor/safetensors.h"

namespace dearest::cli {

std::map<std::string, std::string> file_metadata(const std::string& path) {
  std::map<std::string, std::string> m;
  for (auto& [k, v] : read_safetensors(path).metadata) m[k] = v;
  return m;
}

void copy_backdoor_metadata(const std::map<std::string, std::string>& from, std::map<std::string, std::string>& to) {
  for (const char* k : {"attack", "trigger", "trigger_spec", "target", "source_classes", "attack_params"})
    if (from.count(k) && !to.count(k)) to[k] = from.at(k);
}

void add_backdoor_options(po::options_description& d) {
  d.add_options()("trigger", po::value<std::string>(), "trigger spec (default: the one dearest attack recorded in the file)")
      ("target", po::value<int>(), "target label (default: recorded, else 0)")
      ("source-classes", po::value<std::string>(), "source-specific backdoor: the ASR counts only these classes")
      ("include-target", po::value<bool>()->default_value(false)->implicit_value(true), "count the target class's own images in the ASR")
      ("images", po::value<int64_t>()->default_value(0), "only the first N test images (0: all)")
      ("batch", po::value<int64_t>()->default_value(256), "evaluation batch size (per-batch quantizers depend on it)");
}

attacks::JudgeOptions backdoor_options(const po::variables_map& vm, const std::string& file, std::string* trigger_spec,
                                       const std::string& fallback) {
  const auto meta = file_metadata(file);
  attacks::JudgeOptions o;
  o.data = data::parse_data_spec(vm["data"].as<std::string>());
  const int64_t image = data::image_size_of(o.data.kind);
  std::string trig = vm.count("trigger") ? vm["trigger"].as<std::string>() : "";
  if (trig.empty() && meta.count("trigger_spec")) trig = meta.at("trigger_spec");
  if (trig.empty() && meta.count("attack") && meta.count("attack_params")) {
    // Files from before trigger_spec was recorded: the attack's parameters name the trigger.
    const Json p = Json::parse(meta.at("attack_params"), file);
    if (p.contains("trigger")) trig = p["trigger"].as_string() == "reference" ? meta.at("attack") : p["trigger"].as_string();
  }
  if (trig.empty()) trig = fallback;
  DEAREST_CHECK(!trig.empty(), file, " records no trigger: give --trigger (e.g. pq-backdoor or square:size=4)");
  o.trigger = attacks::parse_trigger(trig, image);
  if (trigger_spec) *trigger_spec = trig;
  o.target = vm.count("target") ? vm["target"].as<int>() : meta.count("target") ? std::stoi(meta.at("target")) : 0;
  o.include_target = vm["include-target"].as<bool>();
  std::string sources = vm.count("source-classes") ? vm["source-classes"].as<std::string>()
                                                   : meta.count("source_classes") ? meta.at("source_classes") : "";
  for (size_t start = 0; start < sources.size();) {
    size_t c = sources.find(',', start);
    if (c == std::string::npos) c = sources.size();
    if (c > start) o.sources.push_back(std::stoi(sources.substr(start, c - start)));
    start = c + 1;
  }
  o.images = vm["images"].as<int64_t>();
  o.batch = vm["batch"].as<int64_t>();
  return o;
}

}  // namespace dearest::cli
