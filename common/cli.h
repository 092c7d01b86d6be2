// Command-line parsing for our executables' main.cc files: options from argv,
// then from environment variables, with --help and --version. The only header
// of ours that shows Boost, and only main.cc files include it.

#ifndef CHAT_COMMON_CLI_H_
#define CHAT_COMMON_CLI_H_

#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace chat {

// Exit codes shared by every executable.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;

struct CommandLine {
  std::string program;      // "chat-registry"
  std::string synopsis;     // "chat-registry [OPTIONS]"
  std::string description;  // A paragraph printed under the synopsis.
  std::string epilog;       // Printed after the options (exit codes, ...).
  // Maps environment variables to option names, e.g. {"CHAT_REGISTRY_DB",
  // "db"}.
  std::vector<std::pair<std::string, std::string>> environment;
};

// Parses `argv` into `vm`; an option missing from argv is taken from its
// environment variable. `--help` and `--version` are added here. `hidden`
// options are parsed but not listed in the help (positional arguments).
// Returns -1 when the program should run, or the exit code it should exit
// with now: kExitOk after printing help or version, kExitUsage after printing
// a one-line error and the usage to stderr.
int ParseCommandLine(
    int argc, char** argv, const CommandLine& command_line,
    boost::program_options::options_description options,
    const boost::program_options::positional_options_description& positional,
    boost::program_options::variables_map& vm,
    const boost::program_options::options_description& hidden =
        boost::program_options::options_description());

}  // namespace chat

#endif  // CHAT_COMMON_CLI_H_
