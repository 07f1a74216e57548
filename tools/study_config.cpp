// Reading a study file and checking all of it before anything runs.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "attacks/attack.h"
#include "data/registry.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "tensor/error.h"
#include "tools/cli.h"
#include "tools/study.h"

namespace dearest::cli {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string>& defense_names() {
  static const std::vector<std::string> n = {"efrap", "nearest", "flipped", "omse", "ocs", "aciq", "ft", "fp",
                                             "nad", "mcr", "ibau", "ft-ste", "fp-ste", "nad-ste", "mcr-ste", "ibau-ste"};
  return n;
}

bool known_attack(const std::string& a) {
  const auto names = attacks::attack_names();
  const std::string b = base_name(a);
  return std::find(names.begin(), names.end(), b) != names.end() && (a.find('@') == std::string::npos || a.size() > b.size() + 1);
}

bool known_defense(const std::string& d) {
  const std::string b = base_name(d);
  return std::find(defense_names().begin(), defense_names().end(), b) != defense_names().end() &&
         (d.find('@') == std::string::npos || d.size() > b.size() + 1);
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<std::string> items(const std::string& v) {
  std::vector<std::string> out;
  std::istringstream is(v);
  for (std::string s; std::getline(is, s, ',');)
    if (!trim(s).empty()) out.push_back(trim(s));
  return out;
}

// Splits "resnet18:width=16, vgg16-bn:width=16": commas inside a model spec's options belong to it,
// so models are separated by ";" or by a comma followed by an architecture name.
std::vector<std::string> model_items(const std::string& v) {
  std::vector<std::string> out;
  for (const auto& part : items(v)) {
    const bool option = part.find('=') != std::string::npos && part.find(':') == std::string::npos;
    if (option && !out.empty())
      out.back() += "," + part;
    else
      out.push_back(part);
  }
  return out;
}

[[noreturn]] void bad(const std::string& file, int line, const std::string& what) { fail(file, ":", line, ": ", what); }

int64_t whole(const std::string& file, int line, const std::string& key, const std::string& v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long i = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || !end || *end != 0 || i < lo || i > hi)
    bad(file, line, key + ": expected a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got \"" + v + "\"");
  return i;
}

po::options_description command_options(const Command& c) {
  po::options_description d;
  c.options(d);
  add_engine_options(d);
  return d;
}

// A subcommand option given in a section: known to the command, not one the study sets itself, and
// of a value the command accepts.
void check_option(const std::string& file, const ConfigEntry& e, const po::options_description& d, const std::string& cmd,
                  const std::set<std::string>& managed) {
  if (managed.count(e.key)) bad(file, e.line, "\"" + e.key + "\" is set by the study itself, not in [" + cmd + "]");
  if (!d.find_nothrow(e.key, false)) bad(file, e.line, "unknown key \"" + e.key + "\": not an option of dearest " + cmd);
  try {
    po::variables_map vm;
    const std::vector<std::string> args = {"--" + e.key + "=" + e.value};
    po::store(po::command_line_parser(args).options(d).run(), vm);
  } catch (const po::error& err) {
    bad(file, e.line, "bad value for \"" + e.key + "\" (dearest " + cmd + "): " + err.what());
  }
}

// An attack parameter: known to the attack, and a number where the reference default is one (once
// "auto" defaults are resolved for the study's first model).
void check_param(const std::string& file, const ConfigEntry& e, const std::string& attack, const nn::ModelSpec& spec) {
  const auto a = attacks::make_attack(attack);
  attacks::Params p = a->params();
  a->resolve(p, spec);
  if (!p.has(e.key)) bad(file, e.line, "unknown key \"" + e.key + "\": not a parameter of attack " + attack + " (see dearest attack " + attack + " --params)");
  const std::string& def = p.str(e.key);
  char* end = nullptr;
  std::strtod(def.c_str(), &end);
  const bool numeric = !def.empty() && end && *end == 0;
  if (numeric) {
    std::strtod(e.value.c_str(), &end);
    if (e.value.empty() || !end || *end != 0)
      bad(file, e.line, "bad value for \"" + e.key + "\" (attack " + attack + "): expected a number, got \"" + e.value + "\"");
  }
  if ((def == "true" || def == "false") && e.value != "true" && e.value != "false")
    bad(file, e.line, "bad value for \"" + e.key + "\" (attack " + attack + "): expected true or false, got \"" + e.value + "\"");
}

}  // namespace

std::string base_name(const std::string& d) { return d.substr(0, d.find('@')); }

bool is_model_file(const std::string& model) {
  const std::string e = ".safetensors";
  return model.size() > e.size() && model.compare(model.size() - e.size(), e.size(), e) == 0;
}

StudyConfig load_study(const std::string& path) {
  std::ifstream f(path);
  DEAREST_CHECK(f.good(), path, ": cannot open the study file");
  StudyConfig c;
  c.file = path;
  std::string section, arg;
  int section_line = 0;
  std::map<std::string, int> seen;  // "section/key" -> line
  std::map<std::string, int> study;
  std::map<std::string, std::string> sv;
  int n = 0;
  for (std::string raw; std::getline(f, raw);) {
    ++n;
    c.text += raw + "\n";
    std::string line = raw;
    for (const char* mark : {"#", ";"}) {
      const size_t at = line.find(mark);
      if (at != std::string::npos && (at == 0 || line[at - 1] == ' ' || line[at - 1] == '\t')) line = line.substr(0, at);
    }
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') bad(path, n, "a section header ends with ]: \"" + line + "\"");
      const std::string inner = trim(line.substr(1, line.size() - 2));
      const size_t sp = inner.find_first_of(" \t");
      section = inner.substr(0, sp);
      arg = sp == std::string::npos ? "" : trim(inner.substr(sp));
      section_line = n;
      if (section != "study" && section != "train" && section != "attack" && section != "defend")
        bad(path, n, "unknown section [" + inner + "] (known: [study], [train], [attack], [attack NAME], [defend], [defend NAME])");
      if ((section == "study" || section == "train") && !arg.empty()) bad(path, n, "[" + section + "] takes no name");
      if (section == "attack" && !arg.empty() && !known_attack(arg))
        bad(path, n, "unknown attack \"" + arg + "\" in [attack " + arg + "]");
      if (section == "defend" && !arg.empty() && !known_defense(arg))
        bad(path, n, "unknown defense \"" + arg + "\" in [defend " + arg + "]");
      const std::string id = section + " " + arg;
      if (seen.count("[" + id)) bad(path, n, "section [" + trim(id) + "] given twice (first at line " + std::to_string(seen["[" + id]) + ")");
      seen["[" + id] = n;
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == std::string::npos) bad(path, n, "expected key = value, got \"" + line + "\"");
    if (section.empty()) bad(path, n, "a key outside any section (start with [study])");
    ConfigEntry e{trim(line.substr(0, eq)), trim(line.substr(eq + 1)), n};
    if (e.key.empty()) bad(path, n, "a key is missing before =");
    const std::string id = section + " " + arg + "/" + e.key;
    if (seen.count(id)) bad(path, n, "\"" + e.key + "\" given twice in this section (first at line " + std::to_string(seen[id]) + ")");
    seen[id] = n;
    if (section == "study") {
      study[e.key] = n;
      sv[e.key] = e.value;
    } else if (section == "train") {
      c.train.push_back(e);
    } else if (section == "attack" && arg.empty()) {
      c.attack_all.push_back(e);
    } else if (section == "attack") {
      if (e.key == "standard")
        c.standard_by[arg] = e.value;
      else
        c.attack_by[arg].push_back(e);
    } else if (section == "defend" && arg.empty()) {
      c.defend_all.push_back(e);
    } else {
      c.defend_by[arg].push_back(e);
    }
  }
  (void)section_line;

  // [study]
  static const std::set<std::string> study_keys = {"name", "out", "artifacts", "datasets", "models", "attacks", "bits",
                                                   "defenses", "seeds", "jobs", "threads"};
  for (const auto& [k, line] : study)
    if (!study_keys.count(k))
      bad(path, line, "unknown key \"" + k + "\" in [study] (known: name, out, artifacts, datasets, models, attacks, bits, defenses, seeds, jobs, threads)");
  for (const char* k : {"datasets", "models", "attacks", "bits", "defenses"})
    if (!study.count(k)) fail(path, ": [study] needs \"", k, "\"");
  c.name = sv.count("name") ? sv["name"] : fs::path(path).stem().string();
  c.out = sv.count("out") ? sv["out"] : "runs/experiments/" + c.name;
  if (sv.count("artifacts")) c.artifacts = sv["artifacts"];
  c.datasets = items(sv["datasets"]);
  for (const auto& d : c.datasets) {
    try {
      data::parse_data_spec(d);
    } catch (const Error& err) {
      bad(path, study["datasets"], std::string("bad dataset: ") + err.what());
    }
  }
  c.models = model_items(sv["models"]);
  c.models_line = study["models"];
  c.datasets_line = study["datasets"];
  c.attacks_line = study["attacks"];
  c.defenses_line = study["defenses"];
  for (const auto& m : c.models) {
    if (is_model_file(m)) continue;  // a trained clean model: checked when the study runs
    try {
      nn::ModelSpec::parse(m);
    } catch (const Error& err) {
      bad(path, study["models"], std::string("bad model: ") + err.what());
    }
  }
  const auto known_attacks = attacks::attack_names();
  c.attacks = items(sv["attacks"]);
  for (const auto& a : c.attacks)
    if (!known_attack(a)) {
      std::string k;
      for (const auto& x : known_attacks) k += (k.empty() ? "" : ", ") + x;
      bad(path, study["attacks"], "unknown attack \"" + a + "\" (known: " + k + "; a variant: NAME@TAG with its own [attack NAME@TAG])");
    }
  for (const auto& b : items(sv["bits"])) c.bits.push_back(int(whole(path, study["bits"], "bits", b, 2, 8)));
  c.defenses = items(sv["defenses"]);
  for (const auto& d : c.defenses)
    if (!known_defense(d)) {
      std::string k;
      for (const auto& x : defense_names()) k += (k.empty() ? "" : ", ") + x;
      bad(path, study["defenses"], "unknown defense \"" + d + "\" (known: " + k + "; a variant: NAME@TAG with its own [defend NAME@TAG])");
    }
  if (sv.count("seeds"))
    for (const auto& s : items(sv["seeds"])) c.seeds.push_back(whole(path, study["seeds"], "seeds", s, 0, int64_t(1) << 40));
  else
    c.seeds = {0};
  if (sv.count("jobs")) c.jobs = int(whole(path, study["jobs"], "jobs", sv["jobs"], 1, 256));
  if (sv.count("threads")) c.threads = int(whole(path, study["threads"], "threads", sv["threads"], 0, 1024));
  for (const char* k : {"datasets", "models", "attacks", "bits", "defenses", "seeds"}) {
    const size_t count = std::string(k) == "datasets" ? c.datasets.size() : std::string(k) == "models" ? c.models.size()
                       : std::string(k) == "attacks" ? c.attacks.size() : std::string(k) == "bits" ? c.bits.size()
                       : std::string(k) == "defenses" ? c.defenses.size() : c.seeds.size();
    if (count == 0) bad(path, study.count(k) ? study[k] : 1, std::string("[study] ") + k + " is empty");
  }

  // The other sections, against the commands and attacks they go to.
  const po::options_description train_d = command_options(train_command()), defend_d = command_options(defend_command());
  for (const auto& e : c.train) check_option(path, e, train_d, "train", {"data", "model", "out", "seed", "config", "threads", "help"});
  const std::set<std::string> defend_managed = {"method", "model", "data", "out", "bits", "standard", "standard-cache",
                                                "config", "threads", "ste", "json", "help"};
  for (const auto& e : c.defend_all) check_option(path, e, defend_d, "defend", defend_managed);
  // dearest defend refuses another grid for the robust quantizers (they are their own quantizer).
  for (const auto& d : c.defenses) {
    std::string m = base_name(d);
    if (m.size() > 4 && m.compare(m.size() - 4, 4, "-ste") == 0) m = m.substr(0, m.size() - 4);
    if (m != "omse" && m != "ocs" && m != "aciq") continue;
    for (const auto& [k, e] : defend_options(c, d))
      if (k == "preset" && e.value != "mqbench")
        bad(path, e.line, "preset = " + e.value + " would apply to " + d + ", which is its own quantizer: set the preset in [defend efrap], [defend nearest] or [defend flipped]");
  }
  for (const auto& [m, es] : c.defend_by) {
    if (std::none_of(c.defenses.begin(), c.defenses.end(), [&](const std::string& d) { return d == m || base_name(d) == m; }))
      bad(path, es.empty() ? 1 : es[0].line, "[defend " + m + "]: " + m + " is not among the study's defenses");
    for (const auto& e : es) check_option(path, e, defend_d, "defend", defend_managed);
  }
  nn::ModelSpec spec = nn::ModelSpec::parse("resnet18");
  for (const auto& m : c.models)
    if (!is_model_file(m) || fs::exists(m)) {
      spec = is_model_file(m) ? nn::load_model(m).spec : nn::ModelSpec::parse(m);
      break;
    }
  for (const auto& e : c.attack_all)
    for (const auto& a : c.attacks) check_param(path, e, base_name(a), spec);
  for (const auto& [a, es] : c.attack_by) {
    if (std::none_of(c.attacks.begin(), c.attacks.end(), [&](const std::string& x) { return x == a || base_name(x) == a; }))
      bad(path, es.empty() ? 1 : es[0].line, "[attack " + a + "]: " + a + " is not among the study's attacks");
    for (const auto& e : es) check_param(path, e, base_name(a), spec);
  }
  return c;
}

}  // namespace dearest::cli
