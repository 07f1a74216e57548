// dearest info: what this build runs on (oneDNN version and ISA, OpenBLAS threading, threads,
// backend, layout policy), as JSON: the manifest every run records.
#include <iostream>

#include "tensor/json.h"
#include "tensor/runtime.h"
#include "tools/cli.h"

namespace dearest::cli {

Command info_command() {
  return {"info", "print the run manifest (versions, ISA, threads, kernel policy) as JSON",
          [](po::options_description&) {},
          [](const po::variables_map&) {
            std::cout << Json::parse(runtime_manifest_json()).dump(2) << "\n";
            return 0;
          }};
}

}  // namespace dearest::cli
