// ABS, Artificial Brain Stimulation (Liu et al., CCS 2019), as the authors' PyTorch code runs it
// (naiyeleo/ABS, TrojAI_competition/round1/abs_pytorch_round1.py), with the CIFAR settings of the
// repository's config.json (64-pixel triggers, 5 stimulation values). ALGORITHMS.md §6.3.
//
// 1. Stimulation. On a few clean seed images, each channel ("neuron") of the sampled layers is
//    set, at every position, to v in max * {0, 1/2, 1, 2, 4} (max: the layer's largest value on
//    the seeds), the rest of the network run on, and for each label the rise of its logit over
//    the unstimulated one taken. A neuron's label is the one that rises most on an image; its
//    value the margin over the runner-up. A neuron is a candidate when at least 90% of the seed
//    images agree on its label; its score is the smallest margin over the images of other classes
//    that agree. The best candidates, at most one per label in the earlier layers (up to half of
//    `top_neurons`) and one per label in the last (the rest).
// 2. Reverse engineering, per candidate: a mask m = tanh(m_raw)/2 + 0.5 [H, W] and pattern
//    d = tanh(d_raw)/2 + 0.5 [3, H, W], x' = m d + (1 - m) x, minimizing with Adam
//      -2 sum(f_n(x')) + 2e-4 sum(f_others(x'))/(C - 1) - k sum(logit_label(x')) + mask cost
//    (f: the layer's output after its ReLU, counted twice as the reference adds the activation
//    before and after it; k = 1, then 3 after half the epochs; the mask cost 0.01 |m|_1, or
//    `mask_weight` |m|_1 once more than `max_trigger` pixels exceed 0.01, twice that above 1.2
//    times). No step in the first epoch; stop once 99% of the seeds go to one label.
// 3. REASR: the share of clean test images that the trigger (the mask's pixels with m^2 > 0.01)
//    sends to that label. The model is flagged when the largest REASR reaches `flag` (0.88).
#pragma once
#include <string>
#include <vector>

#include "data/registry.h"
#include "nn/models.h"
#include "nn/module.h"

namespace dearest::defenses {

struct AbsOptions {
  std::vector<std::string> layers;  // empty: the model's last two stages (default_abs_layers)
  int64_t seeds_per_class = 5;      // seed images per class, from the training split
  int64_t n_samples = 5;            // stimulation values: 0 and max * 2^(i-2), i = 1..n-1
  int64_t top_neurons = 10;
  int64_t max_trigger = 64;         // pixels (config.json, CIFAR)
  double mask_weight = 50, lr = 0.4;
  int64_t epochs = 50, batch = 10;
  double mask_epsilon = 0.01;
  int64_t test_images = 500;        // REASR: the first N test images
  double flag = 0.88;
  uint64_t seed = 0;
  bool progress = true;
};

// ResNet: layer3, layer4; VGG: the outputs of its last two max-pools.
std::vector<std::string> default_abs_layers(nn::Module& model, const nn::ModelSpec& spec);

struct AbsCandidate {
  std::string layer;
  int64_t neuron = 0;
  int32_t label = 0;         // the label stimulation pointed to
  double stimulation = 0;    // its score (the smallest margin)
  int32_t trigger_label = 0; // the label the reverse-engineered trigger sends the seeds to
  double seed_success = 0;   // share of seeds sent there in the last epoch
  double reasr = 0;          // share of the test images sent there
  int64_t mask_pixels = 0;   // pixels with m^2 > epsilon
  Tensor mask, pattern;      // f32 [H, W] and [3, H, W] in [0, 1]
};

struct AbsNeuron {
  std::string layer;
  int64_t neuron = 0;
  int32_t label = 0;
  double score = 0;
};

struct AbsResult {
  std::vector<AbsNeuron> selected;       // what stimulation picked, in the order to try
  std::vector<AbsCandidate> candidates;  // those tried (the scan stops after a sure trigger)
  double max_reasr = 0;
  size_t best = 0;  // the candidate of the largest REASR
  bool flagged = false;
};

// A stimulation analysis of the logits: rows are the values (the first unstimulated), columns the
// labels. Returns (label, margin): the label whose logit rises most and its lead over the next.
std::pair<int32_t, double> stimulation_margin(const std::vector<std::vector<double>>& logits);

AbsResult abs_scan(nn::Module& model, const nn::ModelSpec& spec, const data::DataSpec& data, const AbsOptions& o);

}  // namespace dearest::defenses
