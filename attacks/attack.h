// The attacks, by name: each has its reference hyperparameters as a parameter table
// (ALGORITHMS.md §2, §3), trains through nn::Trainer with resumable checkpoints, judges every
// epoch's model in float and under the victim's quantizers, picks the epoch its reference picks,
// and reports CDA/ASR of the clean start and of the backdoored result.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attacks/judge.h"
#include "attacks/paired_source.h"
#include "attacks/params.h"
#include "nn/optim.h"
#include "nn/trainer.h"

namespace dearest::attacks {

struct AttackSetup {
  std::string data;                    // a data spec: cifar10:PATH, synthetic, ...
  std::string model;                   // a model file to start from, or a model spec to train from scratch
  std::string out;                     // output folder
  std::vector<std::string> overrides;  // name=value
  uint64_t seed = 0;
  bool resume = true, progress = true;
  bool judge_start = true;             // judge the starting model too (the clean reference)
};

// What an attack's run() gets: the data, the model it edits in place, the trigger and target, and
// the judge for its epochs.
struct AttackContext {
  data::DataSpec data;
  std::string data_text;
  data::DatasetPtr train;
  nn::ModelSpec spec;
  nn::ModulePtr model;
  TriggerPtr trigger;
  int32_t target = 0;
  uint64_t seed = 0;
  Params* params = nullptr;
  std::string out;
  bool resume = true, progress = true;
  Judge* epoch_judge = nullptr;               // on the first eval-images test images
  std::vector<QuantTarget> epoch_quantizers;  // judged after every epoch
  std::vector<int32_t> sources;               // source-specific: only these classes carry the backdoor
  // The labels the backdoored model must give triggered images of true labels y: the target, or
  // y itself for images outside the source classes.
  Tensor backdoor_labels(const Tensor& y) const;
  std::string arch() const { return spec.arch; }
};

// One epoch of a stage: its training loss and the verdict on its model (saved beside it).
struct EpochRecord {
  int64_t epoch = 0;
  double train_loss = 0, seconds = 0;
  Verdict verdict;
  std::string weights;  // the epoch's model file
};

class Attack {
 public:
  virtual ~Attack() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  virtual Params params() const = 0;  // the reference defaults
  // Replaces the "auto" defaults by the values the reference uses for this architecture and
  // variant (run before anything else, so the summary records what actually ran).
  virtual void resolve(Params& p, const nn::ModelSpec& spec) const = 0;
  // Trains ctx.model into the backdoored model (the chosen epoch loaded); returns a JSON account
  // of its stages (epochs, the choice and why).
  virtual Json run(AttackContext& ctx) = 0;
};

std::vector<std::string> attack_names();
std::unique_ptr<Attack> make_attack(const std::string& name);  // unknown names: an error listing them

// Runs an attack end to end: loads the data and the start model, judges the start, attacks,
// judges the result on the whole test set, writes OUT/model.safetensors and OUT/summary.json.
// Returns the summary.
Json run_attack(const std::string& name, const AttackSetup& setup);

// ---- shared by the attacks ----

// The parameters every attack has (trigger, target, optimizer, schedule, evaluation), with the
// given defaults for the optimizer ones.
std::vector<ParamDef> common_params(const std::string& optimizer, const std::string& lr, const std::string& momentum,
                                    const std::string& wd, const std::string& schedule, const std::string& epochs,
                                    const std::string& batch, const std::string& epoch_quantizers,
                                    const std::string& final_quantizers, const std::string& calib);
// Qu-ANTI-zation's reference defaults by architecture (the adaptive attacks train the same way):
// Adam's lr (1e-4; VGG 4e-5) and the loss weights c1, c2 (0.5; VGG 1.0).
std::string qu_anti_zation_lr(const nn::ModelSpec& spec);
std::string qu_anti_zation_weight(const nn::ModelSpec& spec);

// A calibration recipe parameter SIZE:BATCH:POOL (POOL: the fraction of the training split drawn from).
quant::CalibOptions parse_calib(const Params& p, const std::string& name, uint64_t seed);
// Paired batches of `batch` clean images as the parameters say (stamping, jpeg-augment, seed).
PairingOptions pairing_options(const AttackContext& ctx, const Params& p, int64_t batch);
// The trainer options of a stage: OUT/<stage>, resume, progress, seed, max-steps.
nn::TrainOptions stage_options(const AttackContext& ctx, const Params& p, const std::string& stage, int64_t epochs);
// A stage's account: every epoch's record, the chosen one (loaded into ctx.model) and why.
Json choose_epoch(AttackContext& ctx, const std::vector<EpochRecord>& records, size_t pick, const std::string& rule);
// From the parameters with the prefix ("" or e.g. "stage2-"): optimizer, lr, momentum, wd.
std::unique_ptr<nn::Optimizer> make_optimizer(const Params& p, nn::Module& model, const std::string& prefix = "");

// Trains one stage: the trainer over `source` for the stage's epochs, the model judged after each
// epoch and saved as OUT/<stage>/epochs/NNN.safetensors with its record (.json). Resumes from the
// stage's checkpoint. Returns every epoch's record, earlier ones read back.
std::vector<EpochRecord> train_stage(AttackContext& ctx, const std::string& stage, nn::Trainer& trainer,
                                     nn::BatchSource& source);
// Loads an epoch's weights into ctx.model.
void load_epoch(AttackContext& ctx, const EpochRecord& r);
Json records_json(const std::vector<EpochRecord>& records);

}  // namespace dearest::attacks
