// chat-bench's runs and reports: which scenarios, how hard, how long, and
// the table or JSON lines that come out. main.cc only parses options into a
// BenchOptions and calls RunBench().

#ifndef CHAT_TESTS_BENCH_BENCH_H_
#define CHAT_TESTS_BENCH_BENCH_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "tests/bench/driver.h"
#include "tests/bench/stats.h"

namespace chat::bench {

// Every scenario, in the order `all` runs them; "greet" is the baseline.
const std::vector<std::string>& AllScenarios();

// "a,b" or "all" -> the names of `all` chosen, each once, in the order
// given ("all": in `all`'s order). kInvalidArgument naming an unknown one,
// called a `what` ("scenario").
absl::StatusOr<std::vector<std::string>> ParseChoices(
    const std::string& list, const std::vector<std::string>& all,
    const std::string& what);

// "resolve,send" or "all" -> the scenarios, each once, in the order given.
// kInvalidArgument naming an unknown scenario.
absl::StatusOr<std::vector<std::string>> ParseScenarios(
    const std::string& list);

// "memory,startup" or "all" -> the measurements of the real binaries.
// kInvalidArgument naming an unknown one.
absl::StatusOr<std::vector<std::string>> ParseSystemMeasures(
    const std::string& list);

// "1,64" -> {1, 64}. kInvalidArgument unless each is an integer in
// [min, max].
absl::StatusOr<std::vector<int>> ParseIntList(const std::string& list, int min,
                                              int max);

struct BenchOptions {
  std::vector<std::string> scenarios = {"greet"};
  std::vector<int> concurrency = {1};
  Millis duration{5000};
  Millis warmup{1000};
  int connections = 1;
  int names = 1000;  // Static entries (resolve) and leases (keepalive).
  bool peer_sync_full = true;  // send, send-durable: chat-peer --sync full.
  // group-send: the group's members, the sending peer included (2 to 64).
  int group_members = 8;
  // group-send: the members beyond the sending and the receiving peer run
  // as chat-peer processes (LabOptions::group_apart).
  bool group_apart = false;
  std::string tls_dir;  // --tls DIR: every lab server and client over TLS.
  // --registry-store: where the lab's registry keeps its names, "sqlite"
  // or "etcd" (on the etcd the bench starts on loopback).
  std::string registry_store = "sqlite";
  bool json = false;
  // Runs greet and the scenarios alternately `rounds` times and reports
  // each scenario's ratio to greet.
  bool compare = false;
  int rounds = 3;

  // Measurements of the real binaries, started as child processes (see
  // system.h); when not empty, the closed-loop scenarios do not run.
  std::vector<std::string> system;
  // Measurements of registries over etcd (see cluster_bench.h); when not
  // empty, neither the scenarios nor `system` run.
  std::vector<std::string> cluster;
  int watchers = 1000;  // watch-fanout: Watch streams per backend.
  int changes = 200;    // watch-fanout: measured changes per backend.
  std::string bin_dir;  // Where chat-registry & co. are; "": next to us.
  int startup_rounds = 10;
  Millis idle{2000};  // How long a process idles before its RSS is read.
  std::vector<int> peak_concurrency = {1, 4, 16, 64};
  double overload_factor = 2;
  Millis call_deadline{100};  // Of each call of the overload.
  // The overload is driven once over each of these numbers of connections
  // (the peak is measured over `connections`).
  std::vector<int> overload_connections = {1, 4, 8};
  // CPUs for chat-bench itself and for the binaries it starts with
  // --system (sched_setaffinity); empty: wherever the kernel likes. Apart,
  // the overload judges the registry, not a load generator fighting it for
  // the same cores.
  std::vector<int> driver_cpus;
  std::vector<int> server_cpus;
  // A cgroup directory the binaries started with --system join (e.g.
  // /sys/fs/cgroup/cpu/bench with cpu.cfs_quota_us set by the operator), so
  // that the server gets less than one core and a driver on one core can
  // offer it twice what it serves; "": none.
  std::string server_cgroup;
};

struct ScenarioResult {
  std::string scenario;
  int round = 0;  // 1-based with --compare; 0 otherwise.
  int concurrency = 1;
  int connections = 1;
  int64_t calls = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> error_counts;
  double seconds = 0;
  double calls_per_second = 0;
  LatencySummary latency;
  // group-send: the copies each call delivered (one per other member);
  // 0 for every other scenario.
  int copies = 0;
  // CPU (user + system) per successful call during the measured window:
  // of this process (driver and in-process servers alike), and of the
  // processes the lab started (group-send's members with --group-apart)
  // and of the etcd the bench started, if any (so that an etcd scenario's
  // CPU per call is all of it; group-send's per-member share assumes no
  // etcd).
  double cpu_us_per_call = 0;
  double others_cpu_us_per_call = 0;
};

// Exit codes beyond those of common/cli.h (0: done, 2: usage).
inline constexpr int kExitCannotStart = 1;  // A server could not start.
inline constexpr int kExitCallsFailed = 3;  // Some calls failed.

// Runs what `options` asks, printing to `out` as it goes (a table, or one
// JSON object per line with options.json) and problems to `err`. Returns
// 0, kExitCannotStart or kExitCallsFailed.
int RunBench(const BenchOptions& options, std::ostream& out, std::ostream& err);

// One result as a JSON object on one line ("kind": "result").
std::string ResultJson(const ScenarioResult& result);

// A scenario's ratios to its baseline over `rounds` rounds at `concurrency`
// (throughput: calls/s over the baseline's; p50: latency over the
// baseline's) as a JSON object on one line ("kind": "ratio").
std::string RatioJson(const std::string& scenario, const std::string& baseline,
                      int concurrency, size_t rounds, const Spread& throughput,
                      const Spread& p50);

// group-send against send-durable over `rounds` rounds at `concurrency`:
// per round, copies delivered per second (calls/s x `copies`) over
// send-durable's calls/s, and its inverse, what a copy costs in direct
// durable sends; a group message's p50 over send-durable's, and the least
// it could be on this machine (the CPU of a group message over the usable
// cores, over send-durable's p50); the CPU of every process per copy over
// send-durable's per message; and, when not null, the sending process's
// alone (--group-apart). As a JSON object on one line ("kind":
// "copy_ratio").
std::string CopyRatioJson(int concurrency, size_t rounds, int copies,
                          const Spread& copy_throughput,
                          const Spread& copy_cost, const Spread& p50,
                          const Spread& p50_cpu_floor, const Spread& copy_cpu,
                          const Spread* sender_cpu);

// {"UNAVAILABLE":2,...}: errors by reason, as a JSON object.
std::string ErrorCountsJson(const std::map<std::string, int64_t>& counts);

// "UNAVAILABLE x2, ...", or "none".
std::string ErrorCountsText(const std::map<std::string, int64_t>& counts);

class Workload;

// Runs `workload` as a closed loop (RunClosedLoop) of `concurrency` callers,
// options.warmup unmeasured then options.duration measured, and sums it up
// as the result of `scenario` in `round` over options.connections; its CPU
// per call as `cpu_clock` reads it (this process only when empty).
ScenarioResult MeasureClosedLoop(Workload& workload,
                                 const std::string& scenario, int round,
                                 int concurrency, const BenchOptions& options,
                                 CpuClock cpu_clock = nullptr);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_BENCH_H_
