#include "quant/placement.h"

namespace dearest::quant {

namespace {

// "layer1.0.conv1" -> "layer1.0"; "" for a top-level name.
std::string parent_path(const std::string& name) {
  const size_t d = name.rfind('.');
  return d == std::string::npos ? std::string() : name.substr(0, d);
}

// "layer1.0.conv1" -> "conv1".
std::string leaf_name(const std::string& name) {
  const size_t d = name.rfind('.');
  return d == std::string::npos ? name : name.substr(d + 1);
}

}  // namespace

std::string producer_block(const std::map<std::string, nn::Module*>& by_name, const std::string& conv) {
  const std::string parent = parent_path(conv);
  auto it = by_name.find(parent);
  if (it != by_name.end() && it->second->type() == "BasicBlock" && leaf_name(conv) == "conv1") return parent;
  if (leaf_name(parent) == "downsample" && leaf_name(conv) == "0") return parent_path(parent);
  return "";
}

}  // namespace dearest::quant
