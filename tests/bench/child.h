// A real binary of the project run as a child process of chat-bench, so that
// its memory and start-up time are the binary's own, not those of a server
// sharing chat-bench's process.

#ifndef CHAT_TESTS_BENCH_CHILD_H_
#define CHAT_TESTS_BENCH_CHILD_H_

#include <sys/types.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat::bench {

// A line the child wrote, and when it arrived.
struct ChildLine {
  std::string text;
  MonoTime at;
};

// Memory of a process from /proc/PID/status, in MiB.
struct ProcessMemory {
  double rss_mb = 0;  // VmRSS: resident now.
  double hwm_mb = 0;  // VmHWM: the most that was ever resident.
};

// Not thread-safe, except that the waits may run while the reader threads
// collect output. The destructor kills a child still running (SIGKILL) and
// reaps it.
class ChildProcess {
 public:
  // Starts `argv` (argv[0] is the path), its stdin a pipe held open by this
  // object, stdout and stderr read line by line by two threads of this
  // object. The child is killed if chat-bench dies. It runs on `cpus` when
  // not empty (sched_setaffinity, before exec), and in the cgroup `cgroup`
  // (a directory such as /sys/fs/cgroup/cpu/bench, made by the caller with
  // the limits wanted) when not empty: the child writes itself into its
  // cgroup.procs before exec. kUnavailable when it cannot start (a child
  // that cannot join the cgroup exits 127 before exec).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::vector<int>& cpus = {},
      const std::string& cgroup = "");

  // Resets the child's VmHWM to its VmRSS now (/proc/PID/clear_refs), so
  // that Memory().hwm_mb is the peak from here on. kUnavailable when the
  // kernel refuses.
  absl::Status ResetPeakMemory() const;

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  MonoTime spawned_at() const { return spawned_at_; }

  // The first line of stdout (or stderr, when `stderr_stream`) containing
  // `needle`, waiting at most `timeout`. kDeadlineExceeded after the
  // timeout, kUnavailable when the stream ends first (the child exited);
  // both messages carry the child's last lines of stderr.
  absl::StatusOr<ChildLine> WaitForLine(const std::string& needle,
                                        bool stderr_stream, Millis timeout);

  // When the child's stdout ended (it exited, or closed it), waiting at most
  // `timeout`; kDeadlineExceeded after that. Timed by the reader thread, so
  // more precise than the exit, which is polled.
  absl::StatusOr<MonoTime> WaitForStdoutEnd(Millis timeout);

  // True while the child has not exited.
  bool Running();

  // VmRSS and VmHWM of the child; kUnavailable once it has gone.
  absl::StatusOr<ProcessMemory> Memory() const;

  // Sends SIGTERM and waits at most `timeout` for the exit, then SIGKILL.
  // Returns the exit status (128 + signal when killed by one); kDeadline-
  // Exceeded when it had to be killed.
  absl::StatusOr<int> Stop(Millis timeout);

  // Waits at most `timeout` for the child to exit by itself.
  absl::StatusOr<int> WaitForExit(Millis timeout);

  // The last lines of stderr, for error messages.
  std::string StderrTail();

 private:
  // One of the child's output streams.
  struct Stream {
    absl::Mutex mu;
    // Kept in full only up to a bound: the registry logs a line per
    // registration, and the bench needs only the first lines and the last.
    std::vector<ChildLine> lines ABSL_GUARDED_BY(mu);
    std::deque<std::string> tail ABSL_GUARDED_BY(mu);
    bool ended ABSL_GUARDED_BY(mu) = false;
    MonoTime ended_at ABSL_GUARDED_BY(mu);
  };

  ChildProcess() = default;
  static void Read(int fd, Stream* stream);
  void Reap(int status);

  pid_t pid_ = -1;
  MonoTime spawned_at_;
  int stdin_fd_ = -1;
  Stream out_;
  Stream err_;
  std::thread out_reader_;
  std::thread err_reader_;
  std::optional<int> exit_status_;  // Once reaped.
};

// Where a child runs and when it counts as started (StartChild).
struct ChildStart {
  std::vector<int> cpus;  // As ChildProcess::Spawn's.
  std::string cgroup;     // As ChildProcess::Spawn's.
  // The child is ready once it writes a line containing `ready_line`, on
  // stderr when `ready_on_stderr`, within `timeout`.
  std::string ready_line;
  bool ready_on_stderr = false;
  Millis timeout{60000};
  // What a message calls the child when the line does not come; argv[0]
  // when empty.
  std::string name;
};

// A started child and the line that said it was ready.
struct ReadyChild {
  std::unique_ptr<ChildProcess> process;
  ChildLine ready;
};

// Spawns `argv` and waits for its ready line. Errors as Spawn's and
// WaitForLine's, the message prefixed with "argv[0]: " when it cannot
// start, with "name: " when the line does not come (the child is killed).
absl::StatusOr<ReadyChild> StartChild(const std::vector<std::string>& argv,
                                      const ChildStart& how);

// Stops `child` with SIGTERM (ChildProcess::Stop), which must end it with
// exit status 0. Else the message names it `name`: kDeadlineExceeded
// "name: ..." when it had to be killed, kInternal "name exited N after
// SIGTERM; stderr: ..." when it exited otherwise.
absl::Status StopChild(ChildProcess& child, Millis timeout,
                       const std::string& name);

// "/proc/loadavg"'s three load averages, "1.00 0.50 0.25"; empty fields
// when unreadable.
std::string LoadAverage();

// CPU seconds (user + system) process `pid` used so far, in clock ticks'
// steps (OwnCpuSeconds() reads this process's, finer).
absl::StatusOr<double> ReadCpuSeconds(const std::string& pid);

// VmRSS and VmHWM of process `pid` ("self" for this one).
absl::StatusOr<ProcessMemory> ReadProcessMemory(const std::string& pid);

// The port of a "start: ... (port N)" log line of our servers; 0 if none.
int PortInLine(const std::string& line);

// The directory chat-bench runs from, where the binaries it starts are by
// default; "." when unknown.
std::string DefaultBinDir();

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_CHILD_H_
