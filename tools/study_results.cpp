// A study's results: the CSV, the JSON, the paper-style Markdown tables and the figures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "tensor/error.h"
#include "tensor/safetensors.h"
#include "tools/defend_common.h"
#include "tools/pipeline.h"
#include "tools/study.h"
#include "tools/svg_plot.h"

namespace dearest::cli {

namespace fs = std::filesystem;

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

// The architecture a model file records ("resnet18:classes=10,input=32,width=16"); empty when the
// file cannot be read (the study reports that itself when it runs).
std::string recorded_arch(const std::string& path) {
  try {
    for (const auto& [k, v] : read_safetensors(path).metadata)
      if (k == "arch") return v;
  } catch (const std::exception&) {
  }
  return "";
}

// "resnet18:classes=10,input=32,width=16" -> "resnet18 width=16": what tells models of one study
// apart (the classes and input size come with the dataset).
std::string short_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string::npos) return spec;
  std::string out = spec.substr(0, colon), rest = spec.substr(colon + 1);
  std::istringstream in(rest);
  for (std::string kv; std::getline(in, kv, ',');)
    if (kv.rfind("classes=", 0) != 0 && kv.rfind("input=", 0) != 0) out += " " + kv;
  return out;
}

// Copies FROM to the study's figures as NAME (once) and returns its Markdown line; empty when the
// step drew no such figure.
std::string copy_figure(const StudyConfig& c, const std::string& from, const std::string& name, const std::string& caption,
                        std::set<std::string>& written) {
  if (!fs::exists(from) || !written.insert(name).second) return "";
  fs::copy_file(from, c.out + "/figures/" + name, fs::copy_options::overwrite_existing);
  return "\n![" + caption + "](figures/" + name + ")\n";
}

std::string curve_figures(const StudyConfig& c, const std::vector<Cell>& cells, const std::map<std::string, std::string>& shown,
                          std::set<std::string>& written) {
  // An attack trained once for every width (Qu-ANTI-zation) is named without a width; one trained
  // per width (CompArtifact) with it.
  std::map<std::string, std::set<int>> widths_of;  // attacked model's folder -> widths it serves
  for (const Cell& cell : cells) widths_of[cell.steps[1].dir].insert(cell.bits);
  std::ostringstream md;
  std::string clean, attack, flips;
  for (const Cell& cell : cells) {
    // A figure's file name joins KIND and the parts with "-"; its caption the parts with ", ".
    const std::string seed = c.seeds.size() > 1 ? "seed" + std::to_string(cell.seed) : "";
    auto joined = [&](std::vector<std::string> parts, const char* sep) {
      if (!seed.empty()) parts.push_back(seed);
      std::string out;
      for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
      return out;
    };
    auto file = [&](const std::string& kind, const std::vector<std::string>& parts) {
      return file_safe(kind + "-" + joined(parts, "-")) + ".svg";
    };
    const std::string ds = shown.at(cell.dataset), ms = shown.at(cell.model);
    // A given model file has its training curve only where `dearest train` left it beside it.
    const std::string made = fs::path(cell.steps[0].done).filename().string();
    if (made == "summary.json" || made == "model.safetensors")
      clean += copy_figure(c, cell.steps[0].dir + "/curve.svg", file("clean", {ds, ms}), "clean training: " + joined({ds, ms}, ", "),
                           written);
    std::vector<std::string> a = {ds, ms, cell.attack};
    if (widths_of[cell.steps[1].dir].size() < c.bits.size()) a.push_back(std::to_string(cell.bits) + "-bit");
    attack += copy_figure(c, cell.steps[1].dir + "/curve.svg", file("attack", a), "attack: " + joined(a, ", "), written);
    if (base_name(cell.defense) == "efrap" && fs::exists(cell.summary)) {
      const std::vector<std::string> k = {ds, ms, cell.attack, std::to_string(cell.bits) + "-bit", cell.defense};
      flips += copy_figure(c, cell.steps[2].dir + "/flip-rate.svg", file("flip-rate", k),
                           "EFRAP's flip rate per layer: " + joined(k, ", "), written);
    }
  }
  if (!clean.empty()) md << "\n## Training curves of the clean models\n" << clean;
  if (!attack.empty()) md << "\n## Attack curves\n" << attack;
  if (!flips.empty()) md << "\n## EFRAP's flip rate per layer\n" << flips;
  return md.str();
}

}  // namespace

std::map<std::string, std::string> study_display_names(const StudyConfig& c) {
  std::map<std::string, std::string> names;
  std::map<std::string, int> uses;
  // A dataset by its name, not its folder ("cifar10:../shared/data/cifar10" -> "cifar10",
  // "synthetic:600" stays); a model file by the architecture it records; a model spec by its short
  // form. Names that would collide stay whole.
  for (const auto& d : c.datasets) {
    const size_t colon = d.find(':');
    names[d] = colon != std::string::npos && d.find('/', colon) != std::string::npos ? d.substr(0, colon) : d;
    ++uses[names[d]];
  }
  for (const auto& m : c.models) {
    const std::string arch = is_model_file(m) ? recorded_arch(m) : m;
    names[m] = arch.empty() ? m : short_spec(arch);
    ++uses[names[m]];
  }
  for (auto& [k, v] : names)
    if (uses[v] > 1) v = k;
  return names;
}

std::string write_study_results(const StudyConfig& c, const std::vector<Cell>& cells) {
  fs::create_directories(c.out + "/figures");
  std::ostringstream csv;
  csv << "dataset,model,attack,bits,defense,seed,float_cda,float_asr,standard,standard_cda,standard_asr,cda,asr,dtm\n";
  Json rows = Json::array();
  // (dataset, model, attack, bits) -> column -> CDA and ASR over seeds; columns "float", "standard"
  // and the defenses: the papers' layout (EFRAP supplementary Table 1: a row per model, attack and
  // bit width).
  using Key = std::tuple<std::string, std::string, std::string, int>;
  std::map<Key, std::map<std::string, std::pair<Stat, Stat>>> table;
  std::map<Key, std::map<std::string, Stat>> dtm;
  // The removal defenses' own float models, before the standard quantizer: whether a defense
  // removed the backdoor in float and the quantizer brings it back is the papers' question.
  std::map<Key, std::map<std::string, std::pair<Stat, Stat>>> defended_float;
  std::set<std::string> removal_seen;
  std::set<std::string> float_seen;
  const auto shown = study_display_names(c);
  std::set<std::string> written;  // figure file names
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
    const Key k{shown.at(cell.dataset), shown.at(cell.model), cell.attack, cell.bits};
    // The float and standard numbers are the same in every defense of one attacked model at one
    // width: count them once per seed.
    if (float_seen.insert(cell.steps[1].dir + "@" + std::to_string(cell.bits)).second) {
      table[k]["float"].first.v.push_back(fc), table[k]["float"].second.v.push_back(fa);
      table[k]["standard"].first.v.push_back(sc), table[k]["standard"].second.v.push_back(sa);
    }
    table[k][cell.defense].first.v.push_back(cda), table[k][cell.defense].second.v.push_back(asr);
    dtm[k][cell.defense].v.push_back(d);
    if (s.contains("defended_float")) {
      auto& f = defended_float[k][cell.defense];
      f.first.v.push_back(s["defended_float"]["cda"].as_number()), f.second.v.push_back(s["defended_float"]["asr"].as_number());
      removal_seen.insert(cell.defense);
    }
  }
  std::vector<std::string> cols = {"float", "standard"};
  for (const auto& d : c.defenses) cols.push_back(d);
  std::ostringstream md;
  md << "# " << c.name << "\n\n" << done << " of " << cells.size() << " cells finished. CDA / ASR in %"
     << (c.seeds.size() > 1 ? " (mean±std over " + std::to_string(c.seeds.size()) + " seeds)" : "")
     << "; \"float\" is the attacked model unquantized, \"standard\" the attack's own quantizer at that width "
        "(the first of each defense's --standard).\n\n";
  // A table: a row per key, a column per `columns`, `text` of a row's column.
  auto write_table = [&](const auto& rows, const std::vector<std::string>& columns, const auto& text) {
    md << "| dataset | model | attack | bits |";
    for (const auto& col : columns) md << " " << col << " |";
    md << "\n|---|---|---|---|";
    for (size_t i = 0; i < columns.size(); ++i) md << "---|";
    md << "\n";
    for (const auto& [k, byc] : rows) {
      md << "| " << std::get<0>(k) << " | " << std::get<1>(k) << " | " << std::get<2>(k) << " | " << std::get<3>(k) << " |";
      for (const auto& col : columns) {
        auto it = byc.find(col);
        md << " " << (it == byc.end() ? std::string("–") : text(it->second)) << " |";
      }
      md << "\n";
    }
  };
  write_table(table, cols, [](const std::pair<Stat, Stat>& v) { return v.first.text() + " / " + v.second.text(); });
  md << "\nDTM (higher is better):\n\n";
  write_table(dtm, c.defenses, [](const Stat& v) { return v.text(); });
  if (!removal_seen.empty()) {
    std::vector<std::string> removal;
    for (const auto& d : c.defenses)
      if (removal_seen.count(d)) removal.push_back(d);
    md << "\nThe removal defenses' float models, before the standard quantizer (CDA / ASR in %; \"float\" is the "
          "attacked model's):\n\n";
    for (auto& [k, byc] : defended_float) byc["float"] = table[k]["float"];
    removal.insert(removal.begin(), "float");
    write_table(defended_float, removal, [](const std::pair<Stat, Stat>& v) { return v.first.text() + " / " + v.second.text(); });
  }
  auto key_text = [](const Key& k) {
    return std::get<0>(k) + "-" + std::get<1>(k) + "-" + std::get<2>(k) + "-" + std::to_string(std::get<3>(k));
  };
  // One bar chart per row: CDA, ASR and DTM of every defense.
  for (const auto& [k, byc] : table) {
    std::vector<std::string> cats = {"float", "standard"};
    for (const auto& d : c.defenses) cats.push_back(d);
    BarSeries cda{"CDA %", {}}, asr{"ASR %", {}}, dt{"DTM", {}};
    const auto& dtm_k = dtm[k];
    for (const auto& cat : cats) {
      auto it = byc.find(cat);
      auto id = dtm_k.find(cat);
      cda.values.push_back(it == byc.end() ? NAN : it->second.first.mean());
      asr.values.push_back(it == byc.end() ? NAN : it->second.second.mean());
      dt.values.push_back(id == dtm_k.end() ? NAN : id->second.mean());
    }
    const std::string name = file_safe(key_text(k)) + ".svg";
    written.insert(name);
    write_bar_chart(c.out + "/figures/" + name, std::get<1>(k) + ", " + std::get<2>(k) + ", " + std::to_string(std::get<3>(k)) + "-bit",
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
    for (const auto& [k, byc] : table) {
      Series cda{"CDA %", {}}, asr{"ASR %", {}};
      for (const auto& [v, d] : vs) {
        auto it = byc.find(d);
        if (it == byc.end()) continue;
        cda.points.emplace_back(v, it->second.first.mean());
        asr.points.emplace_back(v, it->second.second.mean());
      }
      if (cda.points.size() < 2) continue;
      const std::string name = file_safe(key_text(k) + "-" + bk.first + "-" + bk.second) + ".svg";
      written.insert(name);
      write_line_chart(c.out + "/figures/" + name, bk.first + " against " + bk.second + ": " + std::get<2>(k) + ", " +
                       std::to_string(std::get<3>(k)) + "-bit", bk.second, "%", {cda, asr}, 0, 100);
      md << "\n![" << name << "](figures/" << name << ")\n";
    }
  }
  // The figures each step drew in its own folder, copied beside the study's under names a person
  // can read: the clean models' training curves, the attacks' curves, EFRAP's flip rate per layer.
  md << curve_figures(c, cells, shown, written);
  // A figure of an earlier write that this one did not make (renamed, or a cell since removed from
  // the config) would be read as current.
  for (const auto& e : fs::directory_iterator(c.out + "/figures"))
    if (e.path().extension() == ".svg" && !written.count(e.path().filename().string())) fs::remove(e.path());
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
