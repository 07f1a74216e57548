// The calibration check of a study (tools/study.h): a calibration set larger than its pool is an
// error only once the attack or defense runs, after the clean model has trained; here it is
// refused before anything runs.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "attacks/attack.h"
#include "data/registry.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"
#include "tools/cli.h"
#include "tools/study.h"

namespace dearest::cli {

namespace {

struct Calib {
  int64_t size = 0;
  double pool = 0;
  std::string split = "train";
  int line = 0;
  std::string what;  // where it came from, for the message
};

// SIZE:BATCH:POOL of an attack parameter.
Calib parse_triple(const std::string& file, const std::string& v, int line, const std::string& what) {
  std::vector<std::string> f;
  std::istringstream is(v);
  for (std::string x; std::getline(is, x, ':');) f.push_back(x);
  Calib c;
  c.line = line;
  c.what = what;
  try {
    if (f.size() != 3) throw std::invalid_argument("fields");
    c.size = std::stoll(f[0]);
    c.pool = std::stod(f[2]);
  } catch (const std::exception&) {
    fail(file, ":", line, ": ", what, ": expected SIZE:BATCH:POOL, got \"", v, "\"");
  }
  return c;
}

void check(const StudyConfig& c, const std::string& dataset, int64_t split_size, const Calib& k) {
  const int64_t pool = std::max<int64_t>(1, int64_t(std::ceil(k.pool * double(split_size))));
  if (pool < k.size)
    fail(c.file, ":", k.line, ": ", k.what, " asks for ", k.size, " calibration images but ", dataset, "'s pool (the first ",
         k.pool * 100, "% of its ", k.split, " split) holds ", pool, ": lower the size or raise the pool");
}

}  // namespace

void check_study_calibration(const StudyConfig& c) {
  // The defaults of dearest defend's calibration options.
  po::options_description dd = [] {
    po::options_description d;
    defend_command().options(d);
    return d;
  }();
  po::variables_map dv;
  po::store(po::command_line_parser(std::vector<std::string>{}).options(dd).run(), dv);
  // "auto" attack defaults resolve against the study's first model (as load_study checks them).
  nn::ModelSpec spec = nn::ModelSpec::parse("resnet18");
  for (const auto& m : c.models)
    if (!is_model_file(m) || std::filesystem::exists(m)) {
      spec = is_model_file(m) ? nn::load_model(m).spec : nn::ModelSpec::parse(m);
      break;
    }
  for (const auto& d : c.datasets) {
    const data::DataSpec ds = data::parse_data_spec(d);
    std::map<std::string, std::optional<int64_t>> sizes;
    auto size_of = [&](const std::string& split) -> std::optional<int64_t> {
      auto it = sizes.find(split);
      if (it != sizes.end()) return it->second;
      std::optional<int64_t> n;
      try {
        n = data::open_dataset(ds, split == "test" ? data::test_split(ds.kind) : data::train_split(ds.kind))->size();
      } catch (const Error&) {
      }
      return sizes[split] = n;
    };
    for (const auto& a : c.attacks) {
      const std::string base = base_name(a);
      const auto attack = attacks::make_attack(base);
      attacks::Params p = attack->params();
      attack->resolve(p, spec);
      const auto ia = c.attack_by.find(a), ib = c.attack_by.find(base);
      const auto set = merged_options({&c.attack_all, a != base && ib != c.attack_by.end() ? &ib->second : nullptr,
                                       ia != c.attack_by.end() ? &ia->second : nullptr});
      for (const char* name : {"calib", "mqbench-calib"}) {
        if (!p.has(name)) continue;
        std::optional<Calib> k;
        if (std::count(p.str(name).begin(), p.str(name).end(), ':') == 2)  // not a default left to the attack
          k = parse_triple(c.file, p.str(name), c.attacks_line, "attack " + a + "'s " + name + " (default " + p.str(name) + ")");
        for (const auto& [key, e] : set)
          if (key == name) k = parse_triple(c.file, e.value, e.line, "attack " + a + "'s " + name);
        if (const auto n = size_of("train"); k && n) check(c, d, *n, *k);
      }
    }
    for (const auto& def : c.defenses) {
      Calib k;
      k.size = dv["calib-size"].as<int64_t>();
      k.pool = dv["calib-pool"].as<double>();
      k.split = dv["calib-split"].as<std::string>();
      k.line = c.defenses_line;
      k.what = "defense " + def + "'s calibration (default size " + std::to_string(k.size) + ")";
      for (const auto& [key, e] : defend_options(c, def)) {
        if (key != "calib-size" && key != "calib-pool" && key != "calib-split") continue;
        if (key == "calib-size") k.size = std::stoll(e.value);
        if (key == "calib-pool") k.pool = std::stod(e.value);
        if (key == "calib-split") k.split = e.value;
        k.line = e.line;
        k.what = "defense " + def + "'s calibration ([defend] " + key + ")";
      }
      if (const auto n = size_of(k.split)) check(c, d, *n, k);
    }
  }
}

}  // namespace dearest::cli
