#include "tools/cli.h"

#include <iomanip>
#include <sstream>

#include "tensor/error.h"
#include "tensor/runtime.h"
#include "tensor/safetensors.h"

namespace dearest::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {info_command(), selfcheck_command(), data_command(), train_command(),
                                             eval_command(), probe_command(), quantize_command(), audit_command(),
                                             attack_command(), judge_command(), report_command(), defend_command(), detect_command(),
                                             demo_command(), experiment_command(), explain_command()};
  return table;
}

void add_engine_options(po::options_description& d) {
  d.add_options()
      ("threads", po::value<int>(), "OpenMP threads for every kernel (default: OMP_NUM_THREADS, else all cores)")
      ("backend", po::value<std::string>()->default_value("fast"),
       "fast (oneDNN/OpenBLAS) or reference (plain loops, for auditing)")
      ("layout", po::value<std::string>()->default_value("blocked"),
       "blocked (oneDNN layouts between oneDNN ops) or plain (NCHW after every op)")
      ("conv", po::value<std::string>()->default_value("direct"),
       "convolution algorithm: direct, or winograd (oneDNN's F(4x4,3x3) on AVX-512 hosts for 3x3 stride-1 layers, "
       "direct elsewhere; faster, with float32 rounding of its own)")
      ("isa", po::value<std::string>(), "cap oneDNN's ISA: avx2, avx512_core, ... (for cross-host reproducibility)")
      ("config", po::value<std::string>(), "read options from an INI file (key = value); the command line wins");
}

void apply_engine_options(const po::variables_map& vm) {
  if (vm.count("isa")) set_max_isa(vm["isa"].as<std::string>());
  if (vm.count("threads")) set_num_threads(vm["threads"].as<int>());
  const std::string b = vm["backend"].as<std::string>();
  DEAREST_CHECK(b == "fast" || b == "reference", "--backend: expected fast or reference, got \"", b, "\"");
  set_backend(b == "fast" ? Backend::Fast : Backend::Reference);
  const std::string l = vm["layout"].as<std::string>();
  DEAREST_CHECK(l == "blocked" || l == "plain", "--layout: expected blocked or plain, got \"", l, "\"");
  set_layout_policy(l == "blocked" ? LayoutPolicy::Blocked : LayoutPolicy::Plain);
  set_conv_algorithm(parse_conv_algorithm(vm["conv"].as<std::string>()));
}

std::vector<std::string> forwarded_engine_args(const po::variables_map& vm) {
  std::vector<std::string> a;
  if (vm.count("isa")) a.insert(a.end(), {"--isa", vm["isa"].as<std::string>()});
  if (vm["backend"].as<std::string>() != "fast") a.insert(a.end(), {"--backend", vm["backend"].as<std::string>()});
  if (vm["layout"].as<std::string>() != "blocked") a.insert(a.end(), {"--layout", vm["layout"].as<std::string>()});
  if (vm["conv"].as<std::string>() != "direct") a.insert(a.end(), {"--conv", vm["conv"].as<std::string>()});
  return a;
}

}  // namespace dearest::cli

namespace dearest::cli {

std::string config_text(const po::variables_map& vm) {
  std::ostringstream os;
  for (const auto& [k, v] : vm) {
    if (k == "config" || k == "help" || v.empty()) continue;
    const boost::any& a = v.value();
    if (auto* s = boost::any_cast<std::string>(&a)) os << k << " = " << *s << "\n";
    else if (auto* i = boost::any_cast<int64_t>(&a)) os << k << " = " << *i << "\n";
    else if (auto* n = boost::any_cast<int>(&a)) os << k << " = " << *n << "\n";
    else if (auto* d = boost::any_cast<double>(&a)) os << k << " = " << std::setprecision(17) << *d << "\n";
    else if (auto* b = boost::any_cast<bool>(&a)) os << k << " = " << (*b ? "true" : "false") << "\n";
    else if (auto* u = boost::any_cast<uint64_t>(&a)) os << k << " = " << *u << "\n";
  }
  return os.str();
}

double parse_number(const std::string& text, const std::string& option) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail(option, ": \"", text, "\" is not a number");
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  std::string item;
  while (std::getline(is, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace dearest::cli
