// Training runs are reproducible: two runs with the same seed end with the same fingerprint, and a
// run interrupted mid-epoch and resumed from its last checkpoint ends with the same weights.
#include "nn/trainer.h"

#include "data/loader_source.h"
#include "data/synthetic.h"
#include "nn/init.h"
#include "tests/data/data_test_util.h"

namespace dearest::nn {
namespace {

using data::test::ScratchDir;

struct Interrupt : std::runtime_error {
  Interrupt() : std::runtime_error("interrupted") {}
};

std::string run(const std::string& out, int64_t kill_at_step = -1) {
  data::SyntheticOptions so;
  so.size = 256;
  auto loader = std::make_shared<data::DataLoader>(data::open_synthetic("train", so), data::train_transform("synthetic"),
                                                   data::LoaderOptions{64, true, false, 3, false});
  data::LoaderSource src(loader);
  ModelSpec spec = ModelSpec::parse("vgg16-bn:width=2,classes=10,head=mlp");  // with dropout
  set_init_seed(5);
  ModulePtr m = build_model(spec);
  SgdOptions so2;
  so2.lr = 0.05;
  so2.momentum = 0.9;
  so2.weight_decay = 5e-4;
  SGD opt(m->named_parameters(), so2);
  TrainOptions o;
  o.epochs = 3;
  o.out_dir = out;
  o.progress = false;
  o.seed = 9;
  Trainer t(*m, spec, opt, Schedule::parse("cosine"), o);
  if (kill_at_step >= 0)
    t.on_step = [kill_at_step](int64_t step, double) {
      if (step == kill_at_step) throw Interrupt();
    };
  auto h = t.fit(src);
  return h.back().fingerprint;
}

TEST(Trainer, SameSeedSameFingerprintAndExactResume) {
  ScratchDir a("train_a"), b("train_b"), c("train_c");
  const std::string fa = run(a.path()), fb = run(b.path());
  EXPECT_EQ(fa, fb);
  EXPECT_THROW(run(c.path(), 6), Interrupt);  // dies in epoch 2 (4 steps per epoch)
  ASSERT_TRUE(std::filesystem::exists(c.path() + "/last.safetensors"));
  EXPECT_EQ(run(c.path()), fa);  // resumes at epoch 2 and finishes identically
  // The log holds each epoch once, resumed or not.
  std::ifstream log(c.path() + "/log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) lines += !line.empty();
  EXPECT_EQ(lines, 3);
}

}  // namespace
}  // namespace dearest::nn
