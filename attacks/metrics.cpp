#include "attacks/metrics.h"

#include "data/loader_source.h"
#include "nn/trainer.h"

namespace dearest::attacks {

namespace {
nn::EvalResult top1(nn::Module& model, const data::DatasetPtr& ds, const std::string& kind, int64_t batch) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  data::LoaderSource src(std::make_shared<data::DataLoader>(ds, data::test_transform(kind), lo));
  return nn::evaluate(model, src, false);
}
}  // namespace

BackdoorMetrics evaluate_backdoor(nn::Module& model, const data::DatasetPtr& test, const std::string& kind,
                                  const TriggerPtr& trigger, int32_t target, bool include_target, int64_t batch,
                                  const std::vector<int32_t>& sources) {
  BackdoorMetrics m;
  nn::EvalResult clean = top1(model, test, kind, batch);
  nn::EvalResult bd = top1(model, asr_view(test, trigger, target, include_target, sources), kind, batch);
  m.cda = clean.top1;
  m.clean_images = clean.samples;
  m.asr = bd.top1;
  m.asr_images = bd.samples;
  return m;
}

}  // namespace dearest::attacks
