// dearest: one program, one subcommand per job. A subcommand parses its options, calls the
// libraries and writes its results; no algorithm lives here.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "tensor/error.h"
#include "tools/cli.h"

using namespace dearest;

namespace {

void usage(std::ostream& os) {
  os << "dearest " << DEAREST_VERSION
     << ": quantization-conditioned backdoors and the EFRAP defense, on a from-scratch C++ engine\n\n"
        "usage: dearest <command> [options]      dearest <command> --help\n\ncommands:\n";
  for (const auto& c : cli::commands()) {
    std::string n = c.name;
    os << "  " << n << std::string(12 - std::min<size_t>(11, n.size()), ' ') << c.summary << "\n";
  }
  os << "\noptions:\n  --help       this text\n  --version    the version\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    usage(std::cout);
    return 0;
  }
  if (first == "--version") {
    std::cout << "dearest " << DEAREST_VERSION << "\n";
    return 0;
  }
  for (const auto& c : cli::commands()) {
    if (first != c.name) continue;
    namespace po = cli::po;
    po::options_description desc(std::string("dearest ") + c.name + ": " + c.summary + "\n\noptions");
    desc.add_options()("help,h", "this text");
    c.options(desc);
    cli::add_engine_options(desc);
    try {
      po::variables_map vm;
      po::positional_options_description pos;
      for (const std::string& p : c.positional) pos.add(p.c_str(), 1);
      po::store(po::command_line_parser(argc - 1, argv + 1).options(desc).positional(pos).run(), vm);
      if (vm.count("config")) {  // the command line wins over the file (stored first)
        const std::string file = vm["config"].as<std::string>();
        std::ifstream in(file);
        DEAREST_CHECK(in.good(), file, ": cannot open config file");
        po::store(po::parse_config_file(in, desc), vm);
      }
      if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
      }
      po::notify(vm);
      cli::apply_engine_options(vm);
      return c.run(vm);
    } catch (const po::error& e) {
      std::cerr << "dearest " << c.name << ": " << e.what() << " (see dearest " << c.name << " --help)\n";
      return 2;
    } catch (const Error& e) {
      std::cerr << "dearest " << c.name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "dearest " << c.name << ": unexpected error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "dearest: unknown command \"" << first << "\"\n\n";
  usage(std::cerr);
  return 2;
}
