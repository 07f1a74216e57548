#include "tools/observer_options.h"

#include <string>

namespace dearest::cli {

namespace po = boost::program_options;

void add_observer_options(po::options_description& d) {
  d.add_options()("weight-observer", po::value<std::string>(),
                  "weight ranges: minmax, ema-minmax, percentile, mse, ema-mse, omse, aciq, histogram (default: the preset's)")
      ("act-observer", po::value<std::string>(), "as --weight-observer, for activations");
}

void apply_observer_options(const po::variables_map& vm, quant::QuantConfig& c) {
  if (vm.count("weight-observer")) c.weight_obs.kind = quant::parse_observer(vm["weight-observer"].as<std::string>());
  if (vm.count("act-observer")) c.act_obs.kind = quant::parse_observer(vm["act-observer"].as<std::string>());
}

bool observer_options_given(const po::variables_map& vm) {
  quant::QuantConfig names_checked;
  apply_observer_options(vm, names_checked);
  return vm.count("weight-observer") || vm.count("act-observer");
}

}  // namespace dearest::cli
