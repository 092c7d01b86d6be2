#include "tests/bench/child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace chat::bench {
namespace {

// Lines kept in full per stream, and lines of the tail kept for errors.
constexpr size_t kKeptLines = 1000;
constexpr size_t kTailLines = 20;

// Polling interval of waitpid(): there is no fd to wait on for an exit that
// works with the reader threads, and a child's exit is not timed.
constexpr Millis kExitPoll{5};

int ExitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::vector<int>& cpus,
    const std::string& cgroup) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to start");
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("pipe: ", strerror(errno)));
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return absl::UnavailableError(absl::StrCat("pipe: ", strerror(errno)));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return absl::UnavailableError(absl::StrCat("pipe: ", strerror(errno)));
  }
  // Everything the child needs is built before fork(): between fork() and
  // exec only async-signal-safe calls are allowed (gRPC has threads).
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  cpu_set_t cpu_set;
  CPU_ZERO(&cpu_set);
  for (int cpu : cpus) CPU_SET(cpu, &cpu_set);
  const std::string cgroup_procs =
      cgroup.empty() ? "" : absl::StrCat(cgroup, "/cgroup.procs");

  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->spawned_at_ = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return absl::UnavailableError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    // The binaries block SIGTERM themselves; start them with none blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // No orphan keeps a port or a database if chat-bench dies. It fires when
    // the forking thread ends: chat-bench spawns from its main thread.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
        dup2(err[1], STDERR_FILENO) < 0) {
      _exit(127);
    }
    if (!cpus.empty() && sched_setaffinity(0, sizeof(cpu_set), &cpu_set) != 0) {
      _exit(127);
    }
    if (!cgroup_procs.empty()) {
      // "0" is the writer itself, in cgroup v1 and v2 alike.
      const int fd = open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0\n", 2) != 2) _exit(127);
      close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  child->pid_ = pid;
  child->stdin_fd_ = in[1];
  child->out_reader_ = std::thread(Read, out[0], &child->out_);
  child->err_reader_ = std::thread(Read, err[0], &child->err_);
  return child;
}

ChildProcess::~ChildProcess() {
  if (!exit_status_.has_value() && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) Reap(status);
  }
  if (stdin_fd_ >= 0) close(stdin_fd_);
  // The pipes close when the child is gone, which ends the readers.
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

void ChildProcess::Read(int fd, Stream* stream) {
  std::string pending;
  char buffer[65536];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const MonoTime now = std::chrono::steady_clock::now();
    pending.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    absl::MutexLock lock(&stream->mu);
    for (size_t end = pending.find('\n'); end != std::string::npos;
         end = pending.find('\n', start)) {
      std::string line = pending.substr(start, end - start);
      start = end + 1;
      stream->tail.push_back(line);
      if (stream->tail.size() > kTailLines) stream->tail.pop_front();
      if (stream->lines.size() < kKeptLines) {
        stream->lines.push_back({std::move(line), now});
      }
    }
    pending.erase(0, start);
  }
  close(fd);
  absl::MutexLock lock(&stream->mu);
  if (!pending.empty()) {
    stream->tail.push_back(pending);
    if (stream->lines.size() < kKeptLines) {
      stream->lines.push_back({pending, std::chrono::steady_clock::now()});
    }
  }
  stream->ended = true;
  stream->ended_at = std::chrono::steady_clock::now();
}

absl::StatusOr<ChildLine> ChildProcess::WaitForLine(const std::string& needle,
                                                    bool stderr_stream,
                                                    Millis timeout) {
  Stream& stream = stderr_stream ? err_ : out_;
  struct Search {
    Stream* stream;
    const std::string* needle;
    size_t next = 0;  // Lines before it are known not to match.
    const ChildLine* found = nullptr;
  } search{&stream, &needle};
  auto done = +[](Search* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->stream->mu) {
    for (; s->next < s->stream->lines.size(); ++s->next) {
      if (absl::StrContains(s->stream->lines[s->next].text, *s->needle)) {
        s->found = &s->stream->lines[s->next];
        return true;
      }
    }
    return s->stream->ended;
  };
  {
    absl::MutexLock lock(&stream.mu);
    stream.mu.AwaitWithTimeout(absl::Condition(done, &search),
                               absl::FromChrono(timeout));
    if (search.found != nullptr) return *search.found;
  }
  const std::string where = stderr_stream ? "stderr" : "stdout";
  if (Running()) {
    return absl::DeadlineExceededError(
        absl::StrCat("no line with \"", needle, "\" on ", where, " within ",
                     timeout.count(), " ms; stderr: ", StderrTail()));
  }
  return absl::UnavailableError(absl::StrCat(
      "the child exited (status ", exit_status_.value_or(-1), ") before \"",
      needle, "\" on ", where, "; stderr: ", StderrTail()));
}

absl::StatusOr<MonoTime> ChildProcess::WaitForStdoutEnd(Millis timeout) {
  absl::MutexLock lock(&out_.mu);
  if (!out_.mu.AwaitWithTimeout(absl::Condition(&out_.ended),
                                absl::FromChrono(timeout))) {
    return absl::DeadlineExceededError(
        absl::StrCat("still writing after ", timeout.count(),
                     " ms; stderr: ", StderrTail()));
  }
  return out_.ended_at;
}

bool ChildProcess::Running() {
  if (exit_status_.has_value()) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    Reap(status);
    return false;
  }
  return true;
}

void ChildProcess::Reap(int status) { exit_status_ = ExitStatus(status); }

absl::StatusOr<ProcessMemory> ChildProcess::Memory() const {
  if (exit_status_.has_value()) {
    return absl::UnavailableError("the child has exited");
  }
  return ReadProcessMemory(std::to_string(pid_));
}

absl::Status ChildProcess::ResetPeakMemory() const {
  if (exit_status_.has_value()) {
    return absl::UnavailableError("the child has exited");
  }
  // "5" resets the peak RSS (proc(5), clear_refs).
  std::ofstream clear(absl::StrCat("/proc/", pid_, "/clear_refs"));
  clear << "5\n" << std::flush;
  if (!clear) {
    return absl::UnavailableError(
        absl::StrCat("cannot reset the peak memory of ", pid_));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::WaitForExit(Millis timeout) {
  const MonoTime deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("still running after ", timeout.count(), " ms"));
    }
    std::this_thread::sleep_for(kExitPoll);
  }
  return *exit_status_;
}

absl::StatusOr<int> ChildProcess::Stop(Millis timeout) {
  if (!Running()) return *exit_status_;
  kill(pid_, SIGTERM);
  absl::StatusOr<int> exited = WaitForExit(timeout);
  if (exited.ok()) return exited;
  kill(pid_, SIGKILL);
  int status = 0;
  if (waitpid(pid_, &status, 0) == pid_) Reap(status);
  return absl::DeadlineExceededError(
      absl::StrCat("did not stop within ", timeout.count(),
                   " ms of SIGTERM; killed. stderr: ", StderrTail()));
}

std::string ChildProcess::StderrTail() {
  absl::MutexLock lock(&err_.mu);
  return absl::StrJoin(err_.tail, " | ");
}

absl::StatusOr<ReadyChild> StartChild(const std::vector<std::string>& argv,
                                      const ChildStart& how) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Spawn(argv, how.cpus, how.cgroup);
  if (!child.ok()) {
    return absl::Status(child.status().code(),
                        absl::StrCat(argv.empty() ? "" : argv[0], ": ",
                                     child.status().message()));
  }
  absl::StatusOr<ChildLine> ready =
      (*child)->WaitForLine(how.ready_line, how.ready_on_stderr, how.timeout);
  if (!ready.ok()) {
    return absl::Status(ready.status().code(),
                        absl::StrCat(how.name.empty() ? argv[0] : how.name,
                                     ": ", ready.status().message()));
  }
  return ReadyChild{*std::move(child), *std::move(ready)};
}

absl::Status StopChild(ChildProcess& child, Millis timeout,
                       const std::string& name) {
  absl::StatusOr<int> status = child.Stop(timeout);
  if (!status.ok()) {
    return absl::Status(status.status().code(),
                        absl::StrCat(name, ": ", status.status().message()));
  }
  if (*status != 0) {
    return absl::InternalError(
        absl::StrCat(name, " exited ", *status,
                     " after SIGTERM; stderr: ", child.StderrTail()));
  }
  return absl::OkStatus();
}

std::string LoadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one, five, fifteen;
  file >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

absl::StatusOr<double> ReadCpuSeconds(const std::string& pid) {
  std::ifstream file("/proc/" + pid + "/stat");
  std::string stat;
  if (!file.is_open() || !std::getline(file, stat)) {
    return absl::UnavailableError(absl::StrCat("no /proc/", pid, "/stat"));
  }
  // The command name may hold spaces and parentheses; fields follow the
  // last ')': state, ppid, ... with utime and stime 12th and 13th.
  const size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos) {
    return absl::UnavailableError("unreadable /proc/" + pid + "/stat");
  }
  std::istringstream fields(stat.substr(name_end + 1));
  std::string field;
  double ticks = 0;
  for (int i = 1; i <= 13 && fields >> field; ++i) {
    if (i >= 12) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

absl::StatusOr<ProcessMemory> ReadProcessMemory(const std::string& pid) {
  std::ifstream status("/proc/" + pid + "/status");
  if (!status.is_open()) {
    return absl::UnavailableError(absl::StrCat("no /proc/", pid, "/status"));
  }
  ProcessMemory memory;
  bool have_rss = false;
  std::string line;
  while (std::getline(status, line)) {
    const bool rss = line.rfind("VmRSS:", 0) == 0;
    const bool hwm = line.rfind("VmHWM:", 0) == 0;
    if (!rss && !hwm) continue;
    std::istringstream fields(line.substr(6));
    double kilobytes = 0;
    fields >> kilobytes;
    (rss ? memory.rss_mb : memory.hwm_mb) = kilobytes / 1024;
    have_rss = have_rss || rss;
  }
  // A zombie has a status file without VmRSS.
  if (!have_rss) {
    return absl::UnavailableError(absl::StrCat("process ", pid, " has exited"));
  }
  return memory;
}

int PortInLine(const std::string& line) {
  const size_t at = line.find("(port ");
  if (at == std::string::npos) return 0;
  const size_t digits = at + 6;
  const size_t end = line.find(')', digits);
  int port = 0;
  if (end == std::string::npos ||
      !absl::SimpleAtoi(line.substr(digits, end - digits), &port)) {
    return 0;
  }
  return port;
}

std::string DefaultBinDir() {
  std::error_code error;
  std::filesystem::path self =
      std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string(".") : self.parent_path().string();
}

}  // namespace chat::bench
