// A fine-tuning stage small enough for a test: one epoch of a few batches of 16 at lr 1e-2.
#pragma once
#include "defenses/removal.h"

namespace dearest::test {

inline defenses::FineTuneOptions quick_fine_tune(int64_t max_steps) {
  defenses::FineTuneOptions o;
  o.epochs = 1;
  o.batch = 16;
  o.max_steps = max_steps;
  o.lr = 1e-2;
  o.progress = false;
  return o;
}

}  // namespace dearest::test
