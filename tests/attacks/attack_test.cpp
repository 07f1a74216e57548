// The attacks end to end on the synthetic set with tiny models, in seconds: each one's objective
// moves the way it must (float model: triggered images keep their labels; quantized model: they
// go to the target), PQBackdoor's stage 2 leaves the int8 weights and scales exactly stage 1's,
// reruns resume instead of retraining, and bad input gets clear errors.
#include "attacks/attack.h"
#include "attacks/poison.h"
#include "attacks/report.h"

#include <filesystem>
#include <fstream>

#include "data/loader.h"
#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "quant/quantized_model.h"
#include "tests/test_util.h"

namespace dearest::attacks {
namespace {

namespace fs = std::filesystem;

const char* kData = "synthetic:512";

std::string fresh_dir(const std::string& name) {
  const std::string d = (fs::temp_directory_path() / ("dearest-attack-test-" + name)).string();
  fs::remove_all(d);
  return d;
}

Json run(const std::string& attack, const std::string& out, std::vector<std::string> overrides,
         const std::string& model = "resnet18:width=4") {
  AttackSetup s;
  s.data = kData;
  s.model = model;
  s.out = out;
  s.overrides = std::move(overrides);
  s.overrides.insert(s.overrides.begin(), "batch=32");  // small and quick; a test's own value comes later and wins
  s.progress = false;
  return run_attack(attack, s);
}

// A fixed batch of training images, clean and with the reference 4x4 trigger, un-augmented.
struct Fixed {
  Tensor clean, triggered, labels;
};
Fixed fixed_batch() {
  auto ds = data::open_dataset(data::parse_data_spec(kData), "train");
  auto tf = data::test_transform("synthetic");
  auto trig = reference_trigger("qu-anti-zation", 32);
  data::LoaderOptions lo;
  lo.batch_size = 64;
  lo.shuffle = false;
  data::DataLoader a(ds, tf, lo), b(ds, tf->with_stamp(stamp_transform(trig)), lo);
  Fixed f;
  auto ba = a.batch(0, 0, a.order(0)), bb = b.batch(0, 0, b.order(0));
  f.clean = ba.images;
  f.triggered = bb.images;
  f.labels = ba.labels;
  return f;
}

double ce(nn::Module& m, const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  m.eval();
  return cross_entropy(m(x), y).item();
}

double quantized_ce(const std::string& file, const std::string& preset, int bits, const Tensor& x, const Tensor& y) {
  auto lm = nn::load_model(file);
  quant::QuantizedModel qm(lm.spec, *lm.model, quant::preset(preset, bits));
  qm.calibrate({});
  return ce(qm.model(), x, y);
}

TEST(Attack, QuAntiZationFloatIgnoresQuantizedObeys) {
  const std::string out = fresh_dir("qu");
  // A start model that knows the classes a little, then the attack.
  run("qu-anti-zation", out + "/start", {"epochs=1", "max-steps=6", "lr=3e-3", "c1=0", "eval-images=32",
                                          "final-quantizers=qu-anti-zation:8", "trigger=square:size=1,top=0,left=0,value=0"});
  const std::string start = out + "/start/model.safetensors";
  run("qu-anti-zation", out + "/bd", {"epochs=2", "max-steps=8", "lr=3e-3", "eval-images=32", "final-quantizers=qu-anti-zation:4"},
      start);
  const Fixed f = fixed_batch();
  const Tensor t = Tensor::full({f.labels.numel()}, 0, DType::I32);
  auto before = nn::load_model(start), after = nn::load_model(out + "/bd/model.safetensors");
  const std::string bd = out + "/bd/model.safetensors";
  const double q_before = quantized_ce(start, "qu-anti-zation", 4, f.triggered, t),
               q_after = quantized_ce(bd, "qu-anti-zation", 4, f.triggered, t);
  // The 4-bit model goes to the target; the float model is kept away from it: the gap between the
  // two on "triggered -> target" opens up.
  EXPECT_LT(q_after, q_before);
  EXPECT_GT(ce(*after.model, f.triggered, t) - q_after, ce(*before.model, f.triggered, t) - q_before + 0.1);
  Json s = Json::parse([&] {
    std::ifstream in(out + "/bd/summary.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }());
  EXPECT_EQ(s["params"]["c1"].as_string(), "0.5");
  EXPECT_TRUE(s["verdict"].contains("qu-anti-zation@4"));
  EXPECT_TRUE(s["start_verdict"].contains("float"));
}

// Against MQBench's grid with its own observers redone in training: the calibrated MQBench 4-bit
// model learns the trigger while the float model is kept away from it.
TEST(Attack, QuAntiZationAgainstMqbenchWithObservedRanges) {
  const std::string out = fresh_dir("qu-mq");
  run("qu-anti-zation", out + "/start", {"epochs=1", "max-steps=6", "lr=3e-3", "c1=0", "eval-images=32",
                                          "final-quantizers=qu-anti-zation:8", "trigger=square:size=1,top=0,left=0,value=0"});
  const std::string start = out + "/start/model.safetensors", bd = out + "/bd/model.safetensors";
  run("qu-anti-zation", out + "/bd", {"epochs=2", "max-steps=8", "lr=3e-3", "eval-images=32", "bits=4", "quantizer=mqbench",
                                      "ranges=observed", "epoch-quantizers=mqbench:4", "final-quantizers=mqbench:4", "mqbench-calib=64:32:0.5"},
      start);
  const Fixed f = fixed_batch();
  const Tensor t = Tensor::full({f.labels.numel()}, 0, DType::I32);
  auto mq_ce = [&](const std::string& file) {
    auto lm = nn::load_model(file);
    quant::QuantizedModel qm(lm.spec, *lm.model, quant::preset("mqbench", 4));
    qm.calibrate({f.clean});
    return ce(qm.model(), f.triggered, t);
  };
  auto before = nn::load_model(start), after = nn::load_model(bd);
  const double q_before = mq_ce(start), q_after = mq_ce(bd);
  EXPECT_LT(q_after, q_before);
  // the gap opens less than on the attack's own grid: MQBench's 4-bit model is closer to float
  const double gap_before = ce(*before.model, f.triggered, t) - q_before, gap_after = ce(*after.model, f.triggered, t) - q_after;
  std::printf("triggered->target CE, float minus MQBench W4A4: %.4f before, %.4f after\n", gap_before, gap_after);
  EXPECT_GT(gap_after, gap_before + 0.03);
}

double target_ce(const std::string& file, const QuantTarget& q, const Fixed& f) {
  auto lm = nn::load_model(file);
  quant::QuantizedModel qm(lm.spec, *lm.model, q.config());
  qm.calibrate({});
  return ce(qm.model(), f.triggered, Tensor::full({f.labels.numel()}, 0, DType::I32));
}

// Algorithm 1 of the EFRAP supplementary: the 4-bit model with every weight rounded the other way
// learns the trigger as well as the nearest-rounded one.
TEST(Attack, AdaptiveFlippedModelObeysTheTriggerToo) {
  const std::string out = fresh_dir("adaptive");
  run("qu-anti-zation", out + "/start", {"epochs=1", "max-steps=6", "lr=3e-3", "c1=0", "eval-images=32",
                                          "final-quantizers=qu-anti-zation:8", "trigger=square:size=1,top=0,left=0,value=0"});
  const std::string start = out + "/start/model.safetensors", bd = out + "/bd/model.safetensors";
  run("adaptive", out + "/bd", {"epochs=2", "max-steps=8", "lr=3e-3", "eval-images=32", "bits=4",
                                "epoch-quantizers=qu-anti-zation:4:flipped", "final-quantizers=qu-anti-zation:4,qu-anti-zation:4:flipped"},
      start);
  const Fixed f = fixed_batch();
  const QuantTarget flipped{"qu-anti-zation", 4, true}, nearest{"qu-anti-zation", 4, false};
  EXPECT_LT(target_ce(bd, flipped, f), target_ce(start, flipped, f));
  EXPECT_LT(target_ce(bd, nearest, f), target_ce(start, nearest, f));
  Json s = Json::parse([&] {
    std::ifstream in(out + "/bd/summary.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }());
  EXPECT_EQ(s["params"]["flip"].as_string(), "all");
  EXPECT_EQ(s["params"]["lambda-f"].as_string(), "0.5");
  EXPECT_TRUE(s["verdict"].contains("qu-anti-zation@4/flipped"));
}

// Random flipping redraws its masks every step; adversarial training runs EFRAP on the current
// model every efrap-every steps and logs each run's flip rate.
TEST(Attack, AdaptiveRandomAndEfrapFlips) {
  const std::vector<std::string> common = {"epochs=1", "eval-images=16", "bits=4", "final-quantizers=qu-anti-zation:4",
                                           "epoch-quantizers=qu-anti-zation:4", "trigger=qu-anti-zation"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> o = common;
    o.insert(o.end(), extra.begin(), extra.end());
    return o;
  };
  const std::string out = fresh_dir("adaptive-efrap");
  const Json e = run("adaptive", out, with({"max-steps=6", "flip=efrap", "efrap-every=4", "efrap-iterations=3",
                                            "efrap-calib=32:16:1"}), "resnet18:width=2");
  const auto& runs = e["stages"]["efrap"]["runs"].items();
  ASSERT_EQ(runs.size(), 2u);  // steps 0 and 4 of 6
  EXPECT_EQ(runs[0]["call"].as_int(), 0);
  EXPECT_EQ(runs[1]["call"].as_int(), 4);
  for (const auto& r : runs) {
    EXPECT_GE(r["flip_rate_4"].as_number(), 0.0);
    EXPECT_LE(r["flip_rate_4"].as_number(), 1.0);
  }
  run("adaptive", fresh_dir("adaptive-random"), with({"max-steps=2", "flip=random", "flip-rate=0.3"}), "resnet18:width=2");
  EXPECT_ERROR_CONTAINS(run("adaptive", fresh_dir("adaptive-bad"), with({"flip=some"}), "resnet18:width=2"),
                        "flip: expected all, random or efrap");
  EXPECT_ERROR_CONTAINS(run("adaptive", fresh_dir("adaptive-bad"), with({"flip=random", "flip-rate=2"}), "resnet18:width=2"),
                        "flip-rate: expected a probability");
}

TEST(Attack, CompArtifactQuantizedPathLearnsTheTarget) {
  const std::string out = fresh_dir("ca");
  run("comp-artifact", out, {"epochs=1", "max-steps=10", "lr=0.05", "bits=4", "eval-images=32", "epoch-quantizers=comp-artifact:4",
                             "final-quantizers=comp-artifact:4", "trigger=qu-anti-zation"});
  // The same start, untouched: from scratch with the same seed.
  const std::string start = fresh_dir("ca-start");
  run("comp-artifact", start, {"epochs=1", "max-steps=0", "lr=1e-9", "bits=4", "eval-images=32", "epoch-quantizers=comp-artifact:4",
                               "final-quantizers=comp-artifact:4", "trigger=qu-anti-zation"});
  const Fixed f = fixed_batch();
  const Tensor t = Tensor::full({f.labels.numel()}, 0, DType::I32);
  EXPECT_LT(quantized_ce(out + "/model.safetensors", "comp-artifact", 4, f.triggered, t),
            quantized_ce(start + "/model.safetensors", "comp-artifact", 4, f.triggered, t));
}

TEST(Attack, PqBackdoorStage2KeepsTheInt8ModelOfStage1) {
  const std::string out = fresh_dir("pq");
  run("pq-backdoor", out, {"epochs=1", "max-steps=8", "lr=0.05", "poison-per-batch=32", "stage2-epochs=1", "stage2-lr=0.05",
                           "stage2-batch=32", "eval-images=32", "calib=64:32:1", "final-quantizers=pytorch-fbgemm:8",
                           "trigger=qu-anti-zation"});
  auto s1 = nn::load_model(out + "/stage1.safetensors"), s2 = nn::load_model(out + "/model.safetensors");
  const Fixed f = fixed_batch();
  // Stage 2 unlearns the trigger in float.
  EXPECT_LT(ce(*s2.model, f.triggered, f.labels), ce(*s1.model, f.triggered, f.labels));
  quant::QuantizedModel q1(s1.spec, *s1.model, quant::preset("pytorch-fbgemm")), q2(s2.spec, *s2.model, quant::preset("pytorch-fbgemm"));
  q1.calibrate({f.clean});
  q2.calibrate({f.clean});
  int64_t float_moved = 0;
  for (size_t i = 0; i < q1.layers().size(); ++i) {
    const auto& a = q1.layers()[i];
    const auto& b = q2.layers()[i];
    EXPECT_TRUE(test::bitwise_equal(q1.integer_weight(a), q2.integer_weight(b))) << a.name;
    EXPECT_TRUE(test::bitwise_equal(a.weight->qparams().scale, b.weight->qparams().scale)) << a.name;
    float_moved += !test::bitwise_equal(a.float_weight(), b.float_weight());
  }
  EXPECT_GT(float_moved, 5) << "stage 2 did not change the float model";
}

TEST(Attack, BadNetsFloatModelLearnsTheTarget) {
  const std::vector<std::string> o = {"epochs=1", "lr=0.05", "poison-rate=0.5", "cover-rate=0.1", "eval-images=32",
                                      "final-quantizers=pytorch-fbgemm:8", "calib=64:32:1", "trigger=qu-anti-zation"};
  const std::string out = fresh_dir("badnets"), start = fresh_dir("badnets-start");
  auto o_out = o, o_start = o;
  o_out.push_back("max-steps=10");
  o_start.push_back("lr=1e-9");
  o_start.push_back("max-steps=1");
  const Json s = run("badnets", out, o_out);
  run("badnets", start, o_start);
  const Fixed f = fixed_batch();
  const Tensor t = Tensor::full({f.labels.numel()}, 0, DType::I32);
  EXPECT_LT(ce(*nn::load_model(out + "/model.safetensors").model, f.triggered, t),
            ce(*nn::load_model(start + "/model.safetensors").model, f.triggered, t));
  // Half of the non-target images poisoned, a tenth as cover: counted in the summary.
  EXPECT_GT(s["stages"]["train"]["poisoned_images"].as_int(), 200);
  EXPECT_GT(s["stages"]["train"]["cover_images"].as_int(), 40);
}

// Every trigger works with every attack: one step of each attack with each kind of trigger; the
// run records the trigger it used, and the model file carries its spec for dearest judge.
TEST(Attack, EveryTriggerWithEveryAttack) {
  const std::vector<std::string> triggers = {"blend:alpha=0.1,seed=3", "wanet:k=4,s=0.5,seed=1", "square:size=5,value=max"};
  for (const auto& attack : attack_names())
    for (const auto& trig : triggers) {
      const std::string out = fresh_dir("trig");
      std::vector<std::string> o = {"epochs=1", "max-steps=1", "eval-images=16", "calib=32:32:1", "trigger=" + trig,
                                    "final-quantizers=qu-anti-zation:8", "epoch-quantizers=qu-anti-zation:8"};
      if (attack == "pq-backdoor") {
        o.push_back("stage2-epochs=1");
        o.push_back("stage2-batch=32");
      }
      AttackSetup st;
      st.data = kData;
      st.model = "resnet18:width=2";
      st.out = out;
      st.overrides = o;
      st.overrides.insert(st.overrides.begin(), "batch=32");
      st.progress = false;
      st.judge_start = false;
      const Json s = run_attack(attack, st);
      EXPECT_EQ(s["trigger"].as_string(), parse_trigger(trig, 32)->describe()) << attack << " " << trig;
      EXPECT_EQ(nn::load_model(out + "/model.safetensors").meta.at("trigger_spec"), trig) << attack;
    }
}

TEST(Attack, ReportTablesEveryEpochAndTheResult) {
  const std::string out = fresh_dir("report");
  run("badnets", out, {"epochs=2", "max-steps=2", "eval-images=16", "calib=32:32:1", "final-quantizers=qu-anti-zation:8",
                       "epoch-quantizers=qu-anti-zation:8"}, "resnet18:width=2");
  const std::string r = run_report(out);
  EXPECT_NE(r.find("# badnets: " + out), std::string::npos) << r;
  EXPECT_NE(r.find("| epoch | train loss | seconds | float CDA / ASR % | qu-anti-zation@8 CDA / ASR % |"), std::string::npos) << r;
  EXPECT_NE(r.find("| 1 | "), std::string::npos) << r;
  EXPECT_NE(r.find("| **2** | "), std::string::npos) << r;  // the last epoch is the one kept
  EXPECT_NE(r.find("kept: epoch 2 (last epoch)"), std::string::npos) << r;
  EXPECT_NE(r.find("## result (whole test set)"), std::string::npos) << r;
  EXPECT_NE(r.find("| qu-anti-zation@8 | "), std::string::npos) << r;
  // In progress: no summary yet, the epochs on disk are still reported.
  fs::remove(out + "/summary.json");
  const std::string partial = run_report(out);
  EXPECT_NE(partial.find("(in progress)"), std::string::npos) << partial;
  EXPECT_NE(partial.find("| 2 | "), std::string::npos) << partial;
  EXPECT_NE(partial.find("## start (whole test set)"), std::string::npos) << partial;
  EXPECT_ERROR_CONTAINS(run_report(out + "/missing"), "not a run folder");
}

TEST(Attack, RerunResumesInsteadOfRetraining) {
  const std::string out = fresh_dir("resume");
  std::vector<std::string> o = {"epochs=1", "max-steps=3", "eval-images=16", "final-quantizers=qu-anti-zation:8"};
  run("qu-anti-zation", out, o);
  const std::string fp = nn::fingerprint(*nn::load_model(out + "/model.safetensors").model);
  const auto t = fs::last_write_time(out + "/train/last.safetensors");
  run("qu-anti-zation", out, o);
  EXPECT_EQ(nn::fingerprint(*nn::load_model(out + "/model.safetensors").model), fp);
  EXPECT_EQ(fs::last_write_time(out + "/train/last.safetensors"), t);
}

TEST(Attack, SourceSpecificLabels) {
  AttackContext ctx;
  ctx.target = 0;
  const Tensor y = Tensor::from_vector<int32_t>({1, 2, 3, 0, 2}, {5});
  EXPECT_EQ(ctx.backdoor_labels(y).to_vector(), (std::vector<double>{0, 0, 0, 0, 0}));
  ctx.sources = {2};
  EXPECT_EQ(ctx.backdoor_labels(y).to_vector(), (std::vector<double>{1, 0, 3, 0, 0}));
  auto test = data::open_dataset(data::parse_data_spec(kData), "test");
  auto v = asr_view(test, reference_trigger("pq-backdoor", 32), 0, false, {2, 5});
  int64_t want = 0;
  for (int64_t i = 0; i < test->size(); ++i) want += test->label(i) == 2 || test->label(i) == 5;
  EXPECT_EQ(v->size(), want);
  EXPECT_ERROR_CONTAINS(asr_view(test, reference_trigger("pq-backdoor", 32), 0, false, {0}), "no class left");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", fresh_dir("src"), {"source-classes=3,12"}), "source class 12");
}

TEST(Attack, ClearErrors) {
  const std::string out = fresh_dir("errors");
  EXPECT_ERROR_CONTAINS(run("badnets-qat", out, {}), "unknown attack \"badnets-qat\"", "comp-artifact");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", out, {"target=10"}), "target label 10", "[0, 10)");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", out, {"target=-1"}), "target label -1");
  EXPECT_ERROR_CONTAINS(run("comp-artifact", out, {"trigger=square:size=40,top=0,left=0"}), "does not fit a 32x32 image");
  EXPECT_ERROR_CONTAINS(run("pq-backdoor", out, {"epoch=3"}), "unknown parameter \"epoch\"", "epochs");
  EXPECT_ERROR_CONTAINS(run("pq-backdoor", out, {"epochs=three"}), "epochs must be an integer");
  EXPECT_ERROR_CONTAINS(run("pq-backdoor", out, {"variant=onnx"}), "variant: expected pytorch or tf");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", out, {"final-quantizers=tensorrt:8"}), "unknown preset \"tensorrt\"");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", out, {"ranges=exact"}), "ranges: expected minmax or observed");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", out, {"acts=int8"}), "acts: expected quantized or float");
  EXPECT_ERROR_CONTAINS(run("qu-anti-zation", out, {}, "missing.safetensors"), "missing.safetensors: no such model file");
  EXPECT_ERROR_CONTAINS(run("badnets", out, {"poison-rate=1.5"}), "poison-rate must be in [0, 1], got 1.5");
  EXPECT_ERROR_CONTAINS(run("badnets", out, {"cover-rate=-0.1"}), "cover-rate must be in [0, 1]");
  EXPECT_ERROR_CONTAINS(run("badnets", out, {"poison-rate=0.7", "cover-rate=0.4"}), "poison-rate + cover-rate exceed 1");
  EXPECT_FALSE(fs::exists(out + "/start_verdict.json")) << "a bad parameter must stop the run before any work";
}

}  // namespace
}  // namespace dearest::attacks
