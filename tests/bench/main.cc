// chat-bench: a closed-loop load generator for the registry, the peers and
// the greeter, run against servers it starts in this process. Parses
// options, then RunBench() does the work.

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/program.h"
#include "tests/bench/bench.h"
#ifdef CHAT_BENCH_ETCD
#include "tests/bench/cluster_bench.h"
#endif

namespace po = boost::program_options;

namespace {

// Seconds as given on the command line (may be fractional) -> Millis.
bool ToMillis(double seconds, bool allow_zero, chat::Millis* out) {
  if (!std::isfinite(seconds) || seconds < 0 || (seconds == 0 && !allow_zero) ||
      seconds > 24 * 3600) {
    return false;
  }
  *out = chat::Millis(static_cast<int64_t>(std::llround(seconds * 1000)));
  return true;
}

int Usage(const std::string& message) {
  std::cerr << "chat-bench: " << message << " (see chat-bench --help)\n";
  return chat::kExitUsage;
}

int Run(const po::variables_map& vm) {
  chat::bench::BenchOptions options;
  auto scenarios =
      chat::bench::ParseScenarios(vm["scenario"].as<std::string>());
  if (!scenarios.ok()) return Usage(std::string(scenarios.status().message()));
  options.scenarios = *scenarios;
  auto concurrency =
      chat::bench::ParseIntList(vm["concurrency"].as<std::string>(), 1, 1024);
  if (!concurrency.ok()) {
    return Usage(
        absl::StrCat("--concurrency: ", concurrency.status().message()));
  }
  options.concurrency = *concurrency;
  if (!ToMillis(vm["duration"].as<double>(), false, &options.duration)) {
    return Usage("--duration must be more than 0 seconds (at most a day)");
  }
  if (!ToMillis(vm["warmup"].as<double>(), true, &options.warmup)) {
    return Usage("--warmup must be 0 or more seconds (at most a day)");
  }
  options.connections = vm["connections"].as<int>();
  if (options.connections < 1 || options.connections > 256) {
    return Usage("--connections must be from 1 to 256");
  }
  options.names = vm["names"].as<int>();
  options.group_members = vm["group-members"].as<int>();
  if (options.group_members < 2 || options.group_members > 64) {
    return Usage("--group-members must be from 2 to 64 (a group's most)");
  }
  options.group_apart = vm.count("group-apart") > 0;
  const std::string peer_sync = vm["peer-sync"].as<std::string>();
  if (peer_sync != "full" && peer_sync != "normal") {
    return Usage("--peer-sync must be full or normal");
  }
  options.peer_sync_full = peer_sync == "full";
  if (vm.count("tls")) options.tls_dir = vm["tls"].as<std::string>();
  options.registry_store = vm["registry-store"].as<std::string>();
  if (options.registry_store != "sqlite" && options.registry_store != "etcd") {
    return Usage("--registry-store must be sqlite or etcd");
  }
  if (options.names < 1 || options.names > 10000000) {
    return Usage("--names must be from 1 to 10000000");
  }
  options.json = vm["json"].as<bool>();
  options.compare = vm["compare"].as<bool>();
  options.rounds = vm["rounds"].as<int>();
  if (options.compare && (options.rounds < 3 || options.rounds > 1000)) {
    return Usage("--rounds must be from 3 to 1000");
  }
  if (vm.count("system")) {
    auto measures =
        chat::bench::ParseSystemMeasures(vm["system"].as<std::string>());
    if (!measures.ok()) {
      return Usage(absl::StrCat("--system: ", measures.status().message()));
    }
    options.system = *measures;
  }
  if (vm.count("cluster")) {
#ifdef CHAT_BENCH_ETCD
    auto measures =
        chat::bench::ParseClusterMeasures(vm["cluster"].as<std::string>());
    if (!measures.ok()) {
      return Usage(absl::StrCat("--cluster: ", measures.status().message()));
    }
    options.cluster = *measures;
#else
    return Usage("--cluster: built without etcd (golang-etcd-server-dev)");
#endif
  }
  options.watchers = vm["watchers"].as<int>();
  if (options.watchers < 1 || options.watchers > 100000) {
    return Usage("--watchers must be from 1 to 100000");
  }
  options.changes = vm["changes"].as<int>();
  if (options.changes < 2 || options.changes > 1000000) {
    return Usage("--changes must be from 2 to 1000000");
  }
  if (!options.cluster.empty() &&
      (options.rounds < 1 || options.rounds > 1000)) {
    return Usage("--rounds must be from 1 to 1000");
  }
  if (vm.count("bin-dir")) options.bin_dir = vm["bin-dir"].as<std::string>();
  options.startup_rounds = vm["startup-rounds"].as<int>();
  if (options.startup_rounds < 1 || options.startup_rounds > 1000) {
    return Usage("--startup-rounds must be from 1 to 1000");
  }
  if (!ToMillis(vm["idle"].as<double>(), true, &options.idle)) {
    return Usage("--idle must be 0 or more seconds (at most a day)");
  }
  auto peak = chat::bench::ParseIntList(
      vm["peak-concurrency"].as<std::string>(), 1, 1024);
  if (!peak.ok()) {
    return Usage(absl::StrCat("--peak-concurrency: ", peak.status().message()));
  }
  options.peak_concurrency = *peak;
  auto overload_connections = chat::bench::ParseIntList(
      vm["overload-connections"].as<std::string>(), 1, 256);
  if (!overload_connections.ok()) {
    return Usage(absl::StrCat("--overload-connections: ",
                              overload_connections.status().message()));
  }
  options.overload_connections = *overload_connections;
  for (auto [name, cpus] : {std::pair<const char*, std::vector<int>*>{
                                "driver-cpus", &options.driver_cpus},
                            {"server-cpus", &options.server_cpus}}) {
    const std::string list = vm[name].as<std::string>();
    if (list.empty()) continue;
    auto parsed = chat::bench::ParseIntList(list, 0, CPU_SETSIZE - 1);
    if (!parsed.ok()) {
      return Usage(absl::StrCat("--", name, ": ", parsed.status().message()));
    }
    *cpus = *parsed;
  }
  if (!options.driver_cpus.empty()) {
    // Before any thread starts: gRPC's threads inherit it.
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : options.driver_cpus) CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      return Usage(absl::StrCat("--driver-cpus: sched_setaffinity: ",
                                std::strerror(errno)));
    }
  }
  options.server_cgroup = vm["server-cgroup"].as<std::string>();
  if (!options.server_cgroup.empty() &&
      access((options.server_cgroup + "/cgroup.procs").c_str(), W_OK) != 0) {
    return Usage(absl::StrCat("--server-cgroup: cannot write ",
                              options.server_cgroup,
                              "/cgroup.procs: ", std::strerror(errno)));
  }
  options.overload_factor = vm["overload-factor"].as<double>();
  if (!std::isfinite(options.overload_factor) ||
      options.overload_factor < 0.1 || options.overload_factor > 100) {
    return Usage("--overload-factor must be from 0.1 to 100");
  }
  const int deadline_ms = vm["deadline-ms"].as<int>();
  if (deadline_ms < 1 || deadline_ms > 60000) {
    return Usage("--deadline-ms must be from 1 to 60000");
  }
  options.call_deadline = chat::Millis(deadline_ms);

  // The servers log a line per registration to stderr, as the real ones
  // do; keep the cost of writing it, but send it to --server-log, and keep
  // the real stderr for our own messages.
  const std::string server_log = vm["server-log"].as<std::string>();
  const int log_fd =
      open(server_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Usage("cannot open --server-log " + server_log);
  const int saved_stderr = dup(STDERR_FILENO);
  std::ofstream err;
  if (saved_stderr >= 0) {
    err.open("/proc/self/fd/" + std::to_string(saved_stderr), std::ios::app);
  }
  if (!err.is_open() || dup2(log_fd, STDERR_FILENO) < 0) {
    close(log_fd);
    return chat::bench::RunBench(options, std::cout, std::cerr);
  }
  close(log_fd);
  return chat::bench::RunBench(options, std::cout, err);
}

}  // namespace

int main(int argc, char** argv) {
  // The lab's servers run in this process, so it starts as the real binaries
  // do (RunProgram: without Debian's Abseil checking every lock order at run
  // time; with it on, greet cost ~12% more CPU per call and send ~5%, so the
  // ratios measured a build nobody runs), but keeps the default signal
  // actions and process limits.
  chat::ProgramStart start;
  start.block_termination_signals = false;
  po::options_description& options = start.options;
  options.add_options()(
      "scenario", po::value<std::string>()->default_value("greet"),
      "what to measure, a comma list or `all`: greet (GreetService/Greet, "
      "the baseline), resolve (Resolve of existing names), register "
      "(Register of a fresh name, kept for an hour, so none expires during "
      "the run: a peer taking its name, one RPC), register-floor (register's "
      "request "
      "to a server that only checks its proof and keeps the name as one "
      "row: the floor under any registry that binds names to keys), "
      "register-cycle (Register + "
      "Unregister of a fresh name, in one call each), register-v1 "
      "(register-cycle as older clients do it: Challenge first), "
      "keepalive (lease renewals), "
      "send (SendMessage straight to a peer, each message sealed for its key "
      "by a name bound to the bench's key), send-durable (Peer::Send until "
      "delivered, sealed by the sending peer), send-floor (send's message to "
      "a server that only opens it and keeps it as one row: the floor under "
      "any receiver), mixed (90% resolve, 5% register, 5% keepalive), "
      "group-send (Peer::Send to a group of --group-members peers until "
      "every copy is delivered; with --compare and send-durable, each copy "
      "is also compared with one direct durable send of the same round); "
      "where built with etcd: etcd-put (etcd's own Put) and etcd-range "
      "(etcd's serializable Range), on an etcd it starts on loopback")(
      "concurrency", po::value<std::string>()->default_value("1"),
      "calls in flight at once; a comma list (1,64) runs each")(
      "duration", po::value<double>()->default_value(5),
      "measured seconds per run")("warmup",
                                  po::value<double>()->default_value(1),
                                  "unmeasured seconds before each run")(
      "connections", po::value<int>()->default_value(1),
      "TCP connections per server; callers are spread over them")(
      "names", po::value<int>()->default_value(1000),
      "static names filled in for resolve, and leases for keepalive")(
      "group-members", po::value<int>()->default_value(8),
      "group-send: the group's members, the sending peer included, from 2 "
      "to 64 (documented: 8 and 64); every member is a real peer in this "
      "process with its own file, server and registry streams")(
      "group-apart",
      "group-send: the members beyond the sending and the receiving peer "
      "run as chat-peer processes (from --bin-dir, on --server-cpus), so "
      "that the sending process's CPU per copy is its own")(
      "registry-store", po::value<std::string>()->default_value("sqlite"),
      "where the bench's registry keeps its names: sqlite (a file in a "
      "scratch directory) or etcd (chat-registry --store etcd, on a "
      "one-member etcd the bench starts on loopback; the same one etcd-put "
      "and etcd-range use)")(
      "peer-sync", po::value<std::string>()->default_value("full"),
      "send, send-durable, send-floor, group-send: the peers' (and the "
      "floor's) --sync "
      "(full: an fsync per commit)")(
      "tls", po::value<std::string>(),
      "DIR made by `scripts/make-certs DIR --peer "
      "localhost,localhost,127.0.0.1`: every server of the lab serves TLS "
      "with localhost.crt, every call verifies with ca.crt")(
      "json", po::bool_switch()->default_value(false),
      "print one JSON object per line instead of a table")(
      "compare", po::bool_switch()->default_value(false),
      "run greet and the scenarios alternately, --rounds times, and print "
      "each scenario's throughput and p50 ratio to greet (min/median/max)")(
      "rounds", po::value<int>()->default_value(3),
      "rounds of --compare (at least 3)")(
      "server-log", po::value<std::string>()->default_value("/dev/null"),
      "file that gets the in-process servers' log lines (appended)")(
      "system", po::value<std::string>(),
      "instead of the scenarios, measure the real binaries as child "
      "processes, a comma list or `all`: memory (chat-registry's RSS idle and "
      "with --names leases registered over gRPC), startup (chat-peer spawn "
      "until ready vs chat-greeter until it answers and chatctl health, "
      "--startup-rounds times; idle chat-peer RSS), overload (peak resolve "
      "rate over --peak-concurrency, then an open loop at --overload-factor x "
      "it with --deadline-ms per call)")(
      "cluster", po::value<std::string>(),
      "instead of the scenarios, measure registries over etcd (real "
      "chat-registry binaries, two on a one-member etcd the bench starts on "
      "loopback, and one on SQLite as the baseline), a comma list or `all`: "
      "watch-fanout (--watchers Watch streams, over both etcd registries or "
      "the SQLite one; --changes Register/Unregister at the first registry, "
      "one at a time, split over --rounds alternated rounds; the delay until "
      "each watcher reads each change, target p99 <= 100 ms on etcd), "
      "mailbox (Deposit + Listen + Ack as a closed loop at each "
      "--concurrency for --duration, on SQLite, on etcd, and on etcd across "
      "the two registries, alternated --rounds times, with ratios to "
      "SQLite)")("watchers", po::value<int>()->default_value(1000),
                 "--cluster watch-fanout: Watch streams per backend")(
      "changes", po::value<int>()->default_value(200),
      "--cluster watch-fanout: measured changes per backend")(
      "bin-dir", po::value<std::string>(),
      "--system, --cluster: where chat-registry, chat-peer, chat-greeter and "
      "chatctl "
      "are (default: chat-bench's own directory)")(
      "startup-rounds", po::value<int>()->default_value(10),
      "--system startup: starts of each binary")(
      "idle", po::value<double>()->default_value(2),
      "--system: seconds a process idles before its RSS is read")(
      "peak-concurrency", po::value<std::string>()->default_value("1,4,16,64"),
      "--system overload: closed-loop concurrencies tried for the peak")(
      "overload-connections", po::value<std::string>()->default_value("1,4,8"),
      "--system overload: the overload is driven once over each of these "
      "numbers of connections")(
      "overload-factor", po::value<double>()->default_value(2),
      "--system overload: offered rate as a multiple of the peak")(
      "deadline-ms", po::value<int>()->default_value(100),
      "--system overload: deadline of each call of the overload")(
      "driver-cpus", po::value<std::string>()->default_value(""),
      "CPUs chat-bench runs on, a comma list (0 or 0,1); default: any")(
      "server-cpus", po::value<std::string>()->default_value(""),
      "--system, --group-apart: CPUs the binaries started run on, a comma "
      "list; default: "
      "any. Apart from --driver-cpus, the overload measures the registry, "
      "not a load generator taking its cores")(
      "server-cgroup", po::value<std::string>()->default_value(""),
      "--system: a cgroup directory the binaries started join (its "
      "cgroup.procs), e.g. one with a CPU quota below one core so that the "
      "driver can offer twice what the registry serves; default: none");
  chat::CommandLine& command_line = start.command_line;
  command_line.program = "chat-bench";
  command_line.synopsis = "chat-bench [OPTIONS]";
  command_line.description =
      "Closed-loop load generator: starts a greeter, a registry (SQLite in a "
      "scratch directory) and two peers in this process on 127.0.0.1, then "
      "keeps --concurrency calls in flight for --duration seconds and prints "
      "throughput (calls/s) and latency percentiles per scenario.";
  command_line.epilog =
      "Exit status: 0 when every call succeeded, 1 when a server (or with "
      "--system a binary) could not start, 2 for a usage error, 3 when some "
      "calls failed (counted by status code on stderr; with --system also: "
      "a registration failed, the overload saw an error other than "
      "RESOURCE_EXHAUSTED/DEADLINE_EXCEEDED, or the registry died). Targets "
      "missed are reported, never an exit status.";
  return chat::RunProgram(argc, argv, start, Run);
}
