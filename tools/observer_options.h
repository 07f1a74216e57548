// --weight-observer and --act-observer: which observer sets a quantizer's ranges, overriding the
// preset's (MQBench: the MSE search for weights, its EMA over batches for activations). Shared by
// dearest quantize and by defend's grid methods (efrap, nearest, flipped).
#pragma once
#include <boost/program_options.hpp>

#include "quant/presets.h"

namespace dearest::cli {

void add_observer_options(boost::program_options::options_description& d);
// Sets the kinds given on the command line; the other observer options (candidates, EMA) stay the preset's.
void apply_observer_options(const boost::program_options::variables_map& vm, quant::QuantConfig& c);
// Whether either is given; an unknown observer name fails here, before any file is read.
bool observer_options_given(const boost::program_options::variables_map& vm);

}  // namespace dearest::cli
