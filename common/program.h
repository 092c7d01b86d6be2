// The start every binary's main() shares: the process set-up all of them
// need before any thread exists, then the command line, then the program's
// own work. Only main.cc files include this (it shows Boost, like cli.h).

#ifndef CHAT_COMMON_PROGRAM_H_
#define CHAT_COMMON_PROGRAM_H_

#include <boost/program_options.hpp>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "common/cli.h"

namespace chat {

// What a binary declares about its start.
struct ProgramStart {
  // Help texts and environment fallbacks (cli.h).
  CommandLine command_line;
  // Options listed by --help; `hidden` ones are parsed but not listed
  // (positional arguments, mapped by `positional`).
  boost::program_options::options_description options{"Options"};
  boost::program_options::options_description hidden;
  boost::program_options::positional_options_description positional;
  // The name the process's log lines and library logs carry ("registry");
  // ApplyProcessLimits(component) runs with it. Empty: not applied here; a
  // program that blocks signals only later applies it itself after that,
  // since it starts a thread (the library logs' flusher) that must inherit
  // the mask.
  std::string component;
  // true: SIGINT, SIGTERM and SIGHUP are blocked before anything else, so
  // every thread inherits the mask and WaitForTerminationSignal() gets them
  // (a server that shuts down gracefully). false: the default actions stay,
  // and the program may block them itself later.
  bool block_termination_signals = true;
};

// Runs a binary's main(), in this order:
//  1. Abseil's run-time lock-order check is turned off. Debian builds its
//     Abseil with it on; perf showed its bookkeeping at ~4% of all cycles
//     under load, and our tests run with it on anyway.
//  2. The termination signals are blocked, if start says so (signals.h).
//  3. ApplyProcessLimits(start.component), unless the component is empty:
//     the open file limit raised, library logs routed and rate-limited. It
//     starts a thread, so it comes after 2.
//  4. The command line is parsed (ParseCommandLine): --help and --version
//     print and return kExitOk, a usage error prints and returns
//     kExitUsage, without calling `run`.
//  5. Returns run(vm): the program's work and its exit code.
// Call it once, from main(), before any thread is started.
int RunProgram(
    int argc, char** argv, const ProgramStart& start,
    absl::FunctionRef<int(const boost::program_options::variables_map&)> run);

// The exit code of a start that failed with `status`: kExitUsage when the
// user's input was wrong (kInvalidArgument: a bad option value, a bad TLS
// file name), else `cannot_start` (the program's own code for "cannot start":
// a file unreadable, an address in use).
int StartFailureExitCode(const absl::Status& status, int cannot_start);

}  // namespace chat

#endif  // CHAT_COMMON_PROGRAM_H_
