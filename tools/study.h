// A study: the matrix dataset x model x attack x bit width x defense x seed of dearest experiment,
// read from an INI file and checked whole before anything runs (an unknown section, key, attack or
// defense, or a value that does not parse, is an error naming FILE:LINE). Each cell is a pipeline
// of three dearest commands (train, attack, defend) whose artifacts are shared between cells and
// cached under keys of their command lines (tools/pipeline.h).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "tools/pipeline.h"

namespace dearest::cli {

struct ConfigEntry {
  std::string key, value;
  int line = 0;
};

struct StudyConfig {
  std::string file, name, out;
  std::string artifacts;  // where the artifacts are cached (empty: OUT/artifacts); studies may share one
  std::vector<std::string> datasets, models, attacks, defenses;
  std::vector<int> bits;
  std::vector<int64_t> seeds;
  int jobs = 1, threads = 0;  // threads per command (0: the cores shared among the jobs)
  std::vector<ConfigEntry> train, attack_all, defend_all;
  std::map<std::string, std::vector<ConfigEntry>> attack_by, defend_by;  // [attack NAME], [defend NAME]
  std::map<std::string, std::string> standard_by;                         // [attack NAME] standard = ...
  int models_line = 0, datasets_line = 0, attacks_line = 0, defenses_line = 0;
  std::string text;  // the file as read (its key names the study's outputs)
};

// "efrap@lf0" is a variant of efrap, "adaptive@random" of adaptive: its own section's options (over
// those of the base's section), its own column or row. The base name of a variant (or the name).
std::string base_name(const std::string& name);

// A model of the study given as a trained clean model file (X.safetensors) rather than a spec.
bool is_model_file(const std::string& model);

// Reads and checks the whole file; nothing is run.
StudyConfig load_study(const std::string& path);

// Every attack's and defense's calibration set fits the datasets it draws from (SIZE images from
// the first POOL of a split), else an error naming the line that set it (or the attacks/defenses
// line, for a default). Opens the datasets; one that cannot be opened is left to the run to report.
void check_study_calibration(const StudyConfig& c);

struct Cell {
  std::string dataset, model, attack, defense;
  int bits = 0;
  int64_t seed = 0;
  std::vector<Step> steps;  // clean model (no command when given as a file), attacked model, defense
  std::string summary;      // the defense's summary.json
  std::string label() const;
};

// The cells in matrix order, their steps' artifact folders under OUT/artifacts.
// `engine` is appended to every command (after the cell's key is taken: it does not change results'
// folders); --threads comes first.
std::vector<Cell> study_cells(const StudyConfig& c, int threads_per_command, const std::vector<std::string>& engine = {});

// The options of sections applied in order (a later one's value replaces an earlier one's), by name.
std::vector<std::pair<std::string, ConfigEntry>> merged_options(const std::vector<const std::vector<ConfigEntry>*>& sections);
// A defense's options: [defend], then [defend BASE] for a variant, then [defend NAME].
std::vector<std::pair<std::string, ConfigEntry>> defend_options(const StudyConfig& c, const std::string& defense);

// The victim's standard quantizers for an attack at a width (the first is the one DTM uses).
std::string default_standard(const std::string& attack, int bits);

// How the tables and figures name each dataset and model of the study (the CSV and JSON keep the
// config's text): "cifar10", "resnet18 width=16".
std::map<std::string, std::string> study_display_names(const StudyConfig& c);

// Reads every finished cell's summary and writes OUT/results.csv, results.json, tables.md and the
// figures under OUT/figures; returns the Markdown tables.
std::string write_study_results(const StudyConfig& c, const std::vector<Cell>& cells);

}  // namespace dearest::cli
