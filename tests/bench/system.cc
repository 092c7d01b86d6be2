#include "tests/bench/system.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/json.h"
#include "common/random.h"
#include "proto/greet.grpc.pb.h"
#include "proto/registry.grpc.pb.h"
#include "tests/bench/child.h"
#include "tests/bench/driver.h"
#include "tests/bench/lab.h"
#include "tests/bench/run_report.h"
#include "tests/bench/workloads.h"

namespace chat::bench {
namespace {

// The targets judged here (docs/benchmarks.md).
constexpr double kRegistryTargetMb = 150;
constexpr double kPeerTargetMb = 30;
constexpr double kReadyTargetMs = 300;
constexpr double kOverloadTargetRatio = 0.8;
// The goodput target is judged only when chat-bench started at least this
// share of the calls it was asked to: below, the driver, not the server, was
// what saturated (give the server less CPU: --server-cgroup).
constexpr double kOfferedShareJudged = 0.95;
// The million-name targets (memory mode, --names > 100000).
constexpr double kScaleRegistryTargetMb = 700;
constexpr double kScaleResolveTargetRatio = 0.9;  // Of resolve with 100.
constexpr double kScaleRestartTargetRatio = 12;   // Of restart at 100,000.
constexpr int kScaleBaseNames = 100000;
constexpr int kScaleSmallNames = 100;
constexpr int kScaleResolveConcurrency = 16;
constexpr int kScaleResolveRounds = 3;

constexpr Millis kStartTimeout{60000};
// A registry holding a million names takes seconds to free them on a
// loaded machine.
constexpr Millis kStopTimeout{60000};
// The registry's lease bounds for the bench: the fill's leases must outlive
// every measurement, and nothing renews them.
constexpr int kRegistryMaxTtlSeconds = 86400;
constexpr Millis kFillTtl{3600 * 1000};
constexpr int kFillConcurrency = 64;
constexpr Millis kFillTimeLimit{600000};
// Open-loop slots at most: at 2x of any rate this machine reaches, with a
// 100 ms deadline, far fewer are in flight.
constexpr int kMaxSlots = 200000;
// Status codes an overloaded server may answer with.
constexpr grpc::StatusCode kAllowedUnderOverload[] = {
    grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::UNAVAILABLE,
    grpc::StatusCode::DEADLINE_EXCEEDED};

double MillisBetween(MonoTime from, MonoTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The CPU the registry and chat-bench itself used over a stretch, in cores:
// on a shared machine it shows who was the bottleneck.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t registry)
      : registry_(std::to_string(registry)),
        start_(std::chrono::steady_clock::now()),
        registry_start_(ReadCpuSeconds(registry_).value_or(0)),
        self_start_(OwnCpuSeconds()) {}

  // Cores used since construction: {registry, chat-bench}.
  std::pair<double, double> Cores() const {
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    if (wall <= 0) return {0, 0};
    return {(ReadCpuSeconds(registry_).value_or(0) - registry_start_) / wall,
            (OwnCpuSeconds() - self_start_) / wall};
  }

 private:
  const std::string registry_;
  const MonoTime start_;
  const double registry_start_;
  const double self_start_;
};

// Runs the measurements; one object per RunSystemBench() call.
class SystemBench {
 public:
  SystemBench(const BenchOptions& options, std::ostream& out, std::ostream& err)
      : options_(options),
        report_(options.json, out, err),
        bin_dir_(options.bin_dir.empty() ? DefaultBinDir() : options.bin_dir) {}

  ~SystemBench() {
    registry_.reset();  // Kills it if still running, before its files go.
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  int Run() {
    std::error_code error;
    dir_ = std::filesystem::temp_directory_path(error) /
           ("chat-bench-system-" + RandomHex(6));
    if (error || !std::filesystem::create_directories(dir_, error)) {
      return report_.CannotStart(
          absl::StrCat("cannot create a scratch directory: ", error.message()));
    }
    report_.Note(absl::StrCat("binaries from ", bin_dir_,
                              "; all on 127.0.0.1; ",
                              std::thread::hardware_concurrency(),
                              " CPUs, load average ", LoadAverage()));
    if (!StartRegistry()) return report_.exit_code();
    if (Wants("memory") && options_.names > kScaleBaseNames) {
      if (!Scale()) return report_.exit_code();
    } else if (Wants("memory") || Wants("overload")) {
      if (!Fill()) return report_.exit_code();
    }
    if (Wants("startup") && !Startup()) return report_.exit_code();
    if (Wants("overload")) Overload();
    StopRegistry();
    return report_.exit_code();
  }

 private:
  bool Wants(const char* measure) const {
    return std::find(options_.system.begin(), options_.system.end(), measure) !=
           options_.system.end();
  }

  std::string Bin(const std::string& name) const {
    return (std::filesystem::path(bin_dir_) / name).string();
  }

  // Starts `argv` and waits for the line with `needle`; null (and the exit
  // code set) when it does not come.
  std::unique_ptr<ChildProcess> StartProcess(
      const std::vector<std::string>& argv, const std::string& needle,
      bool on_stderr, ChildLine* line) {
    ChildStart how;
    how.cpus = options_.server_cpus;
    how.cgroup = options_.server_cgroup;
    how.ready_line = needle;
    how.ready_on_stderr = on_stderr;
    how.timeout = kStartTimeout;
    absl::StatusOr<ReadyChild> child = StartChild(argv, how);
    if (!child.ok()) {
      report_.CannotStart(std::string(child.status().message()));
      return nullptr;
    }
    if (line != nullptr) *line = std::move(child->ready);
    return std::move(child->process);
  }

  // Stops `child` with SIGTERM; its exit status must be 0.
  void StopProcess(ChildProcess& child, const std::string& what) {
    absl::Status stopped = StopChild(child, kStopTimeout, what);
    if (!stopped.ok()) report_.Failed(std::string(stopped.message()));
  }

  absl::StatusOr<ProcessMemory> IdleMemory(ChildProcess& child) {
    // The RSS of a process that just started still grows (threads, first
    // allocations); the target is about the steady state.
    std::this_thread::sleep_for(options_.idle);
    return child.Memory();
  }

  void EmitMemory(const std::string& process, const std::string& state,
                  int names, const ProcessMemory& memory, double target_mb) {
    const bool judged = target_mb > 0;
    const bool met = memory.rss_mb <= target_mb;
    std::string json =
        absl::StrCat("{\"kind\":\"memory\",\"process\":", JsonQuote(process),
                     ",\"state\":", JsonQuote(state), ",\"names\":", names,
                     ",\"rss_mb\":", Fixed(memory.rss_mb, 1),
                     ",\"hwm_mb\":", Fixed(memory.hwm_mb, 1));
    std::string text = absl::StrFormat(
        "memory  %-14s %-10s registry names %6d  VmRSS %6.1f MB  VmHWM %6.1f "
        "MB",
        process, state, names, memory.rss_mb, memory.hwm_mb);
    if (judged) {
      absl::StrAppend(&json, ",\"target_mb\":", Fixed(target_mb, 0),
                      ",\"met\":", met ? "true" : "false");
      absl::StrAppend(&text,
                      absl::StrFormat("  target <= %.0f MB: %s", target_mb,
                                      met ? "met" : "MISSED"));
    }
    report_.Emit(json + "}", text);
  }

  bool StartRegistry() {
    return StartRegistryOn("registry.db", &registry_, &registry_target_,
                           &channels_, &registry_ready_ms_);
  }

  // Starts a registry on DIR/`db` and connects to it: `ready_ms` from spawn
  // until its "start: listening" line (printed once the file is loaded).
  bool StartRegistryOn(const std::string& db,
                       std::unique_ptr<ChildProcess>* child,
                       std::string* target, Channels* channels,
                       double* ready_ms) {
    ChildLine line;
    std::unique_ptr<ChildProcess>& started = *child;
    started = StartProcess(
        {Bin("chat-registry"), "--listen", "127.0.0.1:0", "--db",
         (dir_ / db).string(), "--max-ttl",
         std::to_string(kRegistryMaxTtlSeconds), "--default-ttl",
         std::to_string(kFillTtl.count() / 1000),
         // 64 callers, one key each, share the fill.
         "--max-names-per-key", std::to_string(std::max(options_.names, 32))},
        "start: listening", /*on_stderr=*/true, &line);
    if (started == nullptr) return false;
    const int port = PortInLine(line.text);
    if (port == 0) {
      report_.CannotStart("no port in the registry's line: " + line.text);
      return false;
    }
    *target = absl::StrCat("127.0.0.1:", port);
    absl::StatusOr<Channels> connected =
        NewChannels(*target, options_.connections);
    if (!connected.ok()) {
      report_.CannotStart(std::string(connected.status().message()));
      return false;
    }
    *channels = *std::move(connected);
    *ready_ms = MillisBetween(started->spawned_at(), line.at);
    report_.Note(absl::StrCat("chat-registry pid ", started->pid(), " on ",
                              *target, " (", db, "), ready ",
                              Fixed(*ready_ms, 1), " ms after spawn"));
    return true;
  }

  // Registers `count` more leases (fresh names, one key per caller) in the
  // registry behind `channels`, adding their names to `names`.
  bool FillMore(const Channels& channels, int count,
                std::vector<std::string>* names) {
    const std::string prefix = "bench-" + RandomHex(3) + "-";
    const int callers = std::min(kFillConcurrency, count);
    std::unique_ptr<Workload> fill =
        NewLeaseFillWorkload(channels, callers, prefix, kFillTtl);
    LoadOptions load;
    load.concurrency = callers;
    load.operations = count;
    load.duration = kFillTimeLimit;
    const LoadResult filled = RunClosedLoop(*fill, load);
    for (int i = 0; i < count; ++i) names->push_back(FillName(prefix, i));
    const double rate = filled.seconds > 0
                            ? static_cast<double>(filled.calls) / filled.seconds
                            : 0;
    report_.Emit(
        absl::StrCat("{\"kind\":\"fill\",\"leases\":", filled.calls,
                     ",\"errors\":", filled.errors,
                     ",\"error_codes\":", ErrorCountsJson(filled.error_counts),
                     ",\"total\":", names->size(),
                     ",\"seconds\":", Fixed(filled.seconds, 2),
                     ",\"registers_per_s\":", Fixed(rate, 0), "}"),
        absl::StrFormat("fill    %d leases registered over gRPC (%d in "
                        "flight) in %.2f s, %.0f/s, %d in all, errors: %s",
                        filled.calls, callers, filled.seconds, rate,
                        static_cast<int>(names->size()),
                        ErrorCountsText(filled.error_counts)));
    if (filled.errors > 0 || filled.calls != count) {
      return report_.Failed(absl::StrCat("the fill registered ", filled.calls,
                                         " of ", count, " names"));
    }
    return true;
  }

  // Stops the registry and starts it again on the same file; the time until
  // it is ready, 0 on failure.
  double Restart(int names) {
    StopRegistry();
    if (report_.exit_code() != 0 || !StartRegistry()) return 0;
    absl::StatusOr<ProcessMemory> memory = registry_->Memory();
    if (memory.ok())
      EmitMemory("chat-registry", "restarted", names, *memory, 0);
    report_.Emit(
        absl::StrCat("{\"kind\":\"restart\",\"names\":", names,
                     ",\"ready_ms\":", Fixed(registry_ready_ms_, 1), "}"),
        absl::StrFormat("restart chat-registry with %7d names: ready %8.1f "
                        "ms after spawn",
                        names, registry_ready_ms_));
    return registry_ready_ms_;
  }

  // Closed-loop Resolve calls of `names` over `channels` for the run's
  // warm-up and duration: what every resolve figure here is made of. With
  // `registry` (a pid), also the cores it used meanwhile.
  struct ResolveRun {
    LoadResult result;
    double calls_per_s = 0;
    double registry_cores = 0;
  };
  ResolveRun RunResolve(const Channels& channels, int concurrency,
                        const std::vector<std::string>& names,
                        pid_t registry = 0) {
    std::unique_ptr<Workload> resolve =
        NewResolveWorkload(channels, concurrency, names);
    LoadOptions load;
    load.concurrency = concurrency;
    load.warmup = options_.warmup;
    load.duration = options_.duration;
    const CpuMeter cpu(registry != 0 ? registry : getpid());
    ResolveRun run{RunClosedLoop(*resolve, load)};
    if (registry != 0) run.registry_cores = cpu.Cores().first;
    if (run.result.seconds > 0) {
      run.calls_per_s =
          static_cast<double>(run.result.calls) / run.result.seconds;
    }
    return run;
  }

  // One round of the scale comparison against the registry `pid` holding
  // `names_held` names: its throughput, and the registry's CPU time per
  // call, which the load generator sharing the cores does not change.
  struct ResolveFigures {
    double calls_per_s = 0;
    double registry_us_per_call = 0;
  };
  ResolveFigures ResolveRate(const Channels& channels,
                             const std::vector<std::string>& names,
                             int names_held, pid_t pid) {
    const ResolveRun run =
        RunResolve(channels, kScaleResolveConcurrency, names, pid);
    const double registry_cores = run.registry_cores;
    const LoadResult& r = run.result;
    ResolveFigures figures;
    figures.calls_per_s = run.calls_per_s;
    // Cores used over the warm-up and the run, at the measured call rate
    // (the warm-up runs the same load).
    if (run.calls_per_s > 0) {
      figures.registry_us_per_call = registry_cores * 1e6 / run.calls_per_s;
    }
    report_.Emit(
        absl::StrCat("{\"kind\":\"scale_resolve\",\"names\":", names_held,
                     ",\"concurrency\":", kScaleResolveConcurrency,
                     ",\"errors\":", r.errors,
                     ",\"calls_per_s\":", Fixed(figures.calls_per_s, 1),
                     ",\"registry_cores\":", Fixed(registry_cores, 2),
                     ",\"registry_us_per_call\":",
                     Fixed(figures.registry_us_per_call, 1), "}"),
        absl::StrFormat("resolve registry of %7d names, conc %d: %9.0f "
                        "calls/s, registry %.1f us CPU/call, errors: %s",
                        names_held, kScaleResolveConcurrency,
                        figures.calls_per_s, figures.registry_us_per_call,
                        ErrorCountsText(r.error_counts)));
    if (r.errors > 0)
      report_.Failed("resolve failed: " + ErrorCountsText(r.error_counts));
    return figures;
  }

  // A million names: fills kScaleBaseNames, restarts (the
  // baseline), fills up to --names, reads the memory, restarts again; then
  // resolve against a second registry holding kScaleSmallNames, in
  // alternating rounds (the machine is shared: same run, same moment).
  bool Scale() {
    absl::StatusOr<ProcessMemory> idle = IdleMemory(*registry_);
    if (!idle.ok()) {
      return report_.Failed(
          absl::StrCat("chat-registry: ", idle.status().message()));
    }
    EmitMemory("chat-registry", "idle", 0, *idle, 0);
    if (!FillMore(channels_, kScaleBaseNames, &names_)) return false;
    const double base_restart = Restart(kScaleBaseNames);
    if (base_restart == 0) return false;
    if (!FillMore(channels_, options_.names - kScaleBaseNames, &names_)) {
      return false;
    }
    absl::StatusOr<ProcessMemory> full = registry_->Memory();
    if (!full.ok()) {
      return report_.Failed(
          absl::StrCat("chat-registry: ", full.status().message()));
    }
    EmitMemory("chat-registry", "live-names", options_.names, *full,
               kScaleRegistryTargetMb);
    const double restart = Restart(options_.names);
    if (restart == 0) return false;
    absl::StatusOr<ProcessMemory> restarted = registry_->Memory();
    if (restarted.ok()) {
      EmitMemory("chat-registry", "live-names-restarted", options_.names,
                 *restarted, kScaleRegistryTargetMb);
    }
    const double restart_ratio = restart / base_restart;
    report_.Emit(
        absl::StrCat(
            "{\"kind\":\"scale_restart_ratio\",\"ratio\":",
            Fixed(restart_ratio, 2),
            ",\"target\":", Fixed(kScaleRestartTargetRatio, 0), ",\"met\":",
            restart_ratio <= kScaleRestartTargetRatio ? "true" : "false", "}"),
        absl::StrFormat(
            "ratio   restart %d / restart %d names: %.2f  "
            "target <= %.0f: %s",
            options_.names, kScaleBaseNames, restart_ratio,
            kScaleRestartTargetRatio,
            restart_ratio <= kScaleRestartTargetRatio ? "met" : "MISSED"));

    std::unique_ptr<ChildProcess> small;
    std::string small_target;
    Channels small_channels;
    double small_ready = 0;
    if (!StartRegistryOn("small.db", &small, &small_target, &small_channels,
                         &small_ready)) {
      return false;
    }
    std::vector<std::string> small_names;
    if (!FillMore(small_channels, kScaleSmallNames, &small_names)) {
      return false;
    }
    std::vector<double> ratios;
    std::vector<double> cost_ratios;  // CPU per call, few / many.
    for (int round = 0; round < kScaleResolveRounds; ++round) {
      const ResolveFigures few = ResolveRate(small_channels, small_names,
                                             kScaleSmallNames, small->pid());
      const ResolveFigures many =
          ResolveRate(channels_, names_, options_.names, registry_->pid());
      if (few.calls_per_s > 0) {
        ratios.push_back(many.calls_per_s / few.calls_per_s);
      }
      if (many.registry_us_per_call > 0) {
        cost_ratios.push_back(few.registry_us_per_call /
                              many.registry_us_per_call);
      }
    }
    StopProcess(*small, "chat-registry (small)");
    if (ratios.empty()) return report_.Failed("no resolve succeeded");
    if (!cost_ratios.empty()) {
      const Spread cost = SpreadOf(cost_ratios);
      report_.Emit(
          absl::StrCat("{\"kind\":\"scale_resolve_cpu_ratio\",\"ratio\":",
                       SpreadJson(cost, 3), "}"),
          absl::StrFormat("ratio   registry CPU per resolve, %d names / %d "
                          "names: min %.3f median %.3f max %.3f (1: the "
                          "same cost)",
                          kScaleSmallNames, options_.names, cost.min,
                          cost.median, cost.max));
    }
    const Spread s = SpreadOf(ratios);
    const bool met = s.median >= kScaleResolveTargetRatio;
    report_.Emit(
        absl::StrCat(
            "{\"kind\":\"scale_resolve_ratio\",\"ratio\":", SpreadJson(s, 3),
            ",\"target\":", Fixed(kScaleResolveTargetRatio, 2),
            ",\"met\":", met ? "true" : "false", "}"),
        absl::StrFormat("ratio   resolve %d / resolve %d names: min %.3f "
                        "median %.3f max %.3f  target median >= %.2f: %s",
                        options_.names, kScaleSmallNames, s.min, s.median,
                        s.max, kScaleResolveTargetRatio,
                        met ? "met" : "MISSED"));
    return report_.exit_code() == 0;
  }

  void StopRegistry() {
    if (registry_ == nullptr) return;
    StopProcess(*registry_, "chat-registry");
    // Its gate's totals (one line at shutdown): how many calls reached a
    // handler at all, and how they were shed.
    for (absl::string_view line :
         absl::StrSplit(registry_->StderrTail(), " | ")) {
      if (absl::StrContains(line, "overload: calls admitted")) {
        report_.Note(absl::StrCat("chat-registry at exit: ", line));
      }
    }
  }

  // Registers options_.names leases through the gRPC API, 64 at a time, and
  // reports the registry's memory before and after.
  bool Fill() {
    absl::StatusOr<ProcessMemory> idle = IdleMemory(*registry_);
    if (!idle.ok()) {
      return report_.Failed(
          absl::StrCat("chat-registry: ", idle.status().message()));
    }
    EmitMemory("chat-registry", "idle", 0, *idle, 0);

    const std::string prefix = "bench-" + RandomHex(3) + "-";
    const int callers = std::min(kFillConcurrency, options_.names);
    std::unique_ptr<Workload> fill =
        NewLeaseFillWorkload(channels_, callers, prefix, kFillTtl);
    LoadOptions load;
    load.concurrency = callers;
    load.operations = options_.names;
    load.duration = kFillTimeLimit;
    const LoadResult filled = RunClosedLoop(*fill, load);
    names_.reserve(static_cast<size_t>(options_.names));
    for (int i = 0; i < options_.names; ++i) {
      names_.push_back(FillName(prefix, i));
    }
    const double rate = filled.seconds > 0
                            ? static_cast<double>(filled.calls) / filled.seconds
                            : 0;
    report_.Emit(
        absl::StrCat("{\"kind\":\"fill\",\"leases\":", filled.calls,
                     ",\"errors\":", filled.errors,
                     ",\"error_codes\":", ErrorCountsJson(filled.error_counts),
                     ",\"concurrency\":", callers,
                     ",\"seconds\":", Fixed(filled.seconds, 2),
                     ",\"registers_per_s\":", Fixed(rate, 0), "}"),
        absl::StrFormat("fill    %d leases registered over gRPC (%d in "
                        "flight) in %.2f s, %.0f/s, errors: %s",
                        filled.calls, callers, filled.seconds, rate,
                        ErrorCountsText(filled.error_counts)));
    if (filled.errors > 0 || filled.calls != options_.names) {
      return report_.Failed(absl::StrCat("the fill registered ", filled.calls,
                                         " of ", options_.names, " names"));
    }
    absl::StatusOr<ProcessMemory> full = registry_->Memory();
    if (!full.ok()) {
      return report_.Failed(
          absl::StrCat("chat-registry: ", full.status().message()));
    }
    EmitMemory("chat-registry", "live-names", options_.names, *full,
               kRegistryTargetMb);
    return true;
  }

  // Time from spawn until the greeter answers a Greet; 0 on failure (the
  // exit code is set).
  double GreeterStartMs() {
    ChildLine line;
    std::unique_ptr<ChildProcess> greeter =
        StartProcess({Bin("chat-greeter"), "--listen", "127.0.0.1:0"},
                     "start: serving", /*on_stderr=*/true, &line);
    if (greeter == nullptr) return 0;
    const int port = PortInLine(line.text);
    std::unique_ptr<::GreetService::Stub> stub = ::GreetService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                            grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kStartTimeout);
    context.set_wait_for_ready(true);
    ::GreetRequest request;
    request.set_name("bench");
    ::GreetResponse response;
    const grpc::Status status = stub->Greet(&context, request, &response);
    const MonoTime answered = std::chrono::steady_clock::now();
    StopProcess(*greeter, "chat-greeter");
    if (!status.ok()) {
      report_.CannotStart("chat-greeter did not answer: " +
                          status.error_message());
      return 0;
    }
    return MillisBetween(greeter->spawned_at(), answered);
  }

  // Time from spawn until `chatctl health` of the registry has exited.
  double ChatctlHealthMs() {
    absl::StatusOr<std::unique_ptr<ChildProcess>> chatctl = ChildProcess::Spawn(
        {Bin("chatctl"), "--registry", registry_target_, "health"});
    if (!chatctl.ok()) {
      report_.CannotStart(
          absl::StrCat("chatctl: ", chatctl.status().message()));
      return 0;
    }
    absl::StatusOr<MonoTime> ended =
        (*chatctl)->WaitForStdoutEnd(kStartTimeout);
    absl::StatusOr<int> status = (*chatctl)->WaitForExit(kStopTimeout);
    if (!ended.ok() || !status.ok() || *status != 0) {
      report_.CannotStart("chatctl health failed: " + (*chatctl)->StderrTail());
      return 0;
    }
    return MillisBetween((*chatctl)->spawned_at(), *ended);
  }

  std::vector<std::string> PeerArgv(const std::string& name) const {
    return {Bin("chat-peer"),          "--name",   name,          "--registry",
            registry_target_,          "--listen", "127.0.0.1:0", "--data-dir",
            (dir_ / "peers").string(), "--json"};
  }

  // Rounds of: a greeter until it answers (the baseline), chatctl health,
  // a peer until it is registered and ready; then a peer and a greeter left
  // idle, for their memory.
  bool Startup() {
    std::error_code error;
    std::filesystem::create_directories(dir_ / "peers", error);
    const std::string run = RandomHex(3);
    std::vector<double> greeter_ms, chatctl_ms, peer_ms, ratio_greeter,
        ratio_chatctl;
    for (int round = 1; round <= options_.startup_rounds; ++round) {
      const double greeter = GreeterStartMs();
      if (greeter == 0) return false;
      const double chatctl = ChatctlHealthMs();
      if (chatctl == 0) return false;
      ChildLine ready;
      std::unique_ptr<ChildProcess> peer =
          StartProcess(PeerArgv(absl::StrCat("bench-peer-", run, "-", round)),
                       "\"event\":\"ready\"", /*on_stderr=*/false, &ready);
      if (peer == nullptr) return false;
      const double peer_start = MillisBetween(peer->spawned_at(), ready.at);
      StopProcess(*peer, "chat-peer");
      greeter_ms.push_back(greeter);
      chatctl_ms.push_back(chatctl);
      peer_ms.push_back(peer_start);
      ratio_greeter.push_back(peer_start / greeter);
      ratio_chatctl.push_back(peer_start / chatctl);
    }
    const bool met = SpreadOf(peer_ms).max <= kReadyTargetMs;
    const std::vector<std::pair<std::string, const std::vector<double>*>> rows =
        {{"chat-greeter", &greeter_ms},
         {"chatctl-health", &chatctl_ms},
         {"chat-peer", &peer_ms}};
    const std::vector<std::string> until = {"answers a Greet", "has exited",
                                            "prints ready (registered)"};
    for (size_t i = 0; i < rows.size(); ++i) {
      const Spread s = SpreadOf(*rows[i].second);
      std::string json = absl::StrCat(
          "{\"kind\":\"startup\",\"process\":", JsonQuote(rows[i].first),
          ",\"until\":", JsonQuote(until[i]),
          ",\"rounds\":", rows[i].second->size(), ",\"ms\":", SpreadJson(s, 1));
      std::string text = absl::StrFormat(
          "startup %-14s ms min %6.1f median %6.1f max %6.1f  (spawn until "
          "it %s)",
          rows[i].first, s.min, s.median, s.max, until[i]);
      if (rows[i].first == "chat-peer") {
        absl::StrAppend(&json, ",\"target_ms\":", Fixed(kReadyTargetMs, 0),
                        ",\"met\":", met ? "true" : "false");
        absl::StrAppend(
            &text, absl::StrFormat("  target max <= %.0f ms: %s",
                                   kReadyTargetMs, met ? "met" : "MISSED"));
      }
      report_.Emit(json + "}", text);
    }
    for (const auto& [baseline, ratios] :
         {std::make_pair(std::string("chat-greeter"), &ratio_greeter),
          std::make_pair(std::string("chatctl-health"), &ratio_chatctl)}) {
      const Spread s = SpreadOf(*ratios);
      report_.Emit(
          absl::StrCat("{\"kind\":\"startup_ratio\",\"process\":\"chat-peer\","
                       "\"baseline\":",
                       JsonQuote(baseline), ",\"ratio\":", SpreadJson(s, 2),
                       "}"),
          absl::StrFormat("ratio   chat-peer / %-14s min %5.2f median %5.2f "
                          "max %5.2f  (same round)",
                          baseline, s.min, s.median, s.max));
    }

    // Idle memory: a peer and, for reference, a greeter, both idle together.
    std::unique_ptr<ChildProcess> peer =
        StartProcess(PeerArgv(absl::StrCat("bench-peer-", run, "-idle")),
                     "\"event\":\"ready\"", /*on_stderr=*/false, nullptr);
    if (peer == nullptr) return false;
    std::unique_ptr<ChildProcess> greeter =
        StartProcess({Bin("chat-greeter"), "--listen", "127.0.0.1:0"},
                     "start: serving", /*on_stderr=*/true, nullptr);
    if (greeter == nullptr) return false;
    absl::StatusOr<ProcessMemory> peer_memory = IdleMemory(*peer);
    absl::StatusOr<ProcessMemory> greeter_memory = greeter->Memory();
    if (!peer_memory.ok() || !greeter_memory.ok()) {
      return report_.Failed("a process died while idle: " + peer->StderrTail() +
                            " " + greeter->StderrTail());
    }
    // The peer watches the registry, so its memory depends on the names in
    // it: the row carries that count.
    EmitMemory("chat-peer", "idle", static_cast<int>(names_.size()),
               *peer_memory, kPeerTargetMb);
    EmitMemory("chat-greeter", "idle", 0, *greeter_memory, 0);
    StopProcess(*peer, "chat-peer");
    StopProcess(*greeter, "chat-greeter");
    return true;
  }

  // The peak resolve throughput in a closed loop, then an open loop at
  // overload_factor x that rate with a short deadline per call.
  void Overload() {
    double peak = 0;
    int peak_concurrency = 0;
    for (int concurrency : options_.peak_concurrency) {
      const ResolveRun run = RunResolve(channels_, concurrency, names_);
      const LoadResult& r = run.result;
      const double rate = run.calls_per_s;
      const LatencySummary latency = Summarize(r.latencies_us);
      report_.Emit(
          absl::StrCat(
              "{\"kind\":\"overload_peak\",\"concurrency\":", concurrency,
              ",\"calls\":", r.calls, ",\"errors\":", r.errors,
              ",\"error_codes\":", ErrorCountsJson(r.error_counts),
              ",\"calls_per_s\":", Fixed(rate, 1), ",\"p50_us\":",
              latency.p50_us, ",\"p99_us\":", latency.p99_us, "}"),
          absl::StrFormat("peak    resolve closed loop conc %4d  %9.0f "
                          "calls/s  p50 %6d us  p99 %6d us  errors: %s",
                          concurrency, rate, latency.p50_us, latency.p99_us,
                          ErrorCountsText(r.error_counts)));
      if (r.errors > 0) {
        report_.Failed(absl::StrCat("resolve failed below overload: ",
                                    ErrorCountsText(r.error_counts)));
      }
      if (rate > peak) {
        peak = rate;
        peak_concurrency = concurrency;
      }
    }
    if (peak <= 0) {
      report_.Failed("no resolve succeeded; cannot size the overload");
      return;
    }
    for (int connections : options_.overload_connections) {
      absl::StatusOr<Channels> channels =
          NewChannels(registry_target_, connections);
      if (!channels.ok()) {
        report_.Failed(std::string(channels.status().message()));
        return;
      }
      OverloadOver(*channels, peak, peak_concurrency);
    }
  }

  // The open loop at overload_factor x `peak` over `channels` (fresh
  // connections: the registry meets them as new clients).
  void OverloadOver(const Channels& channels, double peak,
                    int peak_concurrency) {
    const int connections = static_cast<int>(channels.size());
    OpenLoopOptions open;
    open.rate = peak * options_.overload_factor;
    const double deadline_s =
        std::chrono::duration<double>(options_.call_deadline).count();
    // Each call ends by its deadline, so about rate x deadline are in flight
    // at worst; twice that leaves room for the client's own delays.
    open.slots =
        static_cast<int>(std::clamp(std::ceil(open.rate * deadline_s * 2) + 64,
                                    64.0, static_cast<double>(kMaxSlots)));
    open.warmup = options_.warmup;
    open.duration = options_.duration;
    std::unique_ptr<Workload> resolve = NewResolveWorkload(
        channels, open.slots, names_, options_.call_deadline);
    // VmHWM of this overload alone, not of the fill or an earlier overload.
    const absl::Status reset = registry_->ResetPeakMemory();
    if (!reset.ok()) report_.Note(std::string(reset.message()));
    const CpuMeter cpu(registry_->pid());
    const OpenLoopResult r = RunOpenLoop(*resolve, open);
    const auto [registry_cores, bench_cores] = cpu.Cores();
    const std::string per_second = absl::StrJoin(r.ok_per_second, ",");

    int64_t violations = 0;
    std::map<std::string, int64_t> violating;
    for (const auto& [reason, count] : r.load.error_counts) {
      const std::string& code = reason;  // C++17 lambdas cannot capture it.
      const bool allowed = std::any_of(
          std::begin(kAllowedUnderOverload), std::end(kAllowedUnderOverload),
          [&code](grpc::StatusCode c) { return CodeName(c) == code; });
      if (!allowed) {
        violations += count;
        violating[reason] = count;
      }
    }
    const bool alive = registry_->Running();
    const bool answers = alive && AnswersAfterwards();
    const double seconds = r.load.seconds;
    const double offered =
        seconds > 0 ? static_cast<double>(r.started) / seconds : 0;
    const double goodput =
        seconds > 0 ? static_cast<double>(r.load.calls) / seconds : 0;
    const double ratio = goodput / peak;
    const double offered_share = open.rate > 0 ? offered / open.rate : 0;
    const bool judged = offered_share >= kOfferedShareJudged;
    const LatencySummary latency = Summarize(r.load.latencies_us);
    absl::StatusOr<ProcessMemory> memory = registry_->Memory();
    const double hwm = memory.ok() ? memory->hwm_mb : 0;
    const bool met = judged && alive && answers && violations == 0 &&
                     ratio >= kOverloadTargetRatio && hwm <= kRegistryTargetMb;
    const std::string verdict =
        met      ? "met"
        : judged ? "MISSED"
                 : absl::StrFormat(
                       "NOT JUDGED (chat-bench offered only %.2fx of the rate "
                       "asked; at least %.2fx is needed to judge the server)",
                       offered_share, kOfferedShareJudged);
    report_.Emit(
        absl::StrCat(
            "{\"kind\":\"overload\",\"peak_calls_per_s\":", Fixed(peak, 1),
            ",\"peak_concurrency\":", peak_concurrency, ",\"connections\":",
            connections, ",\"factor\":", Fixed(options_.overload_factor, 2),
            ",\"deadline_ms\":", options_.call_deadline.count(),
            ",\"target_rate\":", Fixed(open.rate, 1), ",\"offered_per_s\":",
            Fixed(offered, 1), ",\"offered_share\":", Fixed(offered_share, 3),
            ",\"judged\":", judged ? "true" : "false",
            ",\"skipped\":", r.skipped, ",\"slots\":", open.slots,
            ",\"ok_calls\":", r.load.calls, ",\"ok_per_s\":", Fixed(goodput, 1),
            ",\"ratio_to_peak\":", Fixed(ratio, 3),
            ",\"errors\":", r.load.errors,
            ",\"error_codes\":", ErrorCountsJson(r.load.error_counts),
            ",\"violations\":", violations,
            ",\"violation_codes\":", ErrorCountsJson(violating),
            ",\"p50_us\":", latency.p50_us, ",\"p99_us\":", latency.p99_us,
            ",\"registry_alive\":", alive ? "true" : "false",
            ",\"answers_after\":", answers ? "true" : "false",
            ",\"registry_hwm_mb\":", Fixed(hwm, 1),
            ",\"registry_cpu_cores\":", Fixed(registry_cores, 2),
            ",\"bench_cpu_cores\":", Fixed(bench_cores, 2),
            ",\"ok_per_second\":[", per_second, "]",
            ",\"target_ratio\":", Fixed(kOverloadTargetRatio, 2),
            ",\"met\":", met ? "true" : "false", "}"),
        absl::StrFormat(
            "overload resolve open loop at %.2fx peak (%.0f/s of peak %.0f/s "
            "at conc %d), %d connections, deadline %d ms, %d slots\n"
            "overload offered %.0f/s = %.2fx of the rate asked (%d not sent: "
            "no free slot), ok %.0f/s "
            "= %.2fx peak, p50 %d us, p99 %d us; ok per second: %s; cpu: "
            "registry %.2f, chat-bench %.2f cores (warm-up and drain "
            "included)\n"
            "overload errors: %s; violations (not RESOURCE_EXHAUSTED/"
            "UNAVAILABLE/DEADLINE_EXCEEDED): %d; registry alive: %s, answers "
            "after: %s, "
            "VmHWM %.1f MB during this overload\n"
            "overload target (alive, only allowed errors, ok >= %.2fx peak, "
            "VmHWM <= %.0f MB): %s",
            options_.overload_factor, open.rate, peak, peak_concurrency,
            connections, options_.call_deadline.count(), open.slots, offered,
            offered_share, r.skipped, goodput, ratio, latency.p50_us,
            latency.p99_us, per_second, registry_cores, bench_cores,
            ErrorCountsText(r.load.error_counts), violations,
            alive ? "yes" : "NO", answers ? "yes" : "NO", hwm,
            kOverloadTargetRatio, kRegistryTargetMb, verdict));
    if (violations > 0) {
      report_.Failed(
          "the overload saw errors other than RESOURCE_EXHAUSTED/"
          "UNAVAILABLE/DEADLINE_EXCEEDED: " +
          ErrorCountsText(violating));
    }
    if (!alive)
      report_.Failed("chat-registry died: " + registry_->StderrTail());
    if (alive && !answers) report_.Failed("chat-registry stopped answering");
  }

  // One Resolve after the overload, on a fresh connection: the registry
  // must still serve.
  bool AnswersAfterwards() {
    auto stub = registry::v1::Registry::NewStub(grpc::CreateChannel(
        registry_target_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + Millis(5000));
    registry::v1::ResolveRequest request;
    request.set_name(names_.front());
    registry::v1::ResolveResponse response;
    return stub->Resolve(&context, request, &response).ok();
  }

  const BenchOptions& options_;
  RunReport report_;
  const std::string bin_dir_;
  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> registry_;
  std::string registry_target_;
  double registry_ready_ms_ = 0;
  Channels channels_;
  std::vector<std::string> names_;
};

}  // namespace

int RunSystemBench(const BenchOptions& options, std::ostream& out,
                   std::ostream& err) {
  SystemBench bench(options, out, err);
  return bench.Run();
}

}  // namespace chat::bench
