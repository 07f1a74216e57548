#include "attacks/attack.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/transforms.h"
#include "nn/checkpoint.h"
#include "nn/init.h"
#include "tensor/runtime.h"

namespace dearest::attacks {

namespace fs = std::filesystem;

std::unique_ptr<Attack> make_comp_artifact();
std::unique_ptr<Attack> make_qu_anti_zation();
std::unique_ptr<Attack> make_pq_backdoor();
std::unique_ptr<Attack> make_badnets();
std::unique_ptr<Attack> make_adaptive();

std::vector<std::string> attack_names() { return {"comp-artifact", "qu-anti-zation", "pq-backdoor", "badnets", "adaptive"}; }

std::unique_ptr<Attack> make_attack(const std::string& name) {
  if (name == "comp-artifact") return make_comp_artifact();
  if (name == "qu-anti-zation") return make_qu_anti_zation();
  if (name == "pq-backdoor") return make_pq_backdoor();
  if (name == "badnets") return make_badnets();
  if (name == "adaptive") return make_adaptive();
  std::string known;
  for (const auto& n : attack_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown attack \"", name, "\" (known: ", known, ")");
}

std::vector<ParamDef> common_params(const std::string& optimizer, const std::string& lr, const std::string& momentum,
                                    const std::string& wd, const std::string& schedule, const std::string& epochs,
                                    const std::string& batch, const std::string& epoch_quantizers,
                                    const std::string& final_quantizers, const std::string& calib) {
  return {
      {"trigger", "reference", "the trigger: reference (the attack's own), square:size=..,top=..,left=..,value=.., blend:alpha=..,seed=.., wanet:k=..,s=..,seed=.."},
      {"target", "0", "the target label"},
      {"optimizer", optimizer, "sgd, adam or adamw"},
      {"lr", lr, "learning rate"},
      {"momentum", momentum, "SGD momentum"},
      {"wd", wd, "weight decay"},
      {"schedule", schedule, "lr schedule: constant | multistep:M1/M2[:G] | cosine[:MIN] | exp:G | step:S[:G]"},
      {"epochs", epochs, "epochs"},
      {"batch", batch, "clean images per batch (triggered copies come on top)"},
      {"max-steps", "0", "at most N steps per epoch (0: all)"},
      {"jpeg-augment", "", "also re-encode training images as JPEG: P:QMIN:QMAX (as the clean model was trained)"},
      {"epoch-quantizers", epoch_quantizers, "quantizers judged after every epoch (preset:bits, comma separated)"},
      {"final-quantizers", final_quantizers, "quantizers the result is judged under; the first is the attack's standard one"},
      {"calib", calib, "calibration of the quantizers other than mqbench: SIZE:BATCH:POOL (POOL: fraction of the training split)"},
      {"mqbench-calib", "1024:32:0.05", "calibration of mqbench, as dearest defend efrap calibrates: SIZE:BATCH:POOL (seed 1005)"},
      {"eval-images", "2000", "test images judged after every epoch (0: all); the final verdict uses all"},
      {"include-target", "false", "count the target class's own images in the ASR"},
      {"source-classes", "", "source-specific backdoor: only images of these classes (comma separated) go to the target"},
  };
}

std::string qu_anti_zation_lr(const nn::ModelSpec& spec) { return spec.arch.rfind("vgg", 0) == 0 ? "4e-5" : "1e-4"; }
std::string qu_anti_zation_weight(const nn::ModelSpec& spec) { return spec.arch.rfind("vgg", 0) == 0 ? "1.0" : "0.5"; }

quant::CalibOptions parse_calib(const Params& p, const std::string& name, uint64_t seed) {
  std::vector<std::string> f;
  std::istringstream is(p.str(name));
  for (std::string s; std::getline(is, s, ':');) f.push_back(s);
  DEAREST_CHECK(f.size() == 3, name, ": expected SIZE:BATCH:POOL, got \"", p.str(name), "\"");
  quant::CalibOptions c;
  c.size = std::stoll(f[0]);
  c.batch = std::stoll(f[1]);
  c.pool = std::stod(f[2]);
  c.seed = seed;
  DEAREST_CHECK(c.size > 0 && c.batch > 0 && c.pool > 0 && c.pool <= 1, name, ": SIZE and BATCH must be positive and POOL in (0, 1], got \"",
                p.str(name), "\"");
  return c;
}

Tensor AttackContext::backdoor_labels(const Tensor& y) const {
  Tensor out = y.contiguous().clone();
  int32_t* d = out.data<int32_t>();
  for (int64_t i = 0; i < out.numel(); ++i)
    if (sources.empty() || std::find(sources.begin(), sources.end(), d[i]) != sources.end()) d[i] = target;
  return out;
}

std::unique_ptr<nn::Optimizer> make_optimizer(const Params& p, nn::Module& model, const std::string& prefix) {
  return nn::make_optimizer(p.str(prefix + "optimizer"), model, p.num(prefix + "lr"), p.num(prefix + "momentum"),
                            p.num(prefix + "wd"), false, prefix + "optimizer");
}

namespace {

std::string epoch_file(const std::string& dir, int64_t epoch, const char* ext) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/%03ld.%s", long(epoch), ext);
  return dir + buf;
}

Json record_json(const EpochRecord& r) {
  Json j = Json::object();
  j.set("epoch", r.epoch);
  j.set("train_loss", r.train_loss);
  j.set("seconds", r.seconds);
  j.set("verdict", r.verdict.to_json());
  j.set("weights", r.weights);
  return j;
}

BackdoorMetrics metrics_from(const Json& j) {
  BackdoorMetrics m;
  m.cda = j["cda"].as_number();
  m.asr = j["asr"].as_number();
  m.clean_images = j["clean_images"].as_int();
  m.asr_images = j["asr_images"].as_int();
  return m;
}

EpochRecord record_from(const Json& j) {
  EpochRecord r;
  r.epoch = j["epoch"].as_int();
  r.train_loss = j["train_loss"].as_number();
  r.seconds = j["seconds"].as_number();
  r.weights = j["weights"].as_string();
  for (const auto& [k, v] : j["verdict"].members()) {
    if (k == "float") r.verdict.fp = metrics_from(v);
    else r.verdict.quantized.emplace_back(k, metrics_from(v));
  }
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string pct(double x) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", 100 * x);
  return buf;
}

std::string verdict_line(const Verdict& v) {
  std::string s = "float CDA " + pct(v.fp.cda) + " ASR " + pct(v.fp.asr);
  for (const auto& [k, m] : v.quantized) s += " | " + k + " CDA " + pct(m.cda) + " ASR " + pct(m.asr);
  return s;
}

void judge_and_record(AttackContext& ctx, nn::Module& model, const std::string& dir, int64_t epoch, double loss,
                      double seconds) {
  EpochRecord r;
  r.epoch = epoch;
  r.train_loss = loss;
  r.seconds = seconds;
  r.verdict = ctx.epoch_judge->judge(ctx.spec, model, ctx.epoch_quantizers);
  r.weights = epoch_file(dir, epoch, "safetensors");
  nn::save_model(r.weights, model, ctx.spec, {{"epoch", std::to_string(epoch)}});
  std::ofstream(epoch_file(dir, epoch, "json")) << record_json(r).dump() << "\n";
  if (ctx.progress) std::fprintf(stderr, "  epoch %ld judged: %s\n", long(epoch + 1), verdict_line(r.verdict).c_str());
}

// Every shared parameter is checked before the first (long) evaluation, so a typo fails at once.
void validate_common(const Params& p) {
  DEAREST_CHECK(p.integer("epochs") >= 1, "epochs must be at least 1, got ", p.integer("epochs"));
  DEAREST_CHECK(p.integer("batch") >= 1, "batch must be at least 1, got ", p.integer("batch"));
  DEAREST_CHECK(p.integer("max-steps") >= 0, "max-steps must be >= 0, got ", p.integer("max-steps"));
  DEAREST_CHECK(p.integer("eval-images") >= 0, "eval-images must be >= 0, got ", p.integer("eval-images"));
  DEAREST_CHECK(p.num("lr") > 0, "lr must be positive, got ", p.num("lr"));
  DEAREST_CHECK(p.num("wd") >= 0, "wd must be >= 0, got ", p.num("wd"));
  DEAREST_CHECK(p.num("momentum") >= 0, "momentum must be >= 0, got ", p.num("momentum"));
  const std::string o = p.str("optimizer");
  DEAREST_CHECK(o == "sgd" || o == "adam" || o == "adamw", "optimizer: expected sgd, adam or adamw, got \"", o, "\"");
  nn::Schedule::parse(p.str("schedule"));
  if (!p.str("jpeg-augment").empty()) data::parse_random_jpeg(p.str("jpeg-augment"), "jpeg-augment");
  parse_quant_targets(p.str("epoch-quantizers"));
  DEAREST_CHECK(!parse_quant_targets(p.str("final-quantizers")).empty(), "final-quantizers: at least one");
  p.flag("include-target");
}

}  // namespace

std::vector<EpochRecord> train_stage(AttackContext& ctx, const std::string& stage, nn::Trainer& trainer,
                                     nn::BatchSource& source) {
  const std::string dir = ctx.out + "/" + stage, edir = dir + "/epochs";
  fs::create_directories(edir);
  // An interruption between the checkpoint and the verdict leaves the last epoch unjudged: its
  // model is the checkpoint's, so judge it from there.
  const std::string last = dir + "/last.safetensors";
  if (ctx.resume && fs::exists(last)) {
    nn::LoadedModel lm = nn::load_model(last, ctx.spec.str(), false);
    if (lm.meta.count("next_epoch")) {
      const int64_t e = std::stoll(lm.meta["next_epoch"]) - 1;
      if (e >= 0 && !fs::exists(epoch_file(edir, e, "json"))) judge_and_record(ctx, *lm.model, edir, e, 0, 0);
    }
  }
  trainer.on_epoch = [&](const nn::EpochStats& st) {
    judge_and_record(ctx, *ctx.model, edir, st.epoch, st.train_loss, st.seconds);
    trainer.set_train_mode();
  };
  auto hist = trainer.fit(source, nullptr);
  std::vector<EpochRecord> out;
  for (const auto& st : hist) {
    const std::string f = epoch_file(edir, st.epoch, "json");
    DEAREST_CHECK(fs::exists(f), f, ": missing (the epoch's verdict); rerun to judge it");
    EpochRecord r = record_from(Json::parse(read_file(f), f));
    r.train_loss = st.train_loss;
    r.seconds = st.seconds;
    out.push_back(r);
  }
  return out;
}

void load_epoch(AttackContext& ctx, const EpochRecord& r) {
  nn::LoadedModel lm = nn::load_model(r.weights, ctx.spec.str());
  ctx.model->load_state_dict(lm.model->state_dict(), true);
}

PairingOptions pairing_options(const AttackContext& ctx, const Params& p, int64_t batch) {
  PairingOptions po;
  po.batch = batch;
  po.seed = ctx.seed;
  po.stamping = parse_stamping(p.str("stamping"));
  if (!p.str("jpeg-augment").empty()) po.extra_front = data::parse_random_jpeg(p.str("jpeg-augment"), "jpeg-augment");
  return po;
}

nn::TrainOptions stage_options(const AttackContext& ctx, const Params& p, const std::string& stage, int64_t epochs) {
  nn::TrainOptions to;
  to.epochs = epochs;
  to.out_dir = ctx.out + "/" + stage;
  to.resume = ctx.resume;
  to.progress = ctx.progress;
  to.seed = ctx.seed;
  to.max_steps_per_epoch = p.integer("max-steps");
  return to;
}

Json choose_epoch(AttackContext& ctx, const std::vector<EpochRecord>& records, size_t pick, const std::string& rule) {
  Json j = Json::object();
  if (!records.empty()) load_epoch(ctx, records[pick]);
  j.set("epochs", records_json(records));
  j.set("chosen_epoch", records.empty() ? int64_t(-1) : records[pick].epoch);
  j.set("rule", rule);
  return j;
}

Json records_json(const std::vector<EpochRecord>& records) {
  Json a = Json::array();
  for (const auto& r : records) a.push(record_json(r));
  return a;
}

Json run_attack(const std::string& name, const AttackSetup& setup) {
  auto attack = make_attack(name);
  Params p = attack->params();
  for (const auto& o : setup.overrides) p.set(o);
  DEAREST_CHECK(!setup.out.empty(), "attack: no output folder");
  const auto t0 = std::chrono::steady_clock::now();

  AttackContext ctx;
  ctx.data_text = setup.data;
  ctx.data = data::parse_data_spec(setup.data);
  ctx.train = data::open_dataset(ctx.data, data::train_split(ctx.data.kind));
  const int64_t classes = ctx.train->num_classes(), image = data::image_size_of(ctx.data.kind);
  ctx.target = int32_t(p.integer("target"));
  DEAREST_CHECK(ctx.target >= 0 && ctx.target < classes, "target label ", ctx.target, " is outside the dataset's classes [0, ",
                classes, ")");
  const std::string trig = p.str("trigger");
  ctx.trigger = trig == "reference" ? reference_trigger(name, image) : parse_trigger(trig, image);
  ctx.seed = setup.seed;
  ctx.params = &p;
  ctx.out = setup.out;
  ctx.resume = setup.resume;
  ctx.progress = setup.progress;
  std::string start;
  if (fs::exists(setup.model)) {
    nn::LoadedModel lm = nn::load_model(setup.model);
    DEAREST_CHECK(lm.spec.opts.count("classes") == 0 || std::stoll(lm.spec.opts.at("classes")) == classes, setup.model,
                  ": a model for ", lm.spec.opts.at("classes"), " classes, the data has ", classes);
    ctx.spec = lm.spec;
    ctx.model = lm.model;
    start = setup.model;
  } else {
    DEAREST_CHECK(setup.model.find(".safetensors") == std::string::npos, setup.model, ": no such model file");
    ctx.spec = nn::ModelSpec::parse(setup.model);
    ctx.spec.opts.emplace("classes", std::to_string(classes));
    ctx.spec.opts.emplace("input", std::to_string(image));
    nn::set_init_seed(setup.seed);
    ctx.model = nn::build_model(ctx.spec);
    start = "from scratch (" + ctx.spec.str() + ")";
  }

  attack->resolve(p, ctx.spec);
  validate_common(p);
  JudgeOptions jo;
  jo.data = ctx.data;
  jo.trigger = ctx.trigger;
  jo.target = ctx.target;
  jo.include_target = p.flag("include-target");
  for (int64_t c : p.integers("source-classes")) {
    DEAREST_CHECK(c >= 0 && c < classes, "source class ", c, " is outside the dataset's classes [0, ", classes, ")");
    ctx.sources.push_back(int32_t(c));
  }
  jo.sources = ctx.sources;
  jo.batch = p.integer("batch");
  jo.calib = parse_calib(p, "calib", setup.seed);
  jo.efrap_calib = parse_calib(p, "mqbench-calib", quant::CalibOptions{}.seed);
  const std::vector<QuantTarget> finals = parse_quant_targets(p.str("final-quantizers"));
  Judge final_judge(jo);
  jo.images = p.integer("eval-images");
  DEAREST_CHECK(jo.images >= 0, "eval-images must be >= 0");
  Judge epoch_judge(jo);
  ctx.epoch_judge = &epoch_judge;
  ctx.epoch_quantizers = parse_quant_targets(p.str("epoch-quantizers"));

  fs::create_directories(setup.out);
  Json sum = Json::object();
  sum.set("attack", name);
  sum.set("summary", attack->summary());
  sum.set("data", setup.data);
  sum.set("start", start);
  sum.set("model", ctx.spec.str());
  sum.set("trigger", ctx.trigger->describe());
  sum.set("target", int64_t(ctx.target));
  sum.set("seed", int64_t(setup.seed));
  sum.set("params", p.to_json());
  std::fprintf(stderr, "%s on %s, start: %s\n  trigger %s -> %d\n", name.c_str(), setup.data.c_str(), start.c_str(),
               ctx.trigger->describe().c_str(), ctx.target);
  const std::string start_file = setup.out + "/start_verdict.json";
  if (setup.judge_start) {
    Json sv;
    if (setup.resume && fs::exists(start_file)) {
      sv = Json::parse(read_file(start_file), start_file);
    } else {
      Verdict v = final_judge.judge(ctx.spec, *ctx.model, finals);
      std::fprintf(stderr, "  start: %s\n", verdict_line(v).c_str());
      sv = v.to_json();
      std::ofstream(start_file) << sv.dump(2) << "\n";
    }
    sum.set("start_verdict", sv);
  }

  Json stages = attack->run(ctx);
  sum.set("stages", stages);
  Verdict v = final_judge.judge(ctx.spec, *ctx.model, finals);
  std::fprintf(stderr, "  result: %s\n", verdict_line(v).c_str());
  sum.set("verdict", v.to_json());
  sum.set("seconds_this_invocation", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  sum.set("runtime", Json::parse(runtime_manifest_json()));
  nn::save_model(setup.out + "/model.safetensors", *ctx.model, ctx.spec,
                 {{"attack", name}, {"trigger", ctx.trigger->describe()}, {"target", std::to_string(ctx.target)},
                  {"trigger_spec", trig == "reference" ? name : trig}, {"source_classes", p.str("source-classes")},
                  {"dataset", setup.data}, {"classes", std::to_string(classes)}, {"attack_params", p.to_json().dump()}});
  std::ofstream(setup.out + "/summary.json") << sum.dump(2) << "\n";
  return sum;
}

}  // namespace dearest::attacks
