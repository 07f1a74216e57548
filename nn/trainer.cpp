#include "nn/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/layers.h"
#include "tensor/json.h"
#include "tensor/safetensors.h"

namespace dearest::nn {

namespace fs = std::filesystem;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string hms(double s) {
  const int64_t t = int64_t(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

// A progress line, redrawn in place on a terminal, or printed every 10% when stderr is a file.
class Progress {
 public:
  // first: steps already done before this process (an epoch resumed in its middle).
  Progress(bool on, std::string what, int64_t total, int64_t first = 0)
      : on_(on), tty_(isatty(2)), what_(std::move(what)), total_(total), first_(first), t0_(now()) {}
  // images: those of this process's steps (the throughput shown).
  void update(int64_t done, int64_t images, const std::string& extra) {
    if (!on_) return;
    const double t = now();
    const int64_t decile = total_ ? done * 10 / total_ : 0;
    if (tty_ ? (t - last_ < 0.25 && done < total_) : (decile == last_decile_ && done < total_)) return;
    last_ = t;
    last_decile_ = decile;
    const double el = t - t0_, ips = el > 0 ? double(images) / el : 0;
    const double eta = done > first_ ? el * double(total_ - done) / double(done - first_) : 0;
    std::fprintf(stderr, "%s%s %ld/%ld %s | %.0f img/s | %s elapsed, ETA %s%s", tty_ ? "\r\033[K" : "", what_.c_str(),
                 done, total_, extra.c_str(), ips, hms(el).c_str(), hms(eta).c_str(), tty_ ? "" : "\n");
    std::fflush(stderr);
  }
  void finish() {
    if (on_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  bool on_, tty_;
  std::string what_;
  int64_t total_, first_;
  double t0_, last_ = 0;
  int64_t last_decile_ = -1;
};

int64_t correct_of(const Tensor& logits, const Tensor& labels) {
  NoGradGuard ng;
  Tensor pred = argmax(logits, 1);
  const int32_t* p = pred.data<int32_t>();
  Tensor l = labels.contiguous();
  const int32_t* y = l.data<int32_t>();
  int64_t c = 0;
  for (int64_t i = 0; i < pred.numel(); ++i) c += p[i] == y[i];
  return c;
}

// Where an interrupted epoch stood at its last in-epoch checkpoint, with the sums its statistics
// are made of (so the resumed epoch reports what an uninterrupted one would).
struct PartialEpoch {
  int64_t next_batch = 0, correct = 0, seen = 0;
  double loss_sum = 0, seconds = 0;
  static PartialEpoch from(const Metadata& m) {
    PartialEpoch p;
    p.next_batch = std::stoll(m.at("next_batch"));
    p.correct = std::stoll(m.at("correct"));
    p.seen = std::stoll(m.at("seen"));
    p.loss_sum = std::stod(m.at("loss_sum"));
    p.seconds = std::stod(m.at("seconds"));
    return p;
  }
  void to(Metadata& m) const {
    char b[64];
    m["next_batch"] = std::to_string(next_batch);
    m["correct"] = std::to_string(correct);
    m["seen"] = std::to_string(seen);
    std::snprintf(b, sizeof b, "%.17g", loss_sum);  // round-trips exactly
    m["loss_sum"] = b;
    std::snprintf(b, sizeof b, "%.17g", seconds);
    m["seconds"] = b;
  }
};

std::string metadata_value(const SafetensorsFile& f, const std::string& key, const std::string& otherwise) {
  for (const auto& [k, v] : f.metadata)
    if (k == key) return v;
  return otherwise;
}

EpochStats stats_from_json(const Json& j) {
  EpochStats s;
  s.epoch = j["epoch"].as_int();
  s.lr = j["lr"].as_number();
  s.train_loss = j["train_loss"].as_number();
  s.train_top1 = j["train_top1"].as_number();
  s.test_loss = j.contains("test_loss") ? j["test_loss"].as_number() : 0;
  s.test_top1 = j.contains("test_top1") ? j["test_top1"].as_number() : -1;
  s.seconds = j["seconds"].as_number();
  s.images_per_second = j["images_per_second"].as_number();
  s.fingerprint = j["fingerprint"].as_string();
  return s;
}

}  // namespace

std::string epoch_stats_json(const EpochStats& s) {
  Json j = Json::object();
  j.set("epoch", s.epoch);
  j.set("lr", s.lr);
  j.set("train_loss", s.train_loss);
  j.set("train_top1", s.train_top1);
  if (s.test_top1 >= 0) {
    j.set("test_loss", s.test_loss);
    j.set("test_top1", s.test_top1);
  }
  j.set("seconds", s.seconds);
  j.set("images_per_second", s.images_per_second);
  j.set("fingerprint", s.fingerprint);
  return j.dump();
}

EvalResult evaluate(Module& model, BatchSource& data, bool progress) {
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  data.begin_epoch(0);
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  Progress bar(progress, "eval", data.num_batches());
  for (int64_t b = 0; b < data.num_batches(); ++b) {
    Tensor x, y;
    data.get(b, x, y);
    Tensor logits = model(x);
    loss_sum += dearest::cross_entropy(logits, y, Reduction::Sum).item();
    correct += correct_of(logits, y);
    r.samples += y.numel();
    bar.update(b + 1, r.samples, "");
  }
  bar.finish();
  model.train(was_training);
  r.loss = r.samples ? loss_sum / double(r.samples) : 0;
  r.top1 = r.samples ? double(correct) / double(r.samples) : 0;
  return r;
}

Trainer::Trainer(Module& model, const ModelSpec& spec, Optimizer& opt, Schedule schedule, TrainOptions options)
    : model_(model), spec_(spec), opt_(opt), schedule_(std::move(schedule)), o_(std::move(options)), base_lr_(opt.lr) {
  loss = [this](Module& m, const Tensor& x, const Tensor& y, Tensor& logits) {
    logits = m(x);
    CrossEntropyOptions ce;
    ce.label_smoothing = o_.label_smoothing;
    return nn::cross_entropy(logits, y, ce);
  };
}

void Trainer::set_train_mode() {
  model_.train(!o_.model_eval);
  if (o_.batchnorm_eval)
    for (auto& [name, m] : model_.named_modules())
      if (m->type() == "BatchNorm2d") m->eval();
}

std::vector<EpochStats> Trainer::fit(BatchSource& train, BatchSource* test) {
  std::vector<EpochStats> history;
  const std::string ckpt = o_.out_dir.empty() ? "" : o_.out_dir + "/last.safetensors";
  const std::string log = o_.out_dir.empty() ? "" : o_.out_dir + "/log.jsonl";
  if (!o_.out_dir.empty()) fs::create_directories(o_.out_dir);
  start_epoch_ = 0;
  if (!ckpt.empty() && o_.resume && fs::exists(ckpt)) {
    Metadata meta = load_checkpoint(ckpt, model_, opt_);
    DEAREST_CHECK(meta.count("next_epoch"), ckpt, ": not a training checkpoint (no next_epoch)");
    start_epoch_ = std::stoll(meta["next_epoch"]);
    // The log keeps the epochs before the checkpoint; anything after it is replayed.
    if (fs::exists(log)) {
      std::ifstream in(log);
      std::string line;
      while (std::getline(in, line))
        if (!line.empty()) {
          EpochStats s = stats_from_json(Json::parse(line, log));
          if (s.epoch < start_epoch_) history.push_back(s);
        }
    }
    std::ofstream out(log, std::ios::trunc);
    for (const auto& s : history) out << epoch_stats_json(s) << "\n";
    if (o_.progress)
      std::fprintf(stderr, "resuming %s at epoch %ld (fingerprint %s)\n", ckpt.c_str(), start_epoch_,
                   meta["fingerprint"].substr(0, 16).c_str());
  } else if (!log.empty()) {
    std::ofstream(log, std::ios::trunc);
  }
  // An epoch interrupted in its middle: its last in-epoch checkpoint, if it belongs to the epoch
  // the run resumes at (one left from a finished epoch is stale).
  const std::string partial = o_.out_dir.empty() ? "" : o_.out_dir + "/partial.safetensors";
  PartialEpoch resume_in_epoch;
  if (!partial.empty() && fs::exists(partial)) {
    if (o_.resume && std::stoll(metadata_value(read_safetensors(partial), "epoch", "-1")) == start_epoch_) {
      const Metadata meta = load_checkpoint(partial, model_, opt_);
      resume_in_epoch = PartialEpoch::from(meta);
      if (o_.progress)
        std::fprintf(stderr, "resuming %s at epoch %ld, step %ld\n", partial.c_str(), start_epoch_ + 1, resume_in_epoch.next_batch);
    } else {
      fs::remove(partial);
    }
  }
  const int64_t steps = o_.max_steps_per_epoch > 0 ? std::min(o_.max_steps_per_epoch, train.num_batches()) : train.num_batches();
  for (int64_t epoch = start_epoch_; epoch < o_.epochs; ++epoch) {
    set_train_mode();
    train.begin_epoch(epoch);
    EpochStats st;
    st.epoch = epoch;
    st.lr = schedule_.lr(base_lr_, epoch, o_.epochs);
    // Steps, sums and seconds of this epoch done before an interruption.
    PartialEpoch done;
    if (epoch == start_epoch_) done = resume_in_epoch;
    double loss_sum = done.loss_sum;
    int64_t correct = done.correct, seen = done.seen;
    const double t0 = now();
    double saved = t0;
    Progress bar(o_.progress, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs), steps, done.next_batch);
    for (int64_t b = done.next_batch; b < steps; ++b) {
      opt_.lr = schedule_.lr(base_lr_, epoch, o_.epochs, double(b) / double(steps));
      Tensor x, y, logits;
      train.get(b, x, y);
      set_dropout_context(o_.seed, epoch * steps + b);
      opt_.zero_grad();
      Tensor l = loss(model_, x, y, logits);
      backward(l);
      opt_.step();
      const double lv = l.item();
      DEAREST_CHECK(std::isfinite(lv), "training diverged: loss ", lv, " at epoch ", epoch, " step ", b,
                    " (lower the learning rate?)");
      loss_sum += lv * double(y.numel());
      correct += correct_of(logits, y);
      seen += y.numel();
      if (on_step) on_step(epoch * steps + b, lv);
      char extra[96];
      std::snprintf(extra, sizeof extra, "loss %.4f top1 %.2f%% lr %.4g", loss_sum / double(seen),
                    100.0 * double(correct) / double(seen), opt_.lr);
      bar.update(b + 1, seen - done.seen, extra);
      if (!partial.empty() && o_.checkpoint_seconds > 0 && b + 1 < steps && now() - saved >= o_.checkpoint_seconds) {
        Metadata meta = extra_metadata;
        meta["epoch"] = std::to_string(epoch);
        PartialEpoch{b + 1, correct, seen, loss_sum, done.seconds + now() - t0}.to(meta);
        save_checkpoint(partial, model_, spec_, opt_, meta);
        saved = now();
      }
    }
    bar.finish();
    st.seconds = done.seconds + now() - t0;
    st.train_loss = loss_sum / double(std::max<int64_t>(1, seen));
    st.train_top1 = double(correct) / double(std::max<int64_t>(1, seen));
    st.images_per_second = double(seen) / st.seconds;
    if (test && o_.eval_every > 0 && ((epoch + 1) % o_.eval_every == 0 || epoch + 1 == o_.epochs)) {
      EvalResult e = evaluate(model_, *test, false);
      st.test_loss = e.loss;
      st.test_top1 = e.top1;
    }
    st.fingerprint = fingerprint(model_);
    if (!ckpt.empty()) {
      Metadata meta = extra_metadata;
      meta["next_epoch"] = std::to_string(epoch + 1);
      meta["epochs"] = std::to_string(o_.epochs);
      meta["schedule"] = schedule_.str();
      meta["base_lr"] = std::to_string(base_lr_);
      save_checkpoint(ckpt, model_, spec_, opt_, meta);
      std::ofstream(log, std::ios::app) << epoch_stats_json(st) << "\n";
      fs::remove(partial);
    }
    if (o_.progress)
      std::fprintf(stderr, "epoch %ld/%ld: train loss %.4f top1 %.2f%%%s, %.1f s, %.0f img/s\n", epoch + 1, o_.epochs,
                   st.train_loss, 100 * st.train_top1,
                   st.test_top1 >= 0 ? (", test top1 " + std::to_string(100 * st.test_top1).substr(0, 5) + "%").c_str() : "",
                   st.seconds, st.images_per_second);
    history.push_back(st);
    if (on_epoch) on_epoch(st);
  }
  return history;
}

}  // namespace dearest::nn
