#include "common/program.h"

#include "absl/synchronization/mutex.h"
#include "common/overload.h"
#include "common/signals.h"

namespace po = boost::program_options;

namespace chat {

int RunProgram(int argc, char** argv, const ProgramStart& start,
               absl::FunctionRef<int(const po::variables_map&)> run) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (start.block_termination_signals) BlockTerminationSignals();
  if (!start.component.empty()) ApplyProcessLimits(start.component);
  po::variables_map vm;
  const int exit_code =
      ParseCommandLine(argc, argv, start.command_line, start.options,
                       start.positional, vm, start.hidden);
  if (exit_code >= 0) return exit_code;
  return run(vm);
}

int StartFailureExitCode(const absl::Status& status, int cannot_start) {
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                             : cannot_start;
}

}  // namespace chat
