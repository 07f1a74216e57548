#include "attacks/report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "tensor/error.h"
#include "tensor/json.h"

namespace dearest::attacks {

namespace {

namespace fs = std::filesystem;

Json read_json(const fs::path& p) {
  std::ifstream f(p);
  DEAREST_CHECK(f.good(), p.string(), ": cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  return Json::parse(ss.str(), p.string());
}

std::string pct(const Json& m, const char* key) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100 * m[key].as_number());
  return b;
}

// One row per quantizer of a verdict object: name | CDA | ASR.
void verdict_table(std::ostringstream& os, const Json& v, const Json* start) {
  os << "| model | CDA % | ASR % |" << (start ? " start CDA % | start ASR % |" : "") << "\n|---|---|---|"
     << (start ? "---|---|" : "") << "\n";
  for (const auto& [name, m] : v.members()) {
    if (!m.is_object() || !m.contains("cda")) continue;
    os << "| " << name << " | " << pct(m, "cda") << " | " << pct(m, "asr") << " |";
    if (start) {
      if (start->contains(name)) os << " " << pct((*start)[name], "cda") << " | " << pct((*start)[name], "asr") << " |";
      else os << " | |";
    }
    os << "\n";
  }
}

void epochs_table(std::ostringstream& os, const std::vector<Json>& epochs, int64_t chosen) {
  if (epochs.empty()) {
    os << "(no epoch finished yet)\n";
    return;
  }
  std::vector<std::string> names;
  for (const auto& [name, m] : epochs.front()["verdict"].members())
    if (m.is_object() && m.contains("cda")) names.push_back(name);
  os << "| epoch | train loss | seconds |";
  for (const auto& n : names) os << " " << n << " CDA / ASR % |";
  os << "\n|---|---|---|";
  for (size_t i = 0; i < names.size(); ++i) os << "---|";
  os << "\n";
  for (const auto& e : epochs) {
    const int64_t ep = e["epoch"].as_int();
    char b[96];
    std::snprintf(b, sizeof b, "| %s%ld%s | %.4f | %.0f |", ep == chosen ? "**" : "", long(ep + 1), ep == chosen ? "**" : "",
                  e["train_loss"].as_number(), e["seconds"].as_number());
    os << b;
    const Json& v = e["verdict"];
    for (const auto& n : names) os << " " << (v.contains(n) ? pct(v[n], "cda") + " / " + pct(v[n], "asr") : "-") << " |";
    os << "\n";
  }
}

}  // namespace

std::string run_report(const std::string& run) {
  DEAREST_CHECK(fs::is_directory(run), run, ": not a run folder (dearest attack --out X.safetensors keeps it in X.run)");
  std::ostringstream os;
  const fs::path dir(run), summary = dir / "summary.json", start_file = dir / "start_verdict.json";
  Json sum;
  const bool done = fs::exists(summary);
  if (done) sum = read_json(summary);
  os << "# " << (done ? sum["attack"].as_string() : std::string("attack")) << ": " << run << (done ? "" : " (in progress)")
     << "\n\n";
  if (done)
    os << "start " << sum["start"].as_string() << "; model " << sum["model"].as_string() << "; trigger "
       << sum["trigger"].as_string() << " -> " << sum["target"].as_int() << "; seed " << sum["seed"].as_int() << "\n\n";

  // Stages: in the summary's order when finished, else the folders that hold epochs.
  std::vector<std::string> stages;
  if (done) {
    for (const auto& [name, s] : sum["stages"].members()) stages.push_back(name);
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && fs::is_directory(e.path() / "epochs")) stages.push_back(e.path().filename().string());
    std::sort(stages.begin(), stages.end());
  }
  for (const auto& st : stages) {
    std::vector<Json> epochs;
    int64_t chosen = -1;
    std::string rule;
    if (done && sum["stages"][st].contains("epochs")) {
      for (const auto& e : sum["stages"][st]["epochs"].items()) epochs.push_back(e);
      chosen = sum["stages"][st]["chosen_epoch"].as_int();
      rule = sum["stages"][st]["rule"].as_string();
    } else {
      std::vector<fs::path> files;
      if (fs::is_directory(dir / st / "epochs"))
        for (const auto& e : fs::directory_iterator(dir / st / "epochs"))
          if (e.path().extension() == ".json") files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) epochs.push_back(read_json(f));
    }
    os << "## " << st << "\n\n";
    epochs_table(os, epochs, chosen);
    if (chosen >= 0) os << "\nkept: epoch " << chosen + 1 << " (" << rule << ")\n";
    os << "\n";
  }
  Json start;
  const bool have_start = done ? sum.contains("start_verdict") : fs::exists(start_file);
  if (have_start) start = done ? sum["start_verdict"] : read_json(start_file);
  if (done) {
    os << "## result (whole test set)\n\n";
    verdict_table(os, sum["verdict"], have_start ? &start : nullptr);
    char b[64];
    std::snprintf(b, sizeof b, "\n%.0f s in the last invocation\n", sum["seconds_this_invocation"].as_number());
    os << b;
  } else if (have_start) {
    os << "## start (whole test set)\n\n";
    verdict_table(os, start, nullptr);
  }
  return os.str();
}

}  // namespace dearest::attacks
