#include "tools/study.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "attacks/attack.h"
#include "data/registry.h"
#include "nn/models.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"
#include "tensor/sha256.h"
#include "tools/cli.h"
#include "tools/defend_common.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string>& defense_names() {
  static const std::vector<std::string> n = {"efrap", "nearest", "flipped", "omse", "ocs", "aciq", "ft", "fp",
                                             "nad", "mcr", "ibau", "ft-ste", "fp-ste", "nad-ste", "ibau-ste"};
  return n;
}

// "efrap@lf0" is a variant of efrap, "adaptive@random" of adaptive: its own section's options (over
// those of the base's section), its own column or row.
std::string base_name(const std::string& d) { return d.substr(0, d.find('@')); }

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

// Attacks that train one model per bit width (their `bits` default is a single width).
bool per_width(const std::string& attack, const StudyConfig& c) {
  attacks::Params p = attacks::make_attack(base_name(attack))->params();
  if (!p.has("bits") || p.str("bits").find(',') != std::string::npos) return false;
  auto given = [&](const std::vector<ConfigEntry>& es) {
    return std::any_of(es.begin(), es.end(), [](const ConfigEntry& e) { return e.key == "bits"; });
  };
  const auto it = c.attack_by.find(attack), ib = c.attack_by.find(base_name(attack));
  return !given(c.attack_all) && !(it != c.attack_by.end() && given(it->second)) &&
         !(ib != c.attack_by.end() && given(ib->second));
}

// The SHA-256 of a file's bytes, or "missing".
std::string file_key(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "missing";
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    h.update(buf.data(), size_t(f.gcount()));
  }
  return h.hex();
}

}  // namespace

bool is_model_file(const std::string& model) {
  const std::string e = ".safetensors";
  return model.size() > e.size() && model.compare(model.size() - e.size(), e.size(), e) == 0;
}

std::string default_standard(const std::string& attack, int bits) {
  const std::string b = std::to_string(bits);
  if (attack == "qu-anti-zation" || attack == "adaptive") return "qu-anti-zation:" + b + ",mqbench:" + b;
  if (attack == "comp-artifact") return bits == 8 ? "pytorch-qnnpack:8,mqbench:8" : "comp-artifact:" + b + ",mqbench:" + b;
  if (attack == "pq-backdoor" && bits == 8) return "pytorch-fbgemm:8,mqbench:8";
  return "mqbench:" + b;
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
  static const std::set<std::string> study_keys = {"name", "out", "datasets", "models", "attacks", "bits",
                                                   "defenses", "seeds", "jobs", "threads"};
  for (const auto& [k, line] : study)
    if (!study_keys.count(k))
      bad(path, line, "unknown key \"" + k + "\" in [study] (known: name, out, datasets, models, attacks, bits, defenses, seeds, jobs, threads)");
  for (const char* k : {"datasets", "models", "attacks", "bits", "defenses"})
    if (!study.count(k)) fail(path, ": [study] needs \"", k, "\"");
  c.name = sv.count("name") ? sv["name"] : fs::path(path).stem().string();
  c.out = sv.count("out") ? sv["out"] : "runs/experiments/" + c.name;
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

std::string Cell::label() const {
  return dataset + " " + model + " " + attack + " @" + std::to_string(bits) + " " + defense + " seed " + std::to_string(seed);
}

std::vector<Cell> study_cells(const StudyConfig& c, int threads) {
  const std::string art = c.out + "/artifacts";
  const std::vector<std::string> engine = {"--threads", std::to_string(threads)};
  auto with_engine = [&](std::vector<std::string> a) {
    a.insert(a.end(), engine.begin(), engine.end());
    return a;
  };
  std::vector<Cell> cells;
  for (const auto& d : c.datasets)
    for (const auto& m : c.models)
      for (int64_t seed : c.seeds) {
        // A clean model given as a file is used as it is (its bytes key what is made from it).
        Step train;
        std::string clean_model, clean_key;
        if (is_model_file(m)) {
          clean_model = m;
          clean_key = file_key(m);
          train = {"clean model (given)", {}, fs::path(m).parent_path().string(), m};
        } else {
          std::vector<std::string> ta = {"train", "--data", d, "--model", m, "--seed", std::to_string(seed)};
          for (const auto& e : c.train) ta.push_back("--" + e.key + "=" + e.value);
          const std::string clean = art + "/clean-" + key_of(ta);
          ta.push_back("--out");
          ta.push_back(clean);
          train = {"clean model", with_engine(ta), clean, clean + "/summary.json"};
          clean_model = clean + "/model.safetensors";
        }
        for (const auto& a : c.attacks)
          for (int bits : c.bits) {
            const std::string ab = base_name(a);
            std::vector<std::string> aa = {"attack", ab, "--model", clean_model, "--data", d, "--seed", std::to_string(seed)};
            // [attack], then [attack BASE] for a variant, then [attack NAME]: the last --set of a name wins.
            for (const auto& e : c.attack_all) aa.insert(aa.end(), {"--set", e.key + "=" + e.value});
            for (const std::string& sec : a == ab ? std::vector<std::string>{a} : std::vector<std::string>{ab, a})
              if (auto it = c.attack_by.find(sec); it != c.attack_by.end())
                for (const auto& e : it->second) aa.insert(aa.end(), {"--set", e.key + "=" + e.value});
            if (per_width(a, c)) aa.insert(aa.end(), {"--set", "bits=" + std::to_string(bits)});
            std::vector<std::string> key = aa;
            if (!clean_key.empty()) key.push_back(clean_key);
            const std::string attacked = art + "/attack-" + key_of(key);
            aa.push_back("--out");
            aa.push_back(attacked);
            const Step attack{"attacked model", with_engine(aa), attacked, attacked + "/summary.json"};
            std::string standard = default_standard(ab, bits);
            auto it = c.standard_by.find(a);
            if (it == c.standard_by.end()) it = c.standard_by.find(ab);
            if (it != c.standard_by.end()) {
              standard = it->second;
              for (size_t p; (p = standard.find("{bits}")) != std::string::npos;) standard.replace(p, 6, std::to_string(bits));
            }
            for (const auto& def : c.defenses) {
              const std::string base = base_name(def);
              const bool ste = base.size() > 4 && base.compare(base.size() - 4, 4, "-ste") == 0;
              const std::string method = ste ? base.substr(0, base.size() - 4) : base;
              std::vector<std::string> da = {"defend", method, "--model", attacked + "/model.safetensors", "--data", d,
                                             "--bits", std::to_string(bits), "--standard", standard};
              if (ste) da.push_back("--ste");
              // [defend], then [defend BASE] for a variant, then [defend NAME]: a later section's value
              // replaces an earlier one's (an option may be given once per command).
              std::vector<std::pair<std::string, std::string>> opts;
              for (const auto* es : {&c.defend_all, def != base && c.defend_by.count(base) ? &c.defend_by.at(base) : nullptr,
                                     c.defend_by.count(def) ? &c.defend_by.at(def) : nullptr}) {
                if (!es) continue;
                for (const auto& e : *es) {
                  auto it = std::find_if(opts.begin(), opts.end(), [&](const auto& o) { return o.first == e.key; });
                  if (it == opts.end())
                    opts.emplace_back(e.key, e.value);
                  else
                    it->second = e.value;
                }
              }
              bool seeded = false;
              for (const auto& [k, v] : opts) {
                da.push_back("--" + k + "=" + v);
                seeded = seeded || k == "seed";
              }
              if (!seeded && seed != 0) da.push_back("--seed=" + std::to_string(1005 + seed));
              const std::string dir = art + "/defend-" + key_of(da);
              da.insert(da.end(), {"--standard-cache", attacked + "/standard-" + std::to_string(bits) + ".json", "--out", dir});
              Cell cell{d, m, a, def, bits, seed, {}, dir + "/summary.json"};
              cell.steps = {train, attack, Step{def + " defense", with_engine(da), dir, dir + "/summary.json"}};
              cells.push_back(cell);
            }
          }
      }
  return cells;
}

namespace {

struct Stat {
  std::vector<double> v;
  std::string text(int prec = 2) const {
    if (v.empty()) return "–";
    double m = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    char b[64];
    if (v.size() == 1) {
      std::snprintf(b, sizeof b, "%.*f", prec, m);
      return b;
    }
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    s = std::sqrt(s / double(v.size() - 1));
    std::snprintf(b, sizeof b, "%.*f±%.*f", prec, m, prec, s);
    return b;
  }
  double mean() const {
    double m = 0;
    for (double x : v) m += x;
    return v.empty() ? NAN : m / double(v.size());
  }
};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char ch : s) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return o + "\"";
}

std::string file_safe(std::string s) {
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.') ch = '_';
  return s;
}

}  // namespace

std::string write_study_results(const StudyConfig& c, const std::vector<Cell>& cells) {
  fs::create_directories(c.out + "/figures");
  std::ostringstream csv;
  csv << "dataset,model,attack,bits,defense,seed,float_cda,float_asr,standard,standard_cda,standard_asr,cda,asr,dtm\n";
  Json rows = Json::array();
  // (dataset, model, attack) -> column -> CDA and ASR over seeds; column "float", "B standard", "B defense"
  using Key = std::tuple<std::string, std::string, std::string>;
  std::map<Key, std::map<std::string, std::pair<Stat, Stat>>> table;
  std::map<Key, std::map<std::string, Stat>> dtm;
  std::set<std::string> float_seen;
  size_t done = 0;
  for (const Cell& cell : cells) {
    if (!fs::exists(cell.summary)) continue;
    ++done;
    const Json s = read_json(cell.summary);
    const std::string std_label = s["dtm_standard"].as_string();
    const Json& st = s["standard"][std_label];
    const double fc = s["float"]["cda"].as_number(), fa = s["float"]["asr"].as_number();
    const double sc = st["cda"].as_number(), sa = st["asr"].as_number();
    // Quantizer defenses report the model they made; removal defenses the float model they made under
    // each standard quantizer, of which the first counts.
    const Json& dm = s["defended"].contains("cda") ? s["defended"] : s["defended"][std_label];
    const double cda = dm["cda"].as_number(), asr = dm["asr"].as_number(), d = s["dtm"].as_number();
    csv << csv_field(cell.dataset) << "," << csv_field(cell.model) << "," << cell.attack << "," << cell.bits << ","
        << cell.defense << "," << cell.seed << "," << fc << "," << fa << "," << std_label << "," << sc << "," << sa << ","
        << cda << "," << asr << "," << d << "\n";
    Json r = Json::object();
    r.set("dataset", cell.dataset);
    r.set("model", cell.model);
    r.set("attack", cell.attack);
    r.set("bits", int64_t(cell.bits));
    r.set("defense", cell.defense);
    r.set("seed", cell.seed);
    r.set("float", s["float"]);
    r.set("standard_quantizer", std_label);
    r.set("standard", st);
    r.set("defended", dm);
    r.set("dtm", d);
    r.set("summary", cell.summary);
    rows.push(r);
    const Key k{cell.dataset, cell.model, cell.attack};
    const std::string b = std::to_string(cell.bits) + "-bit ";
    // The float and standard numbers are the same in every defense of one attacked model: count each once.
    if (float_seen.insert(cell.steps[1].dir).second)
      table[k]["float"].first.v.push_back(fc), table[k]["float"].second.v.push_back(fa);
    if (float_seen.insert(cell.steps[1].dir + "@" + std::to_string(cell.bits)).second)
      table[k][b + "standard"].first.v.push_back(sc), table[k][b + "standard"].second.v.push_back(sa);
    table[k][b + cell.defense].first.v.push_back(cda), table[k][b + cell.defense].second.v.push_back(asr);
    dtm[k][b + cell.defense].v.push_back(d);
  }
  std::vector<std::string> cols = {"float"};
  for (int bits : c.bits) {
    cols.push_back(std::to_string(bits) + "-bit standard");
    for (const auto& d : c.defenses) cols.push_back(std::to_string(bits) + "-bit " + d);
  }
  std::ostringstream md;
  md << "# " << c.name << "\n\n" << done << " of " << cells.size() << " cells finished. CDA / ASR in %"
     << (c.seeds.size() > 1 ? " (mean±std over " + std::to_string(c.seeds.size()) + " seeds)" : "")
     << "; the standard quantizer is the attack's own (the first of each defense's --standard).\n\n| dataset | model | attack |";
  for (const auto& col : cols) md << " " << col << " |";
  md << "\n|---|---|---|";
  for (size_t i = 0; i < cols.size(); ++i) md << "---|";
  md << "\n";
  for (const auto& [k, byc] : table) {
    md << "| " << std::get<0>(k) << " | " << std::get<1>(k) << " | " << std::get<2>(k) << " |";
    for (const auto& col : cols) {
      auto it = byc.find(col);
      md << " " << (it == byc.end() ? std::string("–") : it->second.first.text() + " / " + it->second.second.text()) << " |";
    }
    md << "\n";
  }
  md << "\nDTM (higher is better):\n\n| dataset | model | attack |";
  std::vector<std::string> dcols;
  for (int bits : c.bits)
    for (const auto& d : c.defenses) dcols.push_back(std::to_string(bits) + "-bit " + d);
  for (const auto& col : dcols) md << " " << col << " |";
  md << "\n|---|---|---|";
  for (size_t i = 0; i < dcols.size(); ++i) md << "---|";
  md << "\n";
  for (const auto& [k, byc] : dtm) {
    md << "| " << std::get<0>(k) << " | " << std::get<1>(k) << " | " << std::get<2>(k) << " |";
    for (const auto& col : dcols) {
      auto it = byc.find(col);
      md << " " << (it == byc.end() ? std::string("–") : it->second.text()) << " |";
    }
    md << "\n";
  }
  // One bar chart per (dataset, model, attack, bits): CDA and ASR of every defense.
  for (const auto& [k, byc] : table)
    for (int bits : c.bits) {
      std::vector<std::string> cats = {"float", "standard"};
      for (const auto& d : c.defenses) cats.push_back(d);
      BarSeries cda{"CDA %", {}}, asr{"ASR %", {}}, dt{"DTM", {}};
      bool any = false;
      const auto& dtm_k = dtm[k];
      for (const auto& cat : cats) {
        const std::string col = cat == "float" ? "float" : std::to_string(bits) + "-bit " + cat;
        auto it = byc.find(col);
        auto id = dtm_k.find(col);
        cda.values.push_back(it == byc.end() ? NAN : it->second.first.mean());
        asr.values.push_back(it == byc.end() ? NAN : it->second.second.mean());
        dt.values.push_back(id == dtm_k.end() ? NAN : id->second.mean());
        any = any || (it != byc.end() && cat != "float");
      }
      if (!any) continue;
      const std::string name = file_safe(std::get<0>(k) + "-" + std::get<1>(k) + "-" + std::get<2>(k) + "-" + std::to_string(bits)) + ".svg";
      write_bar_chart(c.out + "/figures/" + name, std::get<1>(k) + ", " + std::get<2>(k) + ", " + std::to_string(bits) + "-bit",
                      "%", cats, {cda, asr, dt}, 0, 100);
      md << "\n![" << name << "](figures/" << name << ")\n";
    }
  // Sweeps (the supplementary's Figures 1 and 2): variants of one defense whose own sections set the
  // same single numeric option (efrap@lf0.1: lambda-f = 0.1, efrap@lf3: lambda-f = 3, ...) give CDA
  // and ASR against that option's value.
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, std::string>>> sweeps;  // (base, key) -> (value, variant)
  for (const auto& d : c.defenses) {
    auto it = c.defend_by.find(d);
    if (d == base_name(d) || it == c.defend_by.end() || it->second.size() != 1) continue;
    char* end = nullptr;
    const double v = std::strtod(it->second[0].value.c_str(), &end);
    if (end && *end == 0 && !it->second[0].value.empty()) sweeps[{base_name(d), it->second[0].key}].emplace_back(v, d);
  }
  for (auto& [bk, vs] : sweeps) {
    if (vs.size() < 2) continue;
    std::sort(vs.begin(), vs.end());
    for (const auto& [k, byc] : table)
      for (int bits : c.bits) {
        Series cda{"CDA %", {}}, asr{"ASR %", {}};
        for (const auto& [v, d] : vs) {
          auto it = byc.find(std::to_string(bits) + "-bit " + d);
          if (it == byc.end()) continue;
          cda.points.emplace_back(v, it->second.first.mean());
          asr.points.emplace_back(v, it->second.second.mean());
        }
        if (cda.points.size() < 2) continue;
        const std::string name = file_safe(std::get<0>(k) + "-" + std::get<1>(k) + "-" + std::get<2>(k) + "-" +
                                           std::to_string(bits) + "-" + bk.first + "-" + bk.second) + ".svg";
        write_line_chart(c.out + "/figures/" + name, bk.first + " against " + bk.second + ": " + std::get<2>(k) + ", " +
                         std::to_string(bits) + "-bit", bk.second, "%", {cda, asr}, 0, 100);
        md << "\n![" << name << "](figures/" << name << ")\n";
      }
  }
  write_text(c.out + "/results.csv", csv.str());
  Json j = Json::object();
  j.set("study", c.name);
  j.set("config", c.file);
  j.set("cells", int64_t(cells.size()));
  j.set("finished", int64_t(done));
  j.set("rows", rows);
  write_text(c.out + "/results.json", j.dump(2) + "\n");
  write_text(c.out + "/tables.md", md.str());
  return md.str();
}

}  // namespace dearest::cli
