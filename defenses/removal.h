// The backdoor-removal baselines EFRAP compares with (ALGORITHMS.md §4; EFRAP supplementary §A):
// they edit the float model with a little clean data, and the victim then quantizes the result as
// usual. Fine-tuning (FT) and fine-pruning (FP: the least active channels of the last residual
// stage masked, then FT), with the supplementary's settings as defaults (Adam, lr 1e-4, batch 64,
// 5% of the training set, 50 epochs).
#pragma once
#include <string>
#include <vector>

#include "data/loader_source.h"
#include "data/registry.h"
#include "nn/models.h"
#include "nn/trainer.h"
#include "tensor/json.h"

namespace dearest::defenses {

// The defender's clean data: a seeded random `portion` of the training split.
data::DatasetPtr clean_subset(const data::DataSpec& spec, double portion, uint64_t seed);

struct FineTuneOptions {
  std::string optimizer = "adam";  // the supplementary: Adam, lr 1e-4 for every defense
  double lr = 1e-4, momentum = 0.9, wd = 0;
  std::string schedule = "constant";
  int64_t epochs = 50, batch = 64;
  int64_t max_steps = 0;                 // per epoch (0: all)
  std::vector<std::string> trainable;    // module-name prefixes trained (empty: every layer)
  bool batchnorm_eval = false;           // BN statistics frozen (BackdoorBox trains them)
  std::string out_dir;                   // checkpoints and log (resumable); empty: none
  bool resume = true, progress = true;
  uint64_t seed = 0;
};

// What every trained removal defense runs on: the clean subset's batches (training transforms,
// shuffled, drop_last as BackdoorBox) and the trainer options a FineTuneOptions asks for.
data::LoaderSource clean_batches(const data::DatasetPtr& clean, const std::string& kind, const FineTuneOptions& o);
nn::TrainOptions trainer_options(const FineTuneOptions& o);

// Fine-tunes `model` in place with cross-entropy on `clean` (the training transforms of `kind`).
// Returns every epoch's statistics.
std::vector<nn::EpochStats> fine_tune(nn::Module& model, const nn::ModelSpec& spec, const data::DatasetPtr& clean,
                                      const std::string& kind, const FineTuneOptions& o);

// Where fine-pruning measures and masks: the output of the last residual stage (ResNet: layer4)
// or of the convolutional features (VGG).
std::string prune_point(const nn::ModelSpec& spec);

// `model`'s weights in a model with a channel mask at `where` (all channels kept); `spec` becomes
// the masked model's spec.
nn::ModulePtr with_prune_mask(nn::ModelSpec& spec, nn::Module& model, const std::string& where);

struct PruneResult {
  std::string where;
  int64_t channels = 0;
  std::vector<double> mean_activation;  // per channel, over the clean images and positions
  std::vector<int64_t> pruned;          // the channels masked, least active first
  Json to_json() const;
};

// Fine-pruning's pruning (BackdoorBox's Pruning): the model (with a mask, see with_prune_mask) in
// eval mode over `clean` with the test transforms; the floor(C * rate) channels of lowest mean
// activation at the mask are set to 0.
PruneResult prune_least_active(nn::Module& model, const data::DatasetPtr& clean, const std::string& kind, double rate,
                               int64_t batch = 128);

}  // namespace dearest::defenses
