#include "tools/observer_options.h"

#include <string>

#include "tensor/error.h"
#include "tools/cli.h"

namespace dearest::cli {

namespace po = boost::program_options;

namespace {

// "kind" or "percentile:P" into the observer options of one tensor kind.
void set_observer(const std::string& option, const std::string& text, quant::ObserverOptions& o) {
  const size_t colon = text.find(':');
  o.kind = quant::parse_observer(text.substr(0, colon));
  if (colon == std::string::npos) return;
  DEAREST_CHECK(o.kind == quant::ObserverKind::Percentile, "--", option, ": only percentile takes a value (percentile:P), got \"",
                text, "\"");
  o.percentile = parse_number(text.substr(colon + 1), "--" + option);
  DEAREST_CHECK(o.percentile > 50 && o.percentile <= 100, "--", option, ": the percentile must be in (50, 100], got ",
                o.percentile);
}

}  // namespace

void add_observer_options(po::options_description& d) {
  d.add_options()("weight-observer", po::value<std::string>(),
                  "weight ranges: minmax, ema-minmax, percentile[:P] (P: the upper percentile, 99.99 unless given), mse, "
                  "ema-mse, omse, aciq, histogram (default: the preset's)")
      ("act-observer", po::value<std::string>(), "as --weight-observer, for activations");
}

void apply_observer_options(const po::variables_map& vm, quant::QuantConfig& c) {
  // An observer the quantizer never consults would be recorded in the describe line and change
  // nothing: refused, so that a run's label says what its grid was.
  if (vm.count("weight-observer")) {
    DEAREST_CHECK(!c.dynamic_weights, "--weight-observer: ", c.preset,
                  " takes its weight ranges from the weights' min and max at every forward; no observer is used");
    set_observer("weight-observer", vm["weight-observer"].as<std::string>(), c.weight_obs);
  }
  if (vm.count("act-observer")) {
    DEAREST_CHECK(c.a_bits > 0, "--act-observer: activations stay float (", c.preset,
                  " with 0 activation bits); --abits N quantizes them");
    DEAREST_CHECK(!c.dynamic_acts, "--act-observer: ", c.preset,
                  " takes its activation ranges from each batch at run time; no observer is used");
    set_observer("act-observer", vm["act-observer"].as<std::string>(), c.act_obs);
  }
}

bool observer_options_given(const po::variables_map& vm) {
  quant::QuantConfig names_checked;
  apply_observer_options(vm, names_checked);
  return vm.count("weight-observer") || vm.count("act-observer");
}

}  // namespace dearest::cli
