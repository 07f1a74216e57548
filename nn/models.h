// The model families of the papers (ALGORITHMS.md §8), with torchvision's state-dict names.
//
//   resnet18   stem=cifar (3x3 s1, no max-pool) | imagenet (7x7 s2 + max-pool, as torchvision)
//              width (64), classes (10), input (32), pool=avg4 (the CIFAR code's avg_pool2d(4):
//              1x1 at 32 px, 2x2 at 64 px) | adaptive (torchvision's)
//   vgg16      configuration D; bn=1 (vgg16-bn) or 0; conv_bias (1); act=relu | relu6;
//              head=linear (Linear(C*a*a -> classes), the CIFAR code bases) | mlp (Dropout-Linear-
//              ReLU-Dropout-Linear-ReLU-Linear, Qu-ANTI-zation); fc_bias (1); width (64); input
//   prune      a channel mask (module "prune", saved with the model) on the output of resnet18's
//              layer1..layer4 or of vgg16's features: fine-pruning's pruned channels
//
// A spec is written "resnet18:width=16,classes=10" and stored in checkpoints.
#pragma once
#include <map>
#include <string>

#include "nn/module.h"

namespace dearest::nn {

struct ModelSpec {
  std::string arch = "resnet18";
  std::map<std::string, std::string> opts;  // sorted: the string form is canonical
  static ModelSpec parse(const std::string& s);
  std::string str() const;
  int64_t get(const std::string& key, int64_t dflt) const;
  std::string get(const std::string& key, const std::string& dflt) const;
};

// Builds a freshly initialised model (torchvision's initialisation, from nn::init_rng()).
ModulePtr build_model(const ModelSpec& spec);
// Name aliases of other code bases for load_state_dict: shortcut -> downsample, linear -> fc, ...
std::vector<std::pair<std::string, std::string>> import_aliases(const ModelSpec& spec);

}  // namespace dearest::nn
