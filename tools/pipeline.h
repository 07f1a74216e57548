// Steps of a pipeline: dearest's own subcommands run as child processes, each writing one artifact
// folder, skipped when the folder is already complete. The machinery under dearest demo and
// dearest experiment: a rerun computes only what is missing, an interrupted one resumes (the
// subcommands checkpoint), and two processes never build the same artifact at once (a lock per
// folder).
#pragma once
#include <string>
#include <vector>

#include "tensor/json.h"

namespace dearest::cli {

struct Step {
  std::string label;              // what the step makes, for progress and errors
  std::vector<std::string> args;  // the subcommand and its options (the program's name excluded)
  std::string dir;                // its artifact folder: command.txt, stdout.txt, stderr.txt, and its outputs
  std::string done;               // the file whose presence means the step is complete
};

struct StepOutcome {
  bool cached = false;  // complete before this call: nothing ran
  bool busy = false;    // being made elsewhere right now and not waited for: nothing ran
  double seconds = 0;
};

// Runs the step unless `done` exists. Holds DIR/.lock (flock) while it runs, so that another
// process or thread asking for the same artifact either waits, then finds it complete (`wait`), or
// returns at once with `busy` set, free to do other work. The child's stdout and stderr go to
// files in DIR; on a terminal its latest progress line is shown after `prefix`. A failing child is
// an error naming the step, its exit status, the last line it printed and the log file.
StepOutcome run_step(const Step& step, const std::string& prefix, bool show_progress, bool wait = true);

// Whether another process or thread is making the step right now (its folder's lock is held),
// and if so the last line its log shows (its progress). Nothing is waited for.
struct StepActivity {
  bool running = false;
  std::string progress;
};
StepActivity step_activity(const Step& step);

// A short stable key of the texts (SHA-256 of their length-prefixed concatenation, 16 hex digits):
// artifact folders are named by the key of what they are computed from.
std::string key_of(const std::vector<std::string>& parts);

// A JSON file, or an error naming it.
Json read_json(const std::string& path);

// The command line as one shell-quoted line (command.txt, and what the docs quote).
std::string shell_line(const std::vector<std::string>& args);

}  // namespace dearest::cli
