// The subcommand table of the dearest program and the options every subcommand shares.
#pragma once
#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include <vector>

namespace dearest::cli {

namespace po = boost::program_options;

struct Command {
  const char* name;
  const char* summary;
  // Adds the subcommand's options; `run` gets the parsed map and returns the exit code.
  std::function<void(po::options_description&)> options;
  std::function<int(const po::variables_map&)> run;
  std::vector<std::string> positional = {};  // option names filled by bare words, in order
};

const std::vector<Command>& commands();

// --threads, --backend, --layout, --isa: applied before the subcommand runs.
void add_engine_options(po::options_description& d);
void apply_engine_options(const po::variables_map& vm);
// The engine options given on this command line other than --threads, as arguments for the
// commands a pipeline (demo, experiment) runs as child processes: an ISA cap or the reference
// backend must reach the steps, which are other processes, or it has no effect on them.
std::vector<std::string> forwarded_engine_args(const po::variables_map& vm);

Command info_command();
Command selfcheck_command();
Command data_command();
Command train_command();
Command eval_command();
Command probe_command();
Command quantize_command();
Command audit_command();
Command attack_command();
Command judge_command();
Command report_command();
Command defend_command();
Command detect_command();
Command demo_command();
Command experiment_command();
Command explain_command();

// "a,b,,c" -> {a, b, c}: the comma-separated lists of options such as --layers.
std::vector<std::string> split_list(const std::string& s);

// A number in text, or an error naming the option it came from.
double parse_number(const std::string& text, const std::string& option);

// The options of a parsed command as an INI file that repeats the run (--config).
std::string config_text(const po::variables_map& vm);

}  // namespace dearest::cli
