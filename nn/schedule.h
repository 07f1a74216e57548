// Learning-rate schedules (torch.optim.lr_scheduler's closed forms), by epoch, with an optional
// linear warm-up:
//   constant | step:SIZE[:GAMMA] | multistep:M1/M2/...[:GAMMA] | cosine[:ETA_MIN] | exp:GAMMA
// cosine anneals over the run's epochs (T_max = epochs); "+warmup:N[:START]" prefixes N epochs of
// linear warm-up from START x lr (per step).
#pragma once
#include <string>
#include <vector>

namespace dearest::nn {

struct Schedule {
  std::string kind = "constant";
  double gamma = 0.1, eta_min = 0;
  int64_t step_size = 30;
  std::vector<int64_t> milestones;
  int64_t warmup_epochs = 0;
  double warmup_start = 0.1;

  static Schedule parse(const std::string& text);
  std::string str() const;
  // lr for `epoch` (0-based) of `epochs`, at `fraction` of the way through it (warm-up only).
  double lr(double base, int64_t epoch, int64_t epochs, double fraction = 0) const;
};

}  // namespace dearest::nn
