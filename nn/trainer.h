// The training and evaluation loop every library uses (attacks and defenses train too): epochs,
// loss and top-1, per-step and per-epoch callbacks, a checkpoint after every epoch and every ten
// minutes inside one, exact resume from the last checkpoint, a progress line with throughput and ETA on stderr, and a JSON-lines
// log of every epoch.
//
// Determinism: batches are a function of (epoch, batch number) (data::LoaderSource), dropout
// masks of (seed, step), and the optimizer state is checkpointed; so a run resumed after an
// interruption ends with the same weights as an uninterrupted one.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/loss.h"
#include "nn/schedule.h"

namespace dearest::nn {

// Batches of an epoch by number. Implemented by data::LoaderSource.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t num_batches() const = 0;
  virtual int64_t num_samples() const = 0;
  virtual void begin_epoch(int64_t epoch) = 0;
  virtual void get(int64_t b, Tensor& images, Tensor& labels) = 0;
};

struct EvalResult {
  double loss = 0, top1 = 0;
  int64_t samples = 0;
};
EvalResult evaluate(Module& model, BatchSource& data, bool progress = false);

struct TrainOptions {
  int64_t epochs = 1;
  std::string out_dir;        // checkpoints and log; empty = none
  bool resume = true;         // continue from out_dir/last.safetensors when present
  bool progress = true;       // progress line on stderr
  uint64_t seed = 0;          // dropout masks
  double label_smoothing = 0;
  int64_t eval_every = 1;     // epochs; 0 = never
  int64_t max_steps_per_epoch = 0;  // 0 = all (for quick runs and benchmarks)
  // Also a checkpoint inside an epoch (out_dir/partial.safetensors) once this many seconds have
  // passed since the last one, so an interrupted long epoch resumes at its next step, not at its
  // start (0: at the end of each epoch only).
  double checkpoint_seconds = 600;
  // Train with batch-norm statistics frozen (the BN layers in eval mode, their affine parameters
  // still trained), or with the whole model in eval mode (fine-tuning as net.eval() does).
  bool batchnorm_eval = false;
  bool model_eval = false;
};

struct EpochStats {
  int64_t epoch = 0;
  double lr = 0, train_loss = 0, train_top1 = 0, test_loss = 0, test_top1 = -1, seconds = 0, images_per_second = 0;
  std::string fingerprint;
};

class Trainer {
 public:
  Trainer(Module& model, const ModelSpec& spec, Optimizer& opt, Schedule schedule, TrainOptions options);
  // The loss of a batch; defaults to cross-entropy (with the options' label smoothing).
  std::function<Tensor(Module& model, const Tensor& images, const Tensor& labels, Tensor& logits)> loss;
  std::function<void(int64_t step, double loss)> on_step;
  std::function<void(const EpochStats&)> on_epoch;
  Metadata extra_metadata;  // written into every checkpoint (dataset, normalization, config)

  // Trains to options.epochs (resuming if allowed); returns every epoch's stats, earlier ones
  // read back from the log when resuming.
  std::vector<EpochStats> fit(BatchSource& train, BatchSource* test = nullptr);
  int64_t start_epoch() const { return start_epoch_; }
  // The model in the mode the options ask for (callbacks that evaluate put it back with this).
  void set_train_mode();

 private:
  Module& model_;
  ModelSpec spec_;
  Optimizer& opt_;
  Schedule schedule_;
  TrainOptions o_;
  double base_lr_;
  int64_t start_epoch_ = 0;
};

std::string epoch_stats_json(const EpochStats& s);

}  // namespace dearest::nn
