#include "tools/cli.h"

#include "tensor/error.h"
#include "tensor/runtime.h"

namespace dearest::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {info_command(), selfcheck_command(), data_command()};
  return table;
}

void add_engine_options(po::options_description& d) {
  d.add_options()
      ("threads", po::value<int>(), "OpenMP threads for every kernel (default: OMP_NUM_THREADS, else all cores)")
      ("backend", po::value<std::string>()->default_value("fast"),
       "fast (oneDNN/OpenBLAS) or reference (plain loops, for auditing)")
      ("layout", po::value<std::string>()->default_value("blocked"),
       "blocked (oneDNN layouts between oneDNN ops) or plain (NCHW after every op)")
      ("isa", po::value<std::string>(), "cap oneDNN's ISA: avx2, avx512_core, ... (for cross-host reproducibility)");
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
}

}  // namespace dearest::cli
