#include "tests/bench/bench.h"

#include <sched.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/json.h"
#include "tests/bench/driver.h"
#include "tests/bench/lab.h"
#include "tests/bench/run_report.h"
#ifdef CHAT_BENCH_ETCD
#include "tests/bench/child.h"
#include "tests/bench/cluster_bench.h"
#include "tests/bench/etcd_workloads.h"
#include "tests/testing/etcd_cluster.h"
#endif
#include "tests/bench/system.h"
#include "tests/bench/workloads.h"

namespace chat::bench {
namespace {

// The CPUs this process may run on (its affinity mask: --driver-cpus), at
// least 1.
int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

constexpr char kBaseline[] = "greet";
// What a group's copy is judged against: one direct message, sent and
// delivered the same way.
constexpr char kGroupScenario[] = "group-send";
constexpr char kDirectScenario[] = "send-durable";

bool Wants(const BenchOptions& options,
           std::initializer_list<const char*> any) {
  for (const std::string& scenario : options.scenarios) {
    for (const char* name : any) {
      if (scenario == name) return true;
    }
  }
  return false;
}

// The channels every run shares, one set per server.
struct Connections {
  Channels greeter;
  Channels registry;
  Channels receiver;
  Channels floor;
  Channels register_floor;
  Channels etcd;
  int etcd_keys = 0;
};

std::unique_ptr<Workload> NewWorkload(const std::string& scenario,
                                      int concurrency, Lab& lab,
                                      const Connections& connections) {
  if (scenario == "greet") {
    return NewGreetWorkload(connections.greeter, concurrency);
  }
  if (scenario == "resolve") {
    return NewResolveWorkload(connections.registry, concurrency,
                              lab.static_names());
  }
  // Kept longer than the run: a name that expired inside a later round
  // would charge its expiry to whatever that round measures.
  if (scenario == "register") {
    return NewRegisterWorkload(connections.registry, concurrency,
                               RegisterCall::kRegister, kLabLeaseTtl);
  }
  if (scenario == "register-floor") {
    return NewRegisterWorkload(connections.register_floor, concurrency,
                               RegisterCall::kRegister, kLabLeaseTtl);
  }
  if (scenario == "register-cycle") {
    return NewRegisterWorkload(connections.registry, concurrency,
                               RegisterCall::kCycle);
  }
  if (scenario == "register-v1") {
    return NewRegisterWorkload(connections.registry, concurrency,
                               RegisterCall::kChallengeCycle);
  }
  if (scenario == "keepalive") {
    return NewKeepAliveWorkload(connections.registry, concurrency,
                                lab.leases());
  }
  if (scenario == "mixed") {
    return NewMixedWorkload(connections.registry, concurrency,
                            lab.static_names(), lab.leases());
  }
  if (scenario == "send") {
    return NewSendWorkload(connections.receiver, concurrency,
                           lab.direct_identity(), lab.direct_name(),
                           lab.receiver_name(), lab.receiver_key());
  }
#ifdef CHAT_BENCH_ETCD
  if (scenario == "etcd-put") {
    return NewEtcdPutWorkload(connections.etcd, concurrency);
  }
  if (scenario == "etcd-range") {
    return NewEtcdRangeWorkload(connections.etcd, concurrency,
                                connections.etcd_keys);
  }
#endif
  if (scenario == "send-floor") {
    return NewSendWorkload(connections.floor, concurrency,
                           lab.direct_identity(), lab.direct_name(),
                           lab.floor()->name(), lab.floor()->key());
  }
  if (scenario == "group-send") {
    return NewGroupSendWorkload(lab.sender(), lab.send_results(),
                                lab.group_target(), lab.group_copies());
  }
  return NewDurableSendWorkload(lab.sender(), lab.send_results(),
                                lab.receiver_name());
}

class Report {
 public:
  Report(const BenchOptions& options, std::ostream& out)
      : options_(options), out_(out) {}

  void Note(const std::string& text) {
    if (!options_.json) out_ << "# " << text << "\n";
  }

  void Fill(const FillReport& fill) {
    const double delta = fill.rss_after_mb - fill.rss_before_mb;
    if (options_.json) {
      out_ << absl::StrCat("{\"kind\":\"fill\",\"static_names\":",
                           fill.static_names, ",\"leases\":", fill.leases,
                           ",\"seconds\":", Fixed(fill.seconds, 3),
                           ",\"rss_before_mb\":", Fixed(fill.rss_before_mb, 1),
                           ",\"rss_after_mb\":", Fixed(fill.rss_after_mb, 1),
                           ",\"rss_delta_mb\":", Fixed(delta, 1), "}")
           << "\n";
    } else {
      out_ << absl::StrFormat(
          "# registry filled with %d static names and %d leases in %.2f s\n"
          "rss_delta_mb %.1f  (process rss %.1f MB after the fill: registry, "
          "greeter and the bench's clients)\n",
          fill.static_names, fill.leases, fill.seconds, delta,
          fill.rss_after_mb);
    }
    out_ << std::flush;
  }

  void Group(const GroupReport& group) {
    if (options_.json) {
      out_ << absl::StrCat("{\"kind\":\"group\",\"members\":", group.members,
                           ",\"apart\":", group.apart ? "true" : "false",
                           ",\"seconds\":", Fixed(group.seconds, 3),
                           ",\"threads_before\":", group.threads_before,
                           ",\"threads_after\":", group.threads_after,
                           ",\"rss_before_mb\":", Fixed(group.rss_before_mb, 1),
                           ",\"rss_after_mb\":", Fixed(group.rss_after_mb, 1),
                           "}")
           << "\n";
    } else {
      out_ << absl::StrFormat(
          "# group-send: a group of %d (the sending peer, the receiver and "
          "%d more peers %s), made and its first message "
          "delivered to all in %.2f s; process threads %d -> %d, rss %.1f "
          "-> %.1f MB\n",
          group.members, group.members - 2,
          group.apart ? "as chat-peer processes" : "in this process",
          group.seconds, group.threads_before, group.threads_after,
          group.rss_before_mb, group.rss_after_mb);
    }
    out_ << std::flush;
  }

  void Header() {
    if (options_.json) return;
    out_ << absl::StrFormat("%-14s %5s %5s %9s %7s %10s %8s %8s %8s %8s %9s\n",
                            "scenario", "round", "conc", "calls", "errors",
                            "calls/s", "p50 us", "p90 us", "p99 us", "max us",
                            "cpu us");
  }

  void Row(const ScenarioResult& r) {
    if (options_.json) {
      out_ << ResultJson(r) << "\n" << std::flush;
      return;
    }
    out_ << absl::StrFormat(
                "%-14s %5s %5d %9d %7d %10.0f %8d %8d %8d %8d %9.0f\n",
                r.scenario, r.round == 0 ? "-" : absl::StrCat(r.round),
                r.concurrency, r.calls, r.errors, r.calls_per_second,
                r.latency.p50_us, r.latency.p90_us, r.latency.p99_us,
                r.latency.max_us, r.cpu_us_per_call + r.others_cpu_us_per_call)
         << std::flush;
  }

  void Errors(const ScenarioResult& r, std::ostream& err) {
    if (r.errors == 0) return;
    err << "chat-bench: " << r.scenario << " at concurrency " << r.concurrency
        << " had errors: " << ErrorCountsText(r.error_counts) << "\n";
  }

  void Ratios(const std::vector<ScenarioResult>& results) {
    std::vector<std::pair<std::string, int>> keys;
    for (const ScenarioResult& r : results) {
      if (r.scenario == kBaseline) continue;
      std::pair<std::string, int> key(r.scenario, r.concurrency);
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        keys.push_back(key);
      }
    }
    if (!options_.json) {
      out_ << absl::StrFormat(
          "\n# ratio to greet in the same round, over %d rounds: throughput "
          "(calls/s, higher is better) and p50 latency (lower is better)\n",
          options_.rounds);
      out_ << absl::StrFormat("%-14s %5s %8s %8s %8s   %8s %8s %8s\n",
                              "scenario", "conc", "tput min", "median", "max",
                              "p50 min", "median", "max");
    }
    for (const auto& [scenario, concurrency] : keys) {
      std::vector<double> throughput;
      std::vector<double> p50;
      for (const ScenarioResult& r : results) {
        if (r.scenario != scenario || r.concurrency != concurrency) continue;
        const ScenarioResult* base = Baseline(results, r);
        if (base == nullptr) continue;
        if (base->calls_per_second > 0) {
          throughput.push_back(r.calls_per_second / base->calls_per_second);
        }
        if (base->latency.p50_us > 0) {
          p50.push_back(static_cast<double>(r.latency.p50_us) /
                        static_cast<double>(base->latency.p50_us));
        }
      }
      const Spread t = SpreadOf(throughput);
      const Spread p = SpreadOf(p50);
      if (options_.json) {
        out_ << RatioJson(scenario, kBaseline, concurrency, throughput.size(),
                          t, p)
             << "\n";
      } else {
        out_ << absl::StrFormat(
            "%-14s %5d %8.2f %8.2f %8.2f   %8.2f %8.2f %8.2f\n", scenario,
            concurrency, t.min, t.median, t.max, p.min, p.median, p.max);
      }
    }
    CopyRatios(results, keys);
    out_ << std::flush;
  }

  // group-send per copy against send-durable in the same round, where both
  // ran.
  void CopyRatios(const std::vector<ScenarioResult>& results,
                  const std::vector<std::pair<std::string, int>>& keys) {
    bool header = false;
    for (const auto& [scenario, concurrency] : keys) {
      if (scenario != kGroupScenario) continue;
      CopyRatioRounds rounds;
      for (const ScenarioResult& r : results) {
        if (r.scenario != kGroupScenario || r.concurrency != concurrency) {
          continue;
        }
        const ScenarioResult* direct = Find(results, kDirectScenario, r);
        if (direct == nullptr) continue;
        rounds.Add(r, *direct);
      }
      if (rounds.throughput.empty()) continue;
      if (options_.json) {
        const Spread t = SpreadOf(rounds.throughput);
        const Spread c = SpreadOf(rounds.cost);
        const Spread p = SpreadOf(rounds.p50);
        const Spread cpu = SpreadOf(rounds.cpu);
        const Spread sender = SpreadOf(rounds.sender_cpu);
        const Spread floor = SpreadOf(rounds.cpu_floor);
        out_ << CopyRatioJson(concurrency, rounds.throughput.size(),
                              rounds.copies, t, c, p, floor, cpu,
                              rounds.sender_cpu.empty() ? nullptr : &sender)
             << "\n";
        continue;
      }
      if (!header) {
        out_ << absl::StrFormat(
            "\n# group-send against send-durable in the same round, over %d "
            "rounds, median (min-max): copies delivered/s over direct "
            "messages delivered/s; what a copy costs in direct durable sends "
            "(time, and CPU of every process); a group message's p50 over "
            "send-durable's, and the least it could be here (its CPU over "
            "the %d usable cores); with --group-apart, the sending "
            "process's CPU per copy (its one member's share taken out) in "
            "direct sends' CPU\n",
            options_.rounds, UsableCores());
        out_ << absl::StrFormat("%-14s %5s %6s %18s %18s %18s %18s %18s %18s\n",
                                "scenario", "conc", "copies", "copy tput",
                                "copy cost", "copy cpu", "p50 ratio",
                                "p50 cpu floor", "sender cpu/copy");
        header = true;
      }
      out_ << absl::StrFormat(
          "%-14s %5d %6d %18s %18s %18s %18s %18s %18s\n", scenario,
          concurrency, rounds.copies, SpreadText(rounds.throughput),
          SpreadText(rounds.cost), SpreadText(rounds.cpu),
          SpreadText(rounds.p50), SpreadText(rounds.cpu_floor),
          SpreadText(rounds.sender_cpu));
    }
  }

 private:
  // The per-round ratios of group-send to send-durable.
  struct CopyRatioRounds {
    std::vector<double> throughput;  // Copies/s over direct messages/s.
    std::vector<double> cost;        // The inverse.
    std::vector<double> p50;         // Group message p50 over direct p50.
    std::vector<double> cpu;         // All CPU per copy over per message.
    // The sending process's CPU per copy (its in-process member's share,
    // as much as an apart member's, taken out) over a direct message's
    // CPU; only when the other members ran apart.
    std::vector<double> sender_cpu;
    // The p50 ratio no schedule could beat here: a group message's CPU (of
    // every process) spread over every core this machine lets us use,
    // over send-durable's p50.
    std::vector<double> cpu_floor;
    int copies = 0;

    void Add(const ScenarioResult& group, const ScenarioResult& direct) {
      if (direct.calls_per_second <= 0 || group.calls_per_second <= 0) return;
      copies = group.copies;
      const double per_copy = group.calls_per_second * group.copies;
      throughput.push_back(per_copy / direct.calls_per_second);
      cost.push_back(direct.calls_per_second / per_copy);
      if (direct.latency.p50_us > 0) {
        p50.push_back(static_cast<double>(group.latency.p50_us) /
                      static_cast<double>(direct.latency.p50_us));
        cpu_floor.push_back(
            (group.cpu_us_per_call + group.others_cpu_us_per_call) /
            UsableCores() / static_cast<double>(direct.latency.p50_us));
      }
      // A direct durable send runs in this process, sender and receiver:
      // what apart members use meanwhile (renewals, watches) is not its.
      const double direct_cpu = direct.cpu_us_per_call;
      if (direct_cpu <= 0 || group.copies <= 0) return;
      cpu.push_back((group.cpu_us_per_call + group.others_cpu_us_per_call) /
                    group.copies / direct_cpu);
      const int apart = group.copies - 1;
      if (group.others_cpu_us_per_call > 0 && apart > 0) {
        const double member_share = group.others_cpu_us_per_call / apart;
        sender_cpu.push_back((group.cpu_us_per_call - member_share) /
                             group.copies / direct_cpu);
      }
    }
  };

  // "median (min-max)"; "-" when there is none.
  static std::string SpreadText(const std::vector<double>& values) {
    if (values.empty()) return "-";
    const Spread spread = SpreadOf(values);
    return absl::StrFormat("%.2f (%.2f-%.2f)", spread.median, spread.min,
                           spread.max);
  }

  static const ScenarioResult* Baseline(
      const std::vector<ScenarioResult>& results, const ScenarioResult& of) {
    return Find(results, kBaseline, of);
  }

  // The result of `scenario` in the round and at the concurrency of `of`.
  static const ScenarioResult* Find(const std::vector<ScenarioResult>& results,
                                    const std::string& scenario,
                                    const ScenarioResult& of) {
    for (const ScenarioResult& r : results) {
      if (r.scenario == scenario && r.round == of.round &&
          r.concurrency == of.concurrency) {
        return &r;
      }
    }
    return nullptr;
  }

  const BenchOptions& options_;
  std::ostream& out_;
};

}  // namespace

const std::vector<std::string>& AllScenarios() {
  static const auto* const kAll = new std::vector<std::string>{
      "greet",          "resolve",     "register",  "register-floor",
      "register-cycle", "register-v1", "keepalive", "send",
      "send-durable",   "send-floor",  "mixed",     "group-send",
#ifdef CHAT_BENCH_ETCD
      "etcd-put",       "etcd-range",
#endif
  };
  return *kAll;
}

absl::StatusOr<std::vector<std::string>> ParseChoices(
    const std::string& list, const std::vector<std::string>& all,
    const std::string& what) {
  if (list == "all") return all;
  std::vector<std::string> chosen;
  for (const std::string& name :
       std::vector<std::string>(absl::StrSplit(list, ','))) {
    if (std::find(all.begin(), all.end(), name) == all.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown ", what, " \"", name, "\"; choose from all, ",
                       absl::StrJoin(all, ", ")));
    }
    if (std::find(chosen.begin(), chosen.end(), name) == chosen.end()) {
      chosen.push_back(name);
    }
  }
  return chosen;
}

absl::StatusOr<std::vector<std::string>> ParseScenarios(
    const std::string& list) {
  return ParseChoices(list, AllScenarios(), "scenario");
}

absl::StatusOr<std::vector<std::string>> ParseSystemMeasures(
    const std::string& list) {
  static const auto* const kAll =
      new std::vector<std::string>{"memory", "startup", "overload"};
  return ParseChoices(list, *kAll, "measurement");
}

absl::StatusOr<std::vector<int>> ParseIntList(const std::string& list, int min,
                                              int max) {
  std::vector<int> values;
  for (const std::string& item :
       std::vector<std::string>(absl::StrSplit(list, ','))) {
    int value = 0;
    if (!absl::SimpleAtoi(item, &value) || value < min || value > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", item, "\" is not a whole number from ", min, " to ", max));
    }
    values.push_back(value);
  }
  return values;
}

std::string ErrorCountsJson(const std::map<std::string, int64_t>& counts) {
  std::string json;
  for (const auto& [reason, count] : counts) {
    absl::StrAppend(&json, json.empty() ? "" : ",", JsonQuote(reason), ":",
                    count);
  }
  return absl::StrCat("{", json, "}");
}

std::string ErrorCountsText(const std::map<std::string, int64_t>& counts) {
  if (counts.empty()) return "none";
  std::vector<std::string> parts;
  for (const auto& [reason, count] : counts) {
    parts.push_back(absl::StrCat(reason, " x", count));
  }
  return absl::StrJoin(parts, ", ");
}

ScenarioResult MeasureClosedLoop(Workload& workload,
                                 const std::string& scenario, int round,
                                 int concurrency, const BenchOptions& options,
                                 CpuClock cpu_clock) {
  LoadOptions load;
  load.cpu_clock = std::move(cpu_clock);
  load.concurrency = concurrency;
  load.warmup = options.warmup;
  load.duration = options.duration;
  LoadResult loaded = RunClosedLoop(workload, load);
  ScenarioResult result;
  result.scenario = scenario;
  result.round = round;
  result.concurrency = concurrency;
  result.connections = options.connections;
  result.calls = loaded.calls;
  result.errors = loaded.errors;
  result.error_counts = std::move(loaded.error_counts);
  result.seconds = loaded.seconds;
  result.calls_per_second =
      loaded.seconds > 0 ? static_cast<double>(loaded.calls) / loaded.seconds
                         : 0;
  result.latency = Summarize(loaded.latencies_us);
  if (loaded.calls > 0) {
    result.cpu_us_per_call =
        loaded.cpu.own * 1e6 / static_cast<double>(loaded.calls);
    result.others_cpu_us_per_call =
        loaded.cpu.others * 1e6 / static_cast<double>(loaded.calls);
  }
  return result;
}

std::string RatioJson(const std::string& scenario, const std::string& baseline,
                      int concurrency, size_t rounds, const Spread& throughput,
                      const Spread& p50) {
  return absl::StrCat("{\"kind\":\"ratio\",\"scenario\":", JsonQuote(scenario),
                      ",\"baseline\":", JsonQuote(baseline),
                      ",\"concurrency\":", concurrency, ",\"rounds\":", rounds,
                      ",\"throughput_ratio\":", SpreadJson(throughput, 3),
                      ",\"p50_ratio\":", SpreadJson(p50, 3), "}");
}

std::string CopyRatioJson(int concurrency, size_t rounds, int copies,
                          const Spread& copy_throughput,
                          const Spread& copy_cost, const Spread& p50,
                          const Spread& p50_cpu_floor, const Spread& copy_cpu,
                          const Spread* sender_cpu) {
  std::string sender;
  if (sender_cpu != nullptr) {
    sender =
        absl::StrCat(",\"sender_cpu_per_copy\":", SpreadJson(*sender_cpu, 3));
  }
  return absl::StrCat(
      "{\"kind\":\"copy_ratio\",\"scenario\":", JsonQuote(kGroupScenario),
      ",\"baseline\":", JsonQuote(kDirectScenario),
      ",\"concurrency\":", concurrency, ",\"rounds\":", rounds,
      ",\"copies\":", copies,
      ",\"copy_throughput_ratio\":", SpreadJson(copy_throughput, 3),
      ",\"copy_cost\":", SpreadJson(copy_cost, 3),
      ",\"p50_ratio\":", SpreadJson(p50, 3),
      ",\"p50_cpu_floor\":", SpreadJson(p50_cpu_floor, 3),
      ",\"copy_cpu\":", SpreadJson(copy_cpu, 3), sender, "}");
}

std::string ResultJson(const ScenarioResult& r) {
  std::string copies;
  if (r.copies > 0) {
    copies = absl::StrCat(",\"copies\":", r.copies, ",\"copies_per_s\":",
                          Fixed(r.calls_per_second * r.copies, 1));
  }
  return absl::StrCat(
      "{\"kind\":\"result\",\"scenario\":", JsonQuote(r.scenario),
      ",\"round\":", r.round, ",\"concurrency\":", r.concurrency,
      ",\"connections\":", r.connections, ",\"calls\":", r.calls,
      ",\"errors\":", r.errors,
      ",\"error_codes\":", ErrorCountsJson(r.error_counts),
      ",\"seconds\":", Fixed(r.seconds, 3),
      ",\"calls_per_s\":", Fixed(r.calls_per_second, 1),
      ",\"p50_us\":", r.latency.p50_us, ",\"p90_us\":", r.latency.p90_us,
      ",\"p99_us\":", r.latency.p99_us, ",\"max_us\":", r.latency.max_us,
      ",\"cpu_us_per_call\":", Fixed(r.cpu_us_per_call, 1),
      ",\"others_cpu_us_per_call\":", Fixed(r.others_cpu_us_per_call, 1),
      copies, "}");
}

int RunBench(const BenchOptions& options, std::ostream& out,
             std::ostream& err) {
  if (!options.cluster.empty()) {
#ifdef CHAT_BENCH_ETCD
    return RunClusterBench(options, out, err);
#else
    err << "chat-bench: built without etcd (golang-etcd-server-dev)\n";
    return kExitCannotStart;
#endif
  }
  if (!options.system.empty()) return RunSystemBench(options, out, err);
  LabOptions lab_options;
  lab_options.registry = Wants(
      options, {"resolve", "register", "register-cycle", "register-v1",
                "keepalive", "mixed", "send", "send-durable", "group-send"});
  if (Wants(options, {"resolve", "mixed"})) {
    lab_options.static_names = options.names;
  }
  if (Wants(options, {"keepalive", "mixed"})) {
    lab_options.leases = options.names;
  }
  lab_options.peers = Wants(options, {"send", "send-durable", "group-send"});
  if (Wants(options, {"group-send"})) {
    lab_options.group_members = options.group_members;
    lab_options.group_apart = options.group_apart;
    lab_options.bin_dir =
        options.bin_dir.empty() ? DefaultBinDir() : options.bin_dir;
    lab_options.member_cpus = options.server_cpus;
  }
  lab_options.floor = Wants(options, {"send-floor"});
  lab_options.register_floor = Wants(options, {"register-floor"});
  lab_options.peer_sync_full = options.peer_sync_full;
  lab_options.tls_dir = options.tls_dir;
#ifdef CHAT_BENCH_ETCD
  // etcd's own Put and Range, and the registry with --registry-store etcd,
  // on an etcd of its own (one member, data in a temporary directory on the
  // same disk as the peers' files), over plain TCP whatever --tls says.
  std::unique_ptr<testing::EtcdCluster> etcd;
  if (Wants(options, {"etcd-put", "etcd-range"}) ||
      (lab_options.registry && options.registry_store == "etcd")) {
    auto started = testing::EtcdCluster::Start();
    if (!started.ok()) {
      err << "chat-bench: cannot start etcd: " << started.status().message()
          << "\n";
      return kExitCannotStart;
    }
    etcd = *std::move(started);
    if (options.registry_store == "etcd") {
      lab_options.etcd_endpoints = etcd->ClientEndpoints();
    }
  }
#else
  if (options.registry_store == "etcd") {
    err << "chat-bench: built without etcd (golang-etcd-server-dev)\n";
    return kExitCannotStart;
  }
#endif
  absl::StatusOr<std::unique_ptr<Lab>> lab = Lab::Start(lab_options);
  if (!lab.ok()) {
    err << "chat-bench: cannot start the servers: " << lab.status().message()
        << "\n";
    return kExitCannotStart;
  }

  Connections connections;
  auto connect = [&](const std::string& target,
                     Channels* channels) -> absl::Status {
    absl::StatusOr<Channels> made =
        NewChannels(target, options.connections, (*lab)->credentials());
    if (!made.ok()) return made.status();
    *channels = *std::move(made);
    return absl::OkStatus();
  };
  absl::Status connected =
      connect((*lab)->greeter_target(), &connections.greeter);
  if (connected.ok() && lab_options.registry) {
    connected = connect((*lab)->registry_target(), &connections.registry);
  }
  if (connected.ok() && lab_options.peers) {
    connected = connect((*lab)->receiver_address(), &connections.receiver);
  }
  if (connected.ok() && lab_options.floor) {
    connected = connect((*lab)->floor()->target(), &connections.floor);
  }
  if (connected.ok() && lab_options.register_floor) {
    connected = connect((*lab)->register_floor()->target(),
                        &connections.register_floor);
  }
#ifdef CHAT_BENCH_ETCD
  if (connected.ok() && Wants(options, {"etcd-put", "etcd-range"})) {
    absl::StatusOr<Channels> made =
        NewChannels(etcd->ClientEndpoint(0), options.connections);
    connected = made.status();
    if (made.ok()) connections.etcd = *std::move(made);
    if (connected.ok() && Wants(options, {"etcd-range"})) {
      connections.etcd_keys = std::max(1, options.names);
      connected = FillEtcd(connections.etcd[0], connections.etcd_keys);
    }
  }
#endif
  if (!connected.ok()) {
    err << "chat-bench: " << connected.message() << "\n";
    return kExitCannotStart;
  }

  Report report(options, out);
  if (lab_options.static_names > 0 || lab_options.leases > 0) {
    report.Fill((*lab)->fill());
  }
  if (lab_options.registry && options.registry_store == "etcd") {
    report.Note(
        "registry: names in etcd (--registry-store etcd: chat-registry "
        "--store etcd on the bench's one-member etcd), mail in SQLite");
  }
  if (Wants(options, {"register"})) {
    report.Note(
        "register: one call = Register of a fresh name with its key's proof "
        "(chat-register-v2, dated), as a peer takes its name: one RPC, one "
        "durable write; the name is kept for an hour, so none expires during "
        "the run (register-cycle measures a name's end)");
  }
  if (Wants(options, {"register-cycle", "mixed"})) {
    report.Note(
        "register-cycle (and mixed's register): one call = Register of a "
        "fresh name with its key's proof (chat-register-v2, dated) + "
        "Unregister (two RPCs, two durable writes)");
  }
  if (Wants(options, {"register-v1"})) {
    report.Note(
        "register-v1: as older clients register: Challenge + Register with "
        "the challenge's proof + Unregister (three RPCs, two durable "
        "writes)");
  }
  if (Wants(options, {"send"})) {
    report.Note(absl::StrCat(
        "send: one call = a message sealed for the receiver's key (as a "
        "peer seals each one) + SendMessage straight to it, from ",
        (*lab)->direct_name(),
        ", a name bound to the bench's own key; "
        "unsequenced"));
  }
  if (Wants(options, {"etcd-put", "etcd-range"})) {
    report.Note(
        "etcd-put, etcd-range: etcd's own KV/Put (64 bytes, one key per "
        "caller) and serializable KV/Range of one of --names keys, on a "
        "one-member etcd the bench starts on loopback (plain TCP)");
  }
  if (Wants(options, {"send-floor"})) {
    report.Note(
        "send-floor: send's message to a server that only opens it and "
        "keeps it as one row (one table, no index), answered after the "
        "commit: the floor under any receiver");
  }
  if (Wants(options, {"register-floor"})) {
    report.Note(
        "register-floor: register's request to a server that only checks "
        "its proof and keeps the name as one row (one table keyed by the "
        "name), answered after the commit: the floor under any registry "
        "that binds names to keys");
  }
  if (Wants(options, {"send", "send-durable", "send-floor"})) {
    report.Note(absl::StrCat(
        "send, send-durable, send-floor: the receiver's inbox (and, for "
        "send-durable, the sender's outbox) on disk, synchronous=",
        options.peer_sync_full ? "FULL" : "NORMAL"));
  }
  if (Wants(options, {"group-send"})) {
    report.Note(absl::StrCat(
        "group-send: one call = Peer::Send to ", (*lab)->group_target(),
        " until each of its ", (*lab)->group_copies(),
        " copies (one per other member, each on that member's queue) is "
        "delivered; every peer's file synchronous=",
        options.peer_sync_full ? "FULL" : "NORMAL"));
    report.Group((*lab)->group_report());
  }
  report.Header();

  std::vector<ScenarioResult> results;
  bool failed = false;
  auto run = [&](const std::string& scenario, int concurrency, int round) {
    std::unique_ptr<Workload> workload =
        NewWorkload(scenario, concurrency, **lab, connections);
    ScenarioResult result = MeasureClosedLoop(
        *workload, scenario, round, concurrency, options, [&] {
          CpuTime cpu = (*lab)->Cpu();
#ifdef CHAT_BENCH_ETCD
          // etcd works for the call as much as the
          // registry does: its CPU is the call's too.
          if (etcd != nullptr && etcd->Running(0)) {
            cpu.others +=
                ReadCpuSeconds(std::to_string(etcd->Pid(0))).value_or(0);
          }
#endif
          return cpu;
        });
    if (scenario == kGroupScenario) result.copies = (*lab)->group_copies();
    report.Row(result);
    report.Errors(result, err);
    failed = failed || result.errors > 0;
    results.push_back(std::move(result));
  };

  for (int concurrency : options.concurrency) {
    if (!options.compare) {
      for (const std::string& scenario : options.scenarios) {
        run(scenario, concurrency, 0);
      }
      continue;
    }
    for (int round = 1; round <= options.rounds; ++round) {
      run(kBaseline, concurrency, round);
      for (const std::string& scenario : options.scenarios) {
        if (scenario != kBaseline) run(scenario, concurrency, round);
      }
    }
  }
  if (options.compare) report.Ratios(results);
  return failed ? kExitCallsFailed : 0;
}

}  // namespace chat::bench
