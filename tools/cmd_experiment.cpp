// dearest experiment STUDY.ini: runs a study's matrix (tools/study.h), cells in parallel when asked,
// every artifact cached so that a rerun computes only what is missing, then writes the results
// CSV/JSON, the paper-style tables and the figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tensor/error.h"
#include "tools/cli.h"
#include "tools/defend_common.h"
#include "tools/study.h"

namespace dearest::cli {

namespace {

struct CellRun {
  size_t ran = 0, reused = 0;
  std::vector<std::string> failures;
};

// Runs the cells with `jobs` workers. A worker takes the first open cell that no other worker of
// this process holds. A step being made elsewhere (another worker's cell sharing the attacked
// model, or another process over the same study) is not waited for: the cell stays open and the
// worker tries the next one, so two workers train two different attacks rather than one waiting an
// hour on the other. Only when every open cell it can take is busy does a worker sleep and look
// again. A step that failed fails every other cell that needs it at once (an attack that fails is
// not retried by each of its defenses).
CellRun run_cells(const std::vector<Cell>& cells, int jobs, bool quiet) {
  CellRun r;
  std::mutex m;
  std::vector<size_t> open(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) open[i] = i;
  std::set<size_t> taken;
  std::vector<std::set<std::string>> counted(cells.size());  // per cell: the steps already counted
  std::map<std::string, std::string> failed;  // step folder -> why
  auto worker = [&] {
    std::set<size_t> busy;  // found busy in this pass over the open cells
    for (;;) {
      size_t i = cells.size();
      {
        std::lock_guard<std::mutex> lock(m);
        if (open.empty()) return;
        for (size_t j : open)
          if (!taken.count(j) && !busy.count(j)) {
            i = j;
            break;
          }
        if (i < cells.size()) taken.insert(i);
      }
      if (i == cells.size()) {  // everything open is held elsewhere: look again in a while
        busy.clear();
        std::this_thread::sleep_for(std::chrono::seconds(2));
        continue;
      }
      const Cell& cell = cells[i];
      char head[64];
      std::snprintf(head, sizeof head, "[%zu/%zu] ", i + 1, cells.size());
      bool finished = true;
      try {
        for (const Step& s : cell.steps) {
          {
            std::lock_guard<std::mutex> lock(m);
            const auto f = failed.find(s.dir);
            if (f != failed.end()) fail(s.label, " failed in another cell: ", f->second);
          }
          StepOutcome o;
          try {
            o = run_step(s, head + cell.label() + ", " + s.label + ": ", !quiet && jobs == 1, false);
          } catch (const Error& e) {
            std::lock_guard<std::mutex> lock(m);
            failed.emplace(s.dir, e.what());
            throw;
          }
          std::lock_guard<std::mutex> lock(m);
          if (o.busy) {
            finished = false;
            break;
          }
          // Each cell's step counts once, though a cell found busy is tried again.
          if (counted[i].insert(s.dir).second) (o.cached ? r.reused : r.ran)++;
          if (!quiet && !o.cached) {
            char b[32];
            std::snprintf(b, sizeof b, "%.0f s", o.seconds);
            std::cerr << head << cell.label() << ", " << s.label << ": " << b << "\n";
          }
        }
        if (!quiet && finished) {
          std::lock_guard<std::mutex> lock(m);
          std::cerr << head << cell.label() << ": done\n";
        }
      } catch (const Error& e) {
        std::lock_guard<std::mutex> lock(m);
        r.failures.push_back(cell.label() + ": " + e.what());
        std::cerr << head << cell.label() << ": FAILED: " << e.what() << "\n";
      }
      std::lock_guard<std::mutex> lock(m);
      taken.erase(i);
      if (finished) {
        open.erase(std::find(open.begin(), open.end(), i));
        busy.clear();
      } else {
        busy.insert(i);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int j = 0; j < jobs; ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return r;
}

int experiment(const po::variables_map& vm) {
  StudyConfig c = load_study(vm["study"].as<std::string>());
  if (vm.count("out")) c.out = vm["out"].as<std::string>();
  if (vm.count("jobs")) c.jobs = vm["jobs"].as<int>();
  DEAREST_CHECK(c.jobs >= 1, "--jobs: expected >= 1, got ", c.jobs);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = vm.count("threads") ? vm["threads"].as<int>() : c.threads > 0 ? c.threads : std::max(1, cores / c.jobs);
  const std::vector<Cell> cells = study_cells(c, threads, forwarded_engine_args(vm));
  const bool quiet = vm["quiet"].as<bool>();
  if (!vm["report"].as<bool>()) check_study_calibration(c);
  if (vm["dry-run"].as<bool>()) {
    std::cout << c.name << ": " << cells.size() << " cells, " << c.jobs << " at once, " << threads
              << " threads per command; outputs in " << c.out << "\n";
    for (const Cell& cell : cells) {
      std::cout << "\n" << cell.label() << "\n";
      for (const Step& s : cell.steps)  // a step without arguments is a given file: nothing runs
        std::cout << "  " << (s.args.empty() ? s.label + ": " + s.done : "dearest " + shell_line(s.args)) << "\n";
    }
    return 0;
  }
  for (const auto& m : c.models)
    DEAREST_CHECK(!is_model_file(m) || std::filesystem::exists(m), c.file, ":", c.models_line, ": clean model file ", m,
                  " not found (paths are relative to where dearest experiment runs)");
  if (vm["report"].as<bool>()) {  // another process may be running the study: only read what is done
    std::cout << write_study_results(c, cells);
    // What is being made right now, by whichever process holds each artifact's lock.
    std::set<std::string> seen;
    std::string running;
    size_t left[3] = {0, 0, 0};  // clean models, attacked models, defense runs not yet made
    for (const Cell& cell : cells)
      for (const Step& s : cell.steps) {
        if (!seen.insert(s.dir).second) continue;
        if (!s.args.empty() && !std::filesystem::exists(s.done)) ++left[std::min<size_t>(2, size_t(&s - cell.steps.data()))];
        const StepActivity a = step_activity(s);
        if (!a.running) continue;
        // What the step is for: the model for a clean model, the attack for an attacked one, the cell for a defense.
        const std::string what = &s == &cell.steps.back() ? cell.label()
                               : &s == &cell.steps.front() ? cell.dataset + " " + cell.model
                                                            : cell.dataset + " " + cell.model + " " + cell.attack +
                                                                  (s.args.end() != std::find(s.args.begin(), s.args.end(), "bits=" + std::to_string(cell.bits))
                                                                       ? " @" + std::to_string(cell.bits) : "");
        running += "- " + s.label + ", " + what + " (" + s.dir + "):\n  " + (a.progress.empty() ? "started" : a.progress) + "\n";
      }
    std::cout << "\nLeft to make: " << left[0] << " clean model" << (left[0] == 1 ? "" : "s") << ", " << left[1]
              << " attacked model" << (left[1] == 1 ? "" : "s") << ", " << left[2] << " defense run" << (left[2] == 1 ? "" : "s")
              << " (the running ones among them).\n";
    std::cout << "\n" << (running.empty() ? "Nothing of this study is running now.\n" : "Running now:\n\n" + running);
    return 0;
  }
  write_text(c.out + "/study.ini", c.text);
  if (!quiet) {
    size_t finished = 0;
    for (const Cell& cell : cells) finished += std::filesystem::exists(cell.summary);
    std::cerr << c.name << ": " << cells.size() << " cells (" << finished << " finished before), " << c.jobs
              << " at once, " << threads << " threads per command; outputs in " << c.out << "\n";
  }
  const CellRun r = run_cells(cells, c.jobs, quiet);
  const std::string md = write_study_results(c, cells);
  if (!vm["quiet"].as<bool>()) std::cout << md;
  std::cerr << c.name << ": " << r.ran << " steps run, " << r.reused << " reused; " << r.failures.size()
            << " cells failed; results in " << c.out << "/tables.md, results.csv, results.json\n";
  for (const auto& f : r.failures) std::cerr << "  failed: " << f << "\n";
  return r.failures.empty() ? 0 : 1;
}

}  // namespace

Command experiment_command() {
  return {"experiment", "run a study (dataset x model x attack x bits x defense x seed) from an INI file, cached and resumable",
          [](po::options_description& d) {
            d.add_options()
                ("study", po::value<std::string>()->required(), "the study file (configs/*.ini; see docs/experiments.md)")
                ("out", po::value<std::string>(), "output folder (default: the study's out, else runs/experiments/NAME)")
                ("jobs", po::value<int>(), "cells run at once (default: the study's jobs, else 1)")
                ("dry-run", po::bool_switch()->default_value(false), "check the study and print every cell's commands; run nothing")
                ("report", po::bool_switch()->default_value(false), "write the results of the cells finished so far; run nothing")
                ("quiet", po::bool_switch()->default_value(false), "no progress on stderr, no tables on stdout");
          },
          experiment,
          {"study"}};
}

}  // namespace dearest::cli
