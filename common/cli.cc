#include "common/cli.h"

#include <iostream>
#include <map>

namespace po = boost::program_options;

namespace chat {
namespace {

void PrintUsage(std::ostream& out, const CommandLine& command_line,
                const po::options_description& options) {
  out << "Usage: " << command_line.synopsis << "\n";
  if (!command_line.description.empty()) {
    out << "\n" << command_line.description << "\n";
  }
  out << "\n" << options;
  if (!command_line.environment.empty()) {
    out << "\nEnvironment (used when the option is not given):\n";
    for (const auto& [variable, option] : command_line.environment) {
      out << "  " << variable << " -> --" << option << "\n";
    }
  }
  if (!command_line.epilog.empty()) out << "\n" << command_line.epilog << "\n";
}

}  // namespace

int ParseCommandLine(int argc, char** argv, const CommandLine& command_line,
                     po::options_description options,
                     const po::positional_options_description& positional,
                     po::variables_map& vm,
                     const po::options_description& hidden) {
  options.add_options()("help,h", "print this help and exit")(
      "version", "print the version and exit");
  po::options_description all;
  all.add(options).add(hidden);
  try {
    po::store(po::command_line_parser(argc, argv)
                  .options(all)
                  .positional(positional)
                  .run(),
              vm);
    std::map<std::string, std::string> by_variable(
        command_line.environment.begin(), command_line.environment.end());
    po::store(po::parse_environment(
                  options,
                  [&by_variable](const std::string& variable) -> std::string {
                    auto it = by_variable.find(variable);
                    return it == by_variable.end() ? "" : it->second;
                  }),
              vm);
    if (vm.count("help")) {
      PrintUsage(std::cout, command_line, options);
      return kExitOk;
    }
    if (vm.count("version")) {
      std::cout << command_line.program << " " << CHAT_VERSION << "\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << command_line.program << ": " << e.what() << "\n"
              << "Usage: " << command_line.synopsis << "  (see "
              << command_line.program << " --help)\n";
    return kExitUsage;
  }
  return -1;
}

}  // namespace chat
