// Runs one observer over the batches of a safetensors file ("batch.0", "batch.1", ...) and prints
// the chosen range, scale and zero point as JSON: the dearest side of bench/crosscheck_histogram.py.
//
//   bench_observer_check FILE [--observer histogram] [--bits 8] [--reduce-range]
#include <cstdio>
#include <string>

#include "quant/observer.h"
#include "quant/qparams.h"
#include "tensor/json.h"
#include "tensor/safetensors.h"

using namespace dearest;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_observer_check FILE [--observer NAME] [--bits B] [--reduce-range]\n");
    return 2;
  }
  std::string observer = "histogram";
  int bits = 8;
  bool reduce = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--observer" && i + 1 < argc) observer = argv[++i];
    else if (a == "--bits" && i + 1 < argc) bits = std::stoi(argv[++i]);
    else if (a == "--reduce-range") reduce = true;
  }
  SafetensorsFile f = read_safetensors(argv[1]);
  quant::QuantScheme s = quant::QuantScheme::make(bits, false, false, false);
  if (reduce) s.qmax = (s.qmax + 1) / 2 - 1;
  quant::ObserverOptions o;
  o.kind = quant::parse_observer(observer);
  quant::Observer ob(s, o);
  for (int b = 0; f.has("batch." + std::to_string(b)); ++b) ob.observe(f.get("batch." + std::to_string(b)).clone());
  auto [lo, hi] = ob.range();
  quant::QParams qp = ob.qparams();
  Json j = Json::object();
  j.set("min", lo.to_vector()[0]);
  j.set("max", hi.to_vector()[0]);
  j.set("scale", double(qp.scale.data<float>()[0]));
  j.set("zero_point", int64_t(qp.zero_point.data<int32_t>()[0]));
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
