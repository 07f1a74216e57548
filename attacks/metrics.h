// The numbers every attack and defense reports (ALGORITHMS.md §1.9): CDA, top-1 on the clean test
// set; ASR, the fraction of triggered test images classified as the target, without the target
// class's own images by default; DTM, the defense trade-off (CDA + (ASR_standard - ASR_defended))/2.
#pragma once
#include "attacks/poison.h"
#include "nn/module.h"

namespace dearest::attacks {

struct BackdoorMetrics {
  double cda = 0, asr = 0;
  int64_t clean_images = 0, asr_images = 0;
};

// `kind`: the dataset kind for the test transform (cifar10, tiny-imagenet, imagenette, synthetic).
BackdoorMetrics evaluate_backdoor(nn::Module& model, const data::DatasetPtr& test, const std::string& kind,
                                  const TriggerPtr& trigger, int32_t target, bool include_target = false,
                                  int64_t batch = 256, const std::vector<int32_t>& sources = {});

// In fractions or percentages alike.
inline double dtm(double cda_defended, double asr_standard, double asr_defended) {
  return (cda_defended + (asr_standard - asr_defended)) / 2;
}

}  // namespace dearest::attacks
