#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/random.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client/registry_client.h"
#include "tests/bench/child.h"
#include "tests/bench/cluster_measures.h"
#include "tests/bench/driver.h"
#include "tests/bench/stats.h"
#include "tests/bench/workloads.h"

namespace chat::bench {
namespace {

namespace v1 = registry::v1;
using registry::RegistryClient;

// How long every watcher may take to read one change; those that have not
// by then count as missed, and the bench goes on with the next change.
constexpr Millis kDeliveryLimit{10000};
// How long the watchers may take to open and read their snapshot.
constexpr Millis kOpenLimit{60000};
// Watch streams per connection: under the registry's default
// --max-streams-per-connection (20); real watchers are peers, one each.
constexpr int kWatchersPerConnection = 16;
// What is asked of the etcd backend: a change reaches 1,000 watchers over
// two registries within 100 ms at p99.
constexpr int64_t kFanoutTargetP99Us = 100000;

int64_t MicrosBetween(MonoTime from, MonoTime to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from)
      .count();
}

// The watchers of one backend: Watch streams of one prefix, each noting
// when it reads the change the bench waits for.
// Thread-safe: gRPC's threads call Saw() and Ended() while the bench's
// thread calls the rest. Close() (or the destructor) must run before the
// channels go.
class FanoutWatchers {
 public:
  explicit FanoutWatchers(std::string prefix) : prefix_(std::move(prefix)) {}
  ~FanoutWatchers() { Close(); }
  FanoutWatchers(const FanoutWatchers&) = delete;
  FanoutWatchers& operator=(const FanoutWatchers&) = delete;

  // Opens `count` streams, stream i on channels[i % channels.size()], and
  // waits until each has read its snapshot (SYNCED). kUnavailable when a
  // stream ends first, kDeadlineExceeded after kOpenLimit.
  absl::Status Open(const Channels& channels, int count) {
    for (const auto& channel : channels) {
      stubs_.push_back(v1::Registry::NewStub(channel));
    }
    {
      absl::MutexLock lock(&mu_);
      count_ = count;
    }
    for (int i = 0; i < count; ++i) {
      readers_.push_back(std::make_unique<Reader>(
          this, stubs_[i % stubs_.size()].get(), prefix_));
    }
    absl::MutexLock lock(&mu_);
    const bool all =
        mu_.AwaitWithTimeout(absl::Condition(this, &FanoutWatchers::AllSynced),
                             absl::FromChrono(kOpenLimit));
    if (ended_ > 0) {
      return absl::UnavailableError(absl::StrCat(
          ended_, " of ", count, " watch streams ended: ", first_error_));
    }
    if (!all) {
      return absl::DeadlineExceededError(
          absl::StrCat(synced_, " of ", count, " watch streams synced within ",
                       absl::FormatDuration(absl::FromChrono(kOpenLimit))));
    }
    return absl::OkStatus();
  }

  // From now on the watchers wait for an event of `type` about `name`,
  // whose write started at `start`.
  void Expect(const std::string& name, v1::WatchEvent::Type type,
              MonoTime start) {
    absl::MutexLock lock(&mu_);
    expected_name_ = name;
    expected_type_ = type;
    start_ = start;
    delivered_ = 0;
  }

  // Waits until every watcher read the expected change, or `limit` passed;
  // returns how many did.
  int WaitForDeliveries(Millis limit) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &FanoutWatchers::AllDelivered),
                         absl::FromChrono(limit));
    return delivered_;
  }

  // The delays (microseconds) read since the last call.
  std::vector<int64_t> TakeDelays() {
    absl::MutexLock lock(&mu_);
    return std::exchange(delays_, {});
  }

  // Watchers whose stream ended (each a change missed from then on).
  int ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

  // Cancels every stream and waits until each has ended.
  void Close() {
    for (auto& reader : readers_) reader->Cancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &FanoutWatchers::AllEnded));
    readers_.clear();
  }

 private:
  class Reader final : public grpc::ClientReadReactor<v1::WatchEvent> {
   public:
    Reader(FanoutWatchers* owner, v1::Registry::Stub* stub,
           const std::string& prefix)
        : owner_(owner) {
      request_.set_prefix(prefix);
      stub->async()->Watch(&context_, &request_, this);
      StartRead(&event_);
      StartCall();
    }

    void Cancel() { context_.TryCancel(); }

    void OnReadDone(bool ok) override {
      if (!ok) return;  // OnDone follows.
      owner_->Saw(event_, std::chrono::steady_clock::now());
      StartRead(&event_);
    }

    void OnDone(const grpc::Status& status) override { owner_->Ended(status); }

   private:
    FanoutWatchers* const owner_;  // Not owned; outlives this.
    grpc::ClientContext context_;
    v1::WatchRequest request_;
    v1::WatchEvent event_;
  };

  void Saw(const v1::WatchEvent& event, MonoTime at) {
    absl::MutexLock lock(&mu_);
    if (event.type() == v1::WatchEvent::SYNCED) {
      ++synced_;
      return;
    }
    if (event.type() != expected_type_ ||
        event.entry().name() != expected_name_) {
      return;
    }
    delays_.push_back(MicrosBetween(start_, at));
    ++delivered_;
  }

  void Ended(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (ended_++ == 0 && !status.ok()) {
      first_error_ = absl::StrCat(CodeName(status.error_code()), ": ",
                                  status.error_message());
    }
  }

  bool AllSynced() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return synced_ + ended_ >= count_;
  }
  bool AllDelivered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return delivered_ + ended_ >= count_;
  }
  bool AllEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_ >= count_;
  }

  const std::string prefix_;
  std::vector<std::unique_ptr<v1::Registry::Stub>> stubs_;
  std::vector<std::unique_ptr<Reader>> readers_;
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  int synced_ ABSL_GUARDED_BY(mu_) = 0;
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
  std::string expected_name_ ABSL_GUARDED_BY(mu_);
  v1::WatchEvent::Type expected_type_ ABSL_GUARDED_BY(mu_) =
      v1::WatchEvent::TYPE_UNSPECIFIED;
  MonoTime start_ ABSL_GUARDED_BY(mu_);
  int delivered_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> delays_ ABSL_GUARDED_BY(mu_);
};

// The results of one backend's changes.
struct FanoutTotals {
  std::string backend;
  int registries = 0;
  int changes = 0;
  int64_t deliveries = 0;
  int64_t missed = 0;
  std::vector<int64_t> delays_us;
  std::vector<int64_t> write_us;
  std::vector<int64_t> round_p99_us;
  double seconds = 0;         // Wall time of the measured changes.
  double driver_cpu = 0;      // chat-bench's CPU seconds meanwhile.
  double registries_cpu = 0;  // The registries' (and etcd's) meanwhile.
};

// One run of the measurement.
class WatchFanoutRun {
 public:
  explicit WatchFanoutRun(const ClusterBenchRun& bench) : bench_(bench) {}

  // Runs the measurement; once.
  void Run() {
    const std::string run = RandomHex(3);
    struct Backend {
      FanoutTotals totals;
      std::vector<std::string> labels;
      std::string prefix;
      std::unique_ptr<FanoutWatchers> watchers;
      std::unique_ptr<RegistryClient> writer;
      int serial = 0;
    };
    std::vector<Backend> backends(2);
    backends[0].totals.backend = "etcd";
    backends[0].labels = {"etcd-a", "etcd-b"};
    backends[1].totals.backend = "sqlite";
    backends[1].labels = {"sqlite"};
    const Identity identity = Identity::Generate();
    for (Backend& backend : backends) {
      backend.totals.registries = static_cast<int>(backend.labels.size());
      backend.prefix =
          absl::StrCat("fan-", run, "-", backend.totals.backend, "-");
      absl::StatusOr<std::unique_ptr<FanoutWatchers>> watchers =
          OpenWatchers(backend.labels, backend.prefix);
      if (!watchers.ok()) {
        bench_.report.Failed(
            absl::StrCat("watch-fanout: ", backend.totals.backend, ": ",
                         watchers.status().message()));
        return;
      }
      backend.watchers = *std::move(watchers);
      // Changes are made at the first registry; with two, half of the
      // watchers read them through the other one's etcd watch.
      const std::string& target = bench_.cluster.Target(backend.labels.front());
      backend.writer = std::make_unique<RegistryClient>(
          grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
          target, kClusterCallTimeout);
      // Two unmeasured changes: the first registration of a key and the
      // first event through each stream cost more than the rest.
      if (!Changes(*backend.writer, *backend.watchers, identity, backend.prefix,
                   2, &backend.serial, nullptr)) {
        return;
      }
    }
    bench_.report.Note(absl::StrCat(
        "watch-fanout: ", bench_.options.watchers,
        " Watch streams of one prefix per backend (etcd: half on each of two "
        "registries; sqlite: one registry), ",
        kWatchersPerConnection,
        " per connection; each change (Register or Unregister of a fresh "
        "name at the first registry, one at a time) waits for every watcher; "
        "delay = from the write's start until a watcher reads the event"));
    // Even numbers of changes per round: each name comes and goes.
    const int per_round = std::max(
        2, (bench_.options.changes / bench_.options.rounds + 1) / 2 * 2);
    for (int round = 1; round <= bench_.options.rounds; ++round) {
      for (Backend& backend : backends) {
        if (!Changes(*backend.writer, *backend.watchers, identity,
                     backend.prefix, per_round, &backend.serial,
                     &backend.totals)) {
          return;
        }
      }
    }
    for (Backend& backend : backends) {
      if (backend.watchers->ended() > 0) {
        bench_.report.Failed(absl::StrCat(
            "watch-fanout: ", backend.watchers->ended(), " watch streams of ",
            backend.totals.backend, " ended during the run"));
      }
      backend.watchers->Close();
      if (backend.totals.missed > 0) {
        bench_.report.Failed(absl::StrCat(
            "watch-fanout: ", backend.totals.backend, ": ",
            backend.totals.missed, " deliveries missed (not read within ",
            absl::FormatDuration(absl::FromChrono(kDeliveryLimit)), ")"));
      }
      EmitFanout(backend.totals);
    }
    const FanoutTotals& etcd = backends[0].totals;
    const FanoutTotals& sqlite = backends[1].totals;
    const LatencySummary e = Summarize(etcd.delays_us);
    const LatencySummary s = Summarize(sqlite.delays_us);
    auto ratio = [](int64_t a, int64_t b) {
      return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
    };
    bench_.report.Emit(
        absl::StrCat("{\"kind\":\"fanout_ratio\",\"backend\":\"etcd\","
                     "\"baseline\":\"sqlite\",\"p50_ratio\":",
                     Fixed(ratio(e.p50_us, s.p50_us), 2), ",\"p99_ratio\":",
                     Fixed(ratio(e.p99_us, s.p99_us), 2), "}"),
        absl::StrFormat("fanout  etcd / sqlite: p50 x%.2f, p99 x%.2f",
                        ratio(e.p50_us, s.p50_us), ratio(e.p99_us, s.p99_us)));
  }

 private:
  // Connections to `registry`, enough for `watchers` streams.
  absl::StatusOr<Channels> WatchChannels(const std::string& label,
                                         int watchers) {
    const int count = std::max(
        1, (watchers + kWatchersPerConnection - 1) / kWatchersPerConnection);
    return NewChannels(bench_.cluster.Target(label), count);
  }

  // One backend's watchers (streams i on registry labels[i % size]).
  absl::StatusOr<std::unique_ptr<FanoutWatchers>> OpenWatchers(
      const std::vector<std::string>& labels, const std::string& prefix) {
    Channels channels;
    const int per_registry =
        (bench_.options.watchers + static_cast<int>(labels.size()) - 1) /
        static_cast<int>(labels.size());
    std::vector<Channels> each;
    for (const std::string& label : labels) {
      absl::StatusOr<Channels> made = WatchChannels(label, per_registry);
      if (!made.ok()) return made.status();
      each.push_back(*std::move(made));
    }
    // Interleaved, so that stream i lands on registry i % labels.size().
    for (size_t i = 0; i < each.front().size(); ++i) {
      for (const Channels& of : each) {
        if (i < of.size()) channels.push_back(of[i]);
      }
    }
    watch_channels_.push_back(channels);
    auto watchers = std::make_unique<FanoutWatchers>(prefix);
    absl::Status opened = watchers->Open(channels, bench_.options.watchers);
    if (!opened.ok()) return opened;
    return watchers;
  }

  // `count` changes at `writer`, each waited for by every watcher.
  // Unmeasured when `totals` is null.
  bool Changes(RegistryClient& writer, FanoutWatchers& watchers,
               const Identity& identity, const std::string& prefix, int count,
               int* serial, FanoutTotals* totals) {
    const double driver_before = OwnCpuSeconds();
    const double servers_before = bench_.cluster.ServersCpu();
    const MonoTime began = std::chrono::steady_clock::now();
    std::string lease_id;
    std::vector<int64_t> round_delays;
    for (int i = 0; i < count; ++i) {
      // A fresh name registered, then the same name unregistered: each
      // change is one event of one name for every watcher.
      const bool put = i % 2 == 0;
      const std::string name = absl::StrCat(prefix, *serial / 2);
      ++*serial;
      const MonoTime start = std::chrono::steady_clock::now();
      watchers.Expect(name, put ? v1::WatchEvent::PUT : v1::WatchEvent::DELETE,
                      start);
      absl::Status written;
      if (put) {
        absl::StatusOr<registry::Lease> lease = writer.Register(
            registry::RegisterRequest(name, "127.0.0.1:9", kClusterLeaseTtl),
            &identity);
        written = lease.status();
        if (lease.ok()) lease_id = lease->lease_id;
      } else {
        written = writer.Unregister(name, lease_id);
      }
      const MonoTime written_at = std::chrono::steady_clock::now();
      if (!written.ok()) {
        bench_.report.Failed(
            absl::StrCat("watch-fanout: ", put ? "Register" : "Unregister",
                         " of ", name, ": ", written.message()));
        return false;
      }
      const int delivered = watchers.WaitForDeliveries(kDeliveryLimit);
      std::vector<int64_t> delays = watchers.TakeDelays();
      if (totals == nullptr) continue;
      totals->write_us.push_back(MicrosBetween(start, written_at));
      ++totals->changes;
      totals->deliveries += delivered;
      totals->missed += bench_.options.watchers - delivered;
      round_delays.insert(round_delays.end(), delays.begin(), delays.end());
    }
    if (totals == nullptr) return true;
    totals->seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began)
            .count();
    totals->driver_cpu += OwnCpuSeconds() - driver_before;
    totals->registries_cpu += bench_.cluster.ServersCpu() - servers_before;
    std::sort(round_delays.begin(), round_delays.end());
    totals->round_p99_us.push_back(Percentile(round_delays, 0.99));
    totals->delays_us.insert(totals->delays_us.end(), round_delays.begin(),
                             round_delays.end());
    return true;
  }

  void EmitFanout(FanoutTotals& t) {
    std::sort(t.delays_us.begin(), t.delays_us.end());
    std::sort(t.write_us.begin(), t.write_us.end());
    const LatencySummary d = Summarize(t.delays_us);
    const LatencySummary w = Summarize(t.write_us);
    const double driver_cores = t.seconds > 0 ? t.driver_cpu / t.seconds : 0;
    const double server_cores =
        t.seconds > 0 ? t.registries_cpu / t.seconds : 0;
    const bool judged = t.backend == "etcd";
    const bool met = d.p99_us <= kFanoutTargetP99Us;
    std::vector<std::string> rounds;
    for (int64_t p99 : t.round_p99_us) rounds.push_back(absl::StrCat(p99));
    std::string json = absl::StrCat(
        "{\"kind\":\"fanout\",\"backend\":", JsonQuote(t.backend),
        ",\"registries\":", t.registries,
        ",\"watchers\":", bench_.options.watchers, ",\"changes\":", t.changes,
        ",\"deliveries\":", t.deliveries, ",\"missed\":", t.missed,
        ",\"p50_us\":", d.p50_us, ",\"p90_us\":", d.p90_us,
        ",\"p99_us\":", d.p99_us, ",\"max_us\":", d.max_us,
        ",\"round_p99_us\":[", absl::StrJoin(rounds, ","),
        "],\"write_p50_us\":", w.p50_us, ",\"write_p99_us\":", w.p99_us,
        ",\"driver_cores\":", Fixed(driver_cores, 2),
        ",\"servers_cores\":", Fixed(server_cores, 2));
    std::string text = absl::StrFormat(
        "fanout  %-6s %d registr%s, %d watchers, %d changes, %d deliveries "
        "(%d missed): p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f (p99 per "
        "round: %s us); the write itself p50 %.1f ms, p99 %.1f; chat-bench "
        "used %.2f cores, registries+etcd %.2f",
        t.backend, t.registries, t.registries == 1 ? "y" : "ies",
        bench_.options.watchers, t.changes, t.deliveries, t.missed,
        d.p50_us / 1000.0, d.p90_us / 1000.0, d.p99_us / 1000.0,
        d.max_us / 1000.0, absl::StrJoin(rounds, " "), w.p50_us / 1000.0,
        w.p99_us / 1000.0, driver_cores, server_cores);
    if (judged) {
      absl::StrAppend(&json, ",\"target_p99_us\":", kFanoutTargetP99Us,
                      ",\"met\":", met ? "true" : "false");
      absl::StrAppend(&text, absl::StrFormat("; target p99 <= %d ms: %s",
                                             kFanoutTargetP99Us / 1000,
                                             met ? "met" : "MISSED"));
    }
    bench_.report.Emit(json + "}", text);
  }

  const ClusterBenchRun bench_;
  // Kept until the end: the watchers' streams run over them.
  std::vector<Channels> watch_channels_;
};

}  // namespace

void RunWatchFanout(const ClusterBenchRun& bench) {
  WatchFanoutRun(bench).Run();
}

}  // namespace chat::bench
