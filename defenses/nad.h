// Neural attention distillation (NAD; ALGORITHMS.md §4.4, BackdoorBox's NAD): a teacher is the
// backdoored model fine-tuned on the clean subset; the backdoored model (the student) is then
// trained on the same data with cross-entropy plus, at each chosen layer l,
//   beta_l * MSE(A(F_s^l), A(F_t^l)),   A(F) = a / (||a||_2 + 1e-6),  a = sum_c |F_c|^p,
// the norm over the H*W positions of each sample, the teacher frozen (and in train mode, as the
// reference leaves it). The supplementary's settings are the defaults: 50 epochs each.
#pragma once
#include <string>
#include <vector>

#include "defenses/removal.h"

namespace dearest::defenses {

// [N, C, H, W] -> [N, H*W]: the attention map of a feature tensor (differentiable).
Tensor attention_map(const Tensor& features, double p = 2);

// Where NAD compares attention: ResNet18 layer2, layer3, layer4 (BackdoorBox); VGG16 the outputs of
// its last three max-pools.
std::vector<std::string> attention_layers(nn::Module& model, const nn::ModelSpec& spec);

struct NadOptions {
  FineTuneOptions teacher;            // out_dir: the teacher's checkpoints
  FineTuneOptions student;            // out_dir: the student's checkpoints
  std::vector<std::string> layers;    // empty: attention_layers()
  std::vector<double> betas;          // one per layer; empty: 500 each (BackdoorBox)
  double p = 2;
};

struct NadResult {
  std::vector<std::string> layers;
  std::vector<double> betas;
  std::vector<nn::EpochStats> teacher, student;
  std::vector<double> attention_loss;  // the student's attention term, mean per epoch trained here
};

// Distils `model` (the student) in place; the teacher is a fine-tuned copy.
NadResult nad(nn::Module& model, const nn::ModelSpec& spec, const data::DatasetPtr& clean, const std::string& kind,
              const NadOptions& o);

}  // namespace dearest::defenses
