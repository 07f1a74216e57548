#include "nn/checkpoint.h"

#include "tensor/safetensors.h"

namespace dearest::nn {

namespace {
const char* kOptPrefix = "optimizer/";

std::vector<std::pair<std::string, std::string>> meta_pairs(const Metadata& m) { return {m.begin(), m.end()}; }
}  // namespace

std::string fingerprint(const Module& model) { return dearest::fingerprint(model.state_dict()); }

void save_model(const std::string& path, const Module& model, const ModelSpec& spec, Metadata meta) {
  meta["format"] = "dearest model";
  meta["dearest_version"] = DEAREST_VERSION;
  meta["arch"] = spec.str();
  meta["fingerprint"] = fingerprint(model);
  write_safetensors(path, model.state_dict(), meta_pairs(meta));
}

LoadedModel load_model(const std::string& path, const std::string& spec_text, bool strict) {
  SafetensorsFile f = read_safetensors(path);
  LoadedModel out;
  for (const auto& [k, v] : f.metadata) out.meta[k] = v;
  std::string arch = spec_text;
  if (arch.empty()) {
    // Only our own files' "arch" is a spec; other tools' metadata may use the key differently.
    const bool ours = out.meta.count("format") && out.meta["format"].rfind("dearest", 0) == 0;
    DEAREST_CHECK(ours && out.meta.count("arch"), path, ": no dearest \"arch\" in the metadata (a file from ",
                  "another tool?); give the architecture, e.g. --arch resnet18:width=64,classes=10");
    arch = out.meta["arch"];
  }
  out.spec = ModelSpec::parse(arch);
  out.model = build_model(out.spec);
  StateDict weights;
  for (auto& [n, t] : f.tensors)
    if (n.rfind(kOptPrefix, 0) != 0 && n.find("num_batches_tracked") == std::string::npos) weights.emplace_back(n, t);
  try {
    out.report = out.model->load_state_dict(weights, strict, import_aliases(out.spec));
  } catch (const Error& e) {
    fail(path, ": does not fit ", out.spec.str(), ": ", e.what());
  }
  return out;
}

void save_checkpoint(const std::string& path, const Module& model, const ModelSpec& spec, const Optimizer& opt,
                     Metadata meta) {
  meta["format"] = "dearest checkpoint";
  meta["dearest_version"] = DEAREST_VERSION;
  meta["arch"] = spec.str();
  meta["fingerprint"] = fingerprint(model);
  StateDict all = model.state_dict();
  for (auto& [n, t] : opt.state()) all.emplace_back(kOptPrefix + n, t);
  write_safetensors(path, all, meta_pairs(meta));
}

Metadata load_checkpoint(const std::string& path, Module& model, Optimizer& opt) {
  SafetensorsFile f = read_safetensors(path);
  StateDict weights, state;
  for (auto& [n, t] : f.tensors) {
    if (n.rfind(kOptPrefix, 0) == 0) state.emplace_back(n.substr(std::string(kOptPrefix).size()), t);
    else weights.emplace_back(n, t);
  }
  try {
    model.load_state_dict(weights, true);
  } catch (const Error& e) {
    fail(path, ": checkpoint does not fit the model: ", e.what());
  }
  opt.load_state(state);
  Metadata meta;
  for (const auto& [k, v] : f.metadata) meta[k] = v;
  return meta;
}

}  // namespace dearest::nn
