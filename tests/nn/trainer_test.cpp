// Training runs are reproducible: two runs with the same seed end with the same fingerprint, and a
// run interrupted mid-epoch and resumed from its last checkpoint ends with the same weights.
#include "nn/trainer.h"

#include <fstream>

#include "tensor/json.h"
#include "tensor/safetensors.h"

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

// The final fingerprint; `first_step`, when given, receives the first step this process ran.
std::string run(const std::string& out, int64_t kill_at_step = -1, double checkpoint_seconds = 600, int64_t* first_step = nullptr) {
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
  o.checkpoint_seconds = checkpoint_seconds;
  Trainer t(*m, spec, opt, Schedule::parse("cosine"), o);
  if (first_step) *first_step = -1;
  t.on_step = [kill_at_step, first_step](int64_t step, double) {
    if (first_step && *first_step < 0) *first_step = step;
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

std::vector<std::string> log_lines(const std::string& dir) {
  std::ifstream in(dir + "/log.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

TEST(Trainer, ResumesInsideAnEpochExactly) {
  ScratchDir a("train_whole"), c("train_cut");
  const std::string fa = run(a.path());
  // A checkpoint after every step; killed at step 6, the third of epoch 2 (4 steps per epoch).
  EXPECT_THROW(run(c.path(), 6, 1e-9), Interrupt);
  const std::string partial = c.path() + "/partial.safetensors";
  ASSERT_TRUE(std::filesystem::exists(partial));
  EXPECT_EQ(read_safetensors(partial).tensors.empty(), false);
  int64_t first = -1;
  EXPECT_EQ(run(c.path(), -1, 1e-9, &first), fa);  // resumes at epoch 2 step 3 and ends with the same weights
  EXPECT_EQ(first, 6) << "resumed at the start of the epoch, not at its step 3";
  EXPECT_FALSE(std::filesystem::exists(partial)) << "the in-epoch checkpoint outlived its epoch";
  // The interrupted epoch reports what the whole run reported, bit for bit, but for its time.
  const auto la = log_lines(a.path()), lc = log_lines(c.path());
  ASSERT_EQ(lc.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Json ja = Json::parse(la[i]), jc = Json::parse(lc[i]);
    EXPECT_EQ(ja["train_loss"].as_number(), jc["train_loss"].as_number()) << i;
    EXPECT_EQ(ja["train_top1"].as_number(), jc["train_top1"].as_number()) << i;
    EXPECT_EQ(ja["fingerprint"].as_string(), jc["fingerprint"].as_string()) << i;
  }
}

TEST(Trainer, StaleInEpochCheckpointIgnored) {
  ScratchDir a("train_ref"), c("train_stale");
  const std::string fa = run(a.path());
  EXPECT_THROW(run(c.path(), 6, 1e-9), Interrupt);  // leaves epoch 2's in-epoch checkpoint (at step 6)
  const std::string partial = c.path() + "/partial.safetensors";
  std::filesystem::copy_file(partial, c.path() + "/stale.safetensors");
  EXPECT_THROW(run(c.path(), 9), Interrupt);  // finishes epoch 2, dies in epoch 3
  EXPECT_FALSE(std::filesystem::exists(partial));
  // Epoch 2's checkpoint put back beside epoch 3's start: a rerun must not go back to it.
  std::filesystem::rename(c.path() + "/stale.safetensors", partial);
  int64_t first = -1;
  EXPECT_EQ(run(c.path(), -1, 600, &first), fa);
  EXPECT_EQ(first, 8);
  EXPECT_FALSE(std::filesystem::exists(partial));
}

}  // namespace
}  // namespace dearest::nn
