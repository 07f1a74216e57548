#include "nn/models.h"

#include <algorithm>
#include <sstream>

namespace dearest::nn {

ModulePtr build_resnet18(const ModelSpec& s);
ModulePtr build_vgg16(const ModelSpec& s);

ModelSpec ModelSpec::parse(const std::string& text) {
  ModelSpec s;
  const size_t colon = text.find(':');
  s.arch = text.substr(0, colon);
  if (s.arch == "vgg16-bn" || s.arch == "vgg16_bn") {
    s.arch = "vgg16";
    s.opts.insert_or_assign("bn", "1");
  } else if (s.arch == "vgg16") {
    s.opts.emplace("bn", "0");
  }
  DEAREST_CHECK(s.arch == "resnet18" || s.arch == "vgg16", "model: unknown architecture \"", s.arch,
                "\" (resnet18, vgg16, vgg16-bn)");
  if (colon != std::string::npos) {
    std::istringstream in(text.substr(colon + 1));
    std::string kv;
    while (std::getline(in, kv, ',')) {
      if (kv.empty()) continue;
      const size_t eq = kv.find('=');
      DEAREST_CHECK(eq != std::string::npos && eq > 0, "model: option \"", kv, "\" in \"", text, "\" is not key=value");
      s.opts[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  static const std::map<std::string, std::vector<std::string>> known = {
      {"resnet18", {"width", "classes", "input", "stem", "pool", "prune"}},
      {"vgg16", {"width", "classes", "input", "bn", "conv_bias", "fc_bias", "act", "head", "prune"}}};
  for (const auto& [k, v] : s.opts) {
    const auto& allowed = known.at(s.arch);
    DEAREST_CHECK(std::find(allowed.begin(), allowed.end(), k) != allowed.end(), "model: unknown option \"", k,
                  "\" for ", s.arch);
  }
  return s;
}

std::string ModelSpec::str() const {
  std::string out = arch;
  char sep = ':';
  for (const auto& [k, v] : opts) {
    out += sep + k + "=" + v;
    sep = ',';
  }
  return out;
}

int64_t ModelSpec::get(const std::string& key, int64_t dflt) const {
  auto it = opts.find(key);
  if (it == opts.end()) return dflt;
  try {
    size_t used = 0;
    int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  fail("model: option ", key, "=", it->second, " is not an integer");
}

std::string ModelSpec::get(const std::string& key, const std::string& dflt) const {
  auto it = opts.find(key);
  return it == opts.end() ? dflt : it->second;
}

ModulePtr build_model(const ModelSpec& spec) {
  return spec.arch == "resnet18" ? build_resnet18(spec) : build_vgg16(spec);
}

std::vector<std::pair<std::string, std::string>> import_aliases(const ModelSpec& spec) {
  if (spec.arch == "resnet18")
    return {{"shortcut.", "downsample."}, {"linear.", "fc."}, {"module.", ""}};
  return {{"module.", ""}};
}

}  // namespace dearest::nn
