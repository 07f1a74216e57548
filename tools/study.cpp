#include "tools/study.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "attacks/attack.h"
#include "tensor/sha256.h"

namespace dearest::cli {

namespace fs = std::filesystem;

namespace {

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

std::vector<std::pair<std::string, ConfigEntry>> merged_options(const std::vector<const std::vector<ConfigEntry>*>& sections) {
  std::map<std::string, ConfigEntry> m;
  for (const auto* es : sections)
    if (es)
      for (const auto& e : *es) m[e.key] = e;
  return {m.begin(), m.end()};
}

std::vector<std::pair<std::string, ConfigEntry>> defend_options(const StudyConfig& c, const std::string& defense) {
  const std::string base = base_name(defense);
  const auto ib = c.defend_by.find(base), id = c.defend_by.find(defense);
  return merged_options({&c.defend_all, defense != base && ib != c.defend_by.end() ? &ib->second : nullptr,
                         id != c.defend_by.end() ? &id->second : nullptr});
}

std::string default_standard(const std::string& attack, int bits) {
  const std::string b = std::to_string(bits);
  if (attack == "qu-anti-zation" || attack == "adaptive") return "qu-anti-zation:" + b + ",mqbench:" + b;
  if (attack == "comp-artifact") return bits == 8 ? "pytorch-qnnpack:8,mqbench:8" : "comp-artifact:" + b + ",mqbench:" + b;
  if (attack == "pq-backdoor" && bits == 8) return "pytorch-fbgemm:8,mqbench:8";
  return "mqbench:" + b;
}

std::string Cell::label() const {
  return dataset + " " + model + " " + attack + " @" + std::to_string(bits) + " " + defense + " seed " + std::to_string(seed);
}

std::vector<Cell> study_cells(const StudyConfig& c, int threads, const std::vector<std::string>& more_engine) {
  const std::string art = c.artifacts.empty() ? c.out + "/artifacts" : c.artifacts;
  std::vector<std::string> engine = {"--threads", std::to_string(threads)};
  engine.insert(engine.end(), more_engine.begin(), more_engine.end());
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
          for (const auto& [k, e] : merged_options({&c.train})) ta.push_back("--" + k + "=" + e.value);
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
            // [attack], then [attack BASE] for a variant, then [attack NAME]; sorted by name, so that
            // moving an option between sections does not change what is computed.
            const auto ia = c.attack_by.find(a), ib = c.attack_by.find(ab);
            for (const auto& [k, e] : merged_options({&c.attack_all, a != ab && ib != c.attack_by.end() ? &ib->second : nullptr,
                                                      ia != c.attack_by.end() ? &ia->second : nullptr}))
              aa.insert(aa.end(), {"--set", k + "=" + e.value});
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
              // replaces an earlier one's (an option may be given once per command); sorted by name.
              bool seeded = false;
              for (const auto& [k, e] : defend_options(c, def)) {
                da.push_back("--" + k + "=" + e.value);
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

}  // namespace dearest::cli
