// dearest report RUN: the tables of an attack run folder (attacks/report.h), finished or not.
#include <iostream>

#include "attacks/report.h"
#include "tools/cli.h"

namespace dearest::cli {

Command report_command() {
  return {"report", "the epochs, choices and verdicts of a dearest attack run folder, as Markdown: RUN.run",
          [](po::options_description& d) {
            d.add_options()("run", po::value<std::string>()->required(), "the run folder (X.run for --out X.safetensors)");
          },
          [](const po::variables_map& vm) {
            std::string run = vm["run"].as<std::string>();
            const std::string ext = ".safetensors";
            if (run.size() > ext.size() && run.compare(run.size() - ext.size(), ext.size(), ext) == 0)
              run = run.substr(0, run.size() - ext.size()) + ".run";
            std::cout << attacks::run_report(run);
            return 0;
          },
          {"run"}};
}

}  // namespace dearest::cli
