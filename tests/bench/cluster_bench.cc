#include "tests/bench/cluster_bench.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/random.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client/registry_client.h"
#include "tests/bench/child.h"
#include "tests/bench/driver.h"
#include "tests/bench/lab.h"
#include "tests/bench/stats.h"
#include "tests/bench/workloads.h"
#include "tests/testing/etcd_cluster.h"

namespace chat::bench {
namespace {

namespace v1 = registry::v1;
using registry::RegistryClient;

constexpr Millis kStartTimeout{60000};
constexpr Millis kStopTimeout{30000};
constexpr Millis kCallTimeout{10000};
// How long every watcher may take to read one change; those that have not
// by then count as missed, and the bench goes on with the next change.
constexpr Millis kDeliveryLimit{10000};
// How long the watchers may take to open and read their snapshot.
constexpr Millis kOpenLimit{60000};
// Watch streams per connection: under the registry's default
// --max-streams-per-connection (20); real watchers are peers, one each.
constexpr int kWatchersPerConnection = 16;
// What issue 22 asks of the etcd backend: a change reaches 1,000 watchers
// over two registries within 100 ms at p99.
constexpr int64_t kFanoutTargetP99Us = 100000;
constexpr Millis kLeaseTtl{3600 * 1000};
constexpr char kBaselineMail[] = "mail-sqlite";

int64_t MicrosBetween(MonoTime from, MonoTime to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from)
      .count();
}

std::string Fixed(double value, int decimals) {
  return absl::StrFormat("%.*f", decimals, value);
}

std::string LoadAverage() {
  std::ifstream file("/proc/loadavg");
  std::string one, five, fifteen;
  file >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

// A chat-registry child process and where it serves.
struct RunningRegistry {
  std::string label;
  std::unique_ptr<ChildProcess> process;
  std::string target;
};

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

// One operation: Deposit of a fresh item for the caller's own recipient at
// one registry, the item read from the recipient's Listen stream at
// another (or the same), and its Ack there. Each caller's recipient holds
// a lease and keeps one Listen stream open for the whole run.
class MailRoundTripWorkload final : public Workload {
 public:
  struct Recipient {
    std::string name;
    std::string lease_id;
  };

  // `recipients[i]` is caller i's; deposits go over `deposit`, Listen and
  // Ack over `listen` (caller i on channel i % size of each).
  MailRoundTripWorkload(const Channels& deposit, const Channels& listen,
                        const std::vector<Recipient>& recipients)
      : callers_(recipients.size()) {
    for (const auto& channel : deposit) {
      deposit_stubs_.push_back(v1::Mailbox::NewStub(channel));
    }
    for (const auto& channel : listen) {
      listen_stubs_.push_back(v1::Mailbox::NewStub(channel));
    }
    for (size_t i = 0; i < recipients.size(); ++i) {
      Caller& c = callers_[i];
      c.recipient = recipients[i];
      c.deposit_stub = deposit_stubs_[i % deposit_stubs_.size()].get();
      c.listen_stub = listen_stubs_[i % listen_stubs_.size()].get();
      c.listener = std::make_unique<Listener>(this, static_cast<int>(i));
    }
  }

  ~MailRoundTripWorkload() override {
    for (Caller& c : callers_) c.listener->Cancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &MailRoundTripWorkload::AllEnded));
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = callers_[caller];
    {
      absl::MutexLock lock(&c.mu);
      c.id = NewUuidV7(absl::Now());
      c.done = std::move(done);
      c.deposited = false;
      c.acked = false;
      c.deposit_context = std::make_unique<grpc::ClientContext>();
      c.deposit_context->set_deadline(std::chrono::system_clock::now() +
                                      kCallTimeout);
      v1::MailItem* item = c.deposit_request.mutable_item();
      item->set_kind(v1::MailItem::MESSAGE);
      item->set_id(c.id);
      item->set_sender("mail-bench-sender");
      item->set_recipient(c.recipient.name);
      // About what a sealed chat message of ordinary length weighs.
      item->set_payload(std::string(200, 'm'));
    }
    c.deposit_stub->async()->Deposit(
        c.deposit_context.get(), &c.deposit_request, &c.deposit_response,
        [this, caller](const grpc::Status& status) {
          Caller& self = callers_[caller];
          if (!status.ok()) {
            Finish(self, CodeName(status.error_code()));
            return;
          }
          bool finished = false;
          {
            absl::MutexLock lock(&self.mu);
            self.deposited = true;
            finished = self.acked;
          }
          if (finished) Finish(self, "");
        });
  }

 private:
  class Listener final : public grpc::ClientReadReactor<v1::MailItem> {
   public:
    Listener(MailRoundTripWorkload* owner, int caller)
        : owner_(owner), caller_(caller) {
      const Caller& c = owner->callers_[caller];
      request_.set_name(c.recipient.name);
      request_.set_lease_id(c.recipient.lease_id);
      c.listen_stub->async()->Listen(&context_, &request_, this);
      StartRead(&item_);
      StartCall();
    }

    void Cancel() { context_.TryCancel(); }

    void OnReadDone(bool ok) override {
      if (!ok) return;  // OnDone follows.
      owner_->Arrived(caller_, item_);
      StartRead(&item_);
    }

    void OnDone(const grpc::Status& /*status*/) override {
      owner_->ListenerEnded();
    }

   private:
    MailRoundTripWorkload* const owner_;  // Not owned; outlives this.
    const int caller_;
    grpc::ClientContext context_;
    v1::ListenRequest request_;
    v1::MailItem item_;
  };

  struct Caller {
    Recipient recipient;
    v1::Mailbox::Stub* deposit_stub = nullptr;
    v1::Mailbox::Stub* listen_stub = nullptr;
    std::unique_ptr<Listener> listener;
    // One operation at a time per caller; the lock orders the deposit's
    // reply, the item's arrival and the Ack's reply, which come on
    // different threads.
    absl::Mutex mu;
    std::string id ABSL_GUARDED_BY(mu);
    DoneCallback done ABSL_GUARDED_BY(mu);
    bool deposited ABSL_GUARDED_BY(mu) = false;
    bool acked ABSL_GUARDED_BY(mu) = false;
    std::unique_ptr<grpc::ClientContext> deposit_context;
    v1::DepositRequest deposit_request;
    v1::DepositResponse deposit_response;
    std::unique_ptr<grpc::ClientContext> ack_context;
    v1::AckRequest ack_request;
    v1::AckResponse ack_response;
  };

  // The listener of `caller` read `item`: acknowledge it if it is the one
  // the caller waits for (an item of an operation that failed is left).
  void Arrived(int caller, const v1::MailItem& item) {
    Caller& c = callers_[caller];
    {
      absl::MutexLock lock(&c.mu);
      if (c.done == nullptr || item.id() != c.id) return;
      c.ack_context = std::make_unique<grpc::ClientContext>();
      c.ack_context->set_deadline(std::chrono::system_clock::now() +
                                  kCallTimeout);
      c.ack_request.Clear();
      c.ack_request.set_name(c.recipient.name);
      c.ack_request.set_lease_id(c.recipient.lease_id);
      c.ack_request.add_ids(item.id());
      c.ack_request.add_digests(item.digest());
    }
    c.listen_stub->async()->Ack(c.ack_context.get(), &c.ack_request,
                                &c.ack_response,
                                [this, caller](const grpc::Status& status) {
                                  Caller& self = callers_[caller];
                                  if (!status.ok()) {
                                    Finish(self, CodeName(status.error_code()));
                                    return;
                                  }
                                  bool finished = false;
                                  {
                                    absl::MutexLock lock(&self.mu);
                                    self.acked = true;
                                    finished = self.deposited;
                                  }
                                  if (finished) Finish(self, "");
                                });
  }

  // Ends the caller's operation once: its `done` may start the next one.
  static void Finish(Caller& c, const std::string& error) {
    DoneCallback done;
    {
      absl::MutexLock lock(&c.mu);
      done = std::exchange(c.done, nullptr);
    }
    if (done != nullptr) done(error);
  }

  void ListenerEnded() {
    absl::MutexLock lock(&mu_);
    ++listeners_ended_;
  }

  bool AllEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return listeners_ended_ >= static_cast<int>(callers_.size());
  }

  std::vector<std::unique_ptr<v1::Mailbox::Stub>> deposit_stubs_;
  std::vector<std::unique_ptr<v1::Mailbox::Stub>> listen_stubs_;
  std::vector<Caller> callers_;
  absl::Mutex mu_;
  int listeners_ended_ ABSL_GUARDED_BY(mu_) = 0;
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

class ClusterBench {
 public:
  ClusterBench(const BenchOptions& options, std::ostream& out,
               std::ostream& err)
      : options_(options),
        out_(out),
        err_(err),
        bin_dir_(options.bin_dir.empty() ? DefaultBinDir() : options.bin_dir) {}

  ~ClusterBench() {
    registries_.clear();  // Kills any still running, before etcd goes.
    etcd_.reset();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  int Run() {
    std::error_code error;
    dir_ = std::filesystem::temp_directory_path(error) /
           ("chat-bench-cluster-" + RandomHex(6));
    if (error || !std::filesystem::create_directories(dir_, error)) {
      return CannotStart(
          absl::StrCat("cannot create a scratch directory: ", error.message()));
    }
    Note(absl::StrCat("binaries from ", bin_dir_, "; all on 127.0.0.1; ",
                      std::thread::hardware_concurrency(),
                      " CPUs, load average ", LoadAverage()));
    absl::StatusOr<std::unique_ptr<testing::EtcdCluster>> etcd =
        testing::EtcdCluster::Start();
    if (!etcd.ok()) {
      return CannotStart(
          absl::StrCat("cannot start etcd: ", etcd.status().message()));
    }
    etcd_ = *std::move(etcd);
    etcd_pid_ = EtcdPid();
    const std::string prefix = absl::StrCat("/chat-bench/", RandomHex(6), "/");
    const std::string endpoints = absl::StrJoin(etcd_->ClientEndpoints(), ",");
    for (const char* label : {"etcd-a", "etcd-b"}) {
      if (!StartRegistry(label, {"--store", "etcd", "--etcd-endpoints",
                                 endpoints, "--etcd-prefix", prefix})) {
        return exit_code_;
      }
    }
    if (!StartRegistry("sqlite", {"--db", (dir_ / "registry.db").string()})) {
      return exit_code_;
    }
    Note(absl::StrCat("etcd 1 member on ", endpoints, " (pid ", etcd_pid_,
                      "); registries etcd-a and etcd-b share it (prefix ",
                      prefix, "), registry sqlite is the baseline"));
    if (Wants("watch-fanout")) WatchFanout();
    if (Wants("mailbox")) Mailbox();
    for (RunningRegistry& registry : registries_) {
      absl::StatusOr<int> status = registry.process->Stop(kStopTimeout);
      if (!status.ok() || *status != 0) {
        Failed(absl::StrCat(
            "registry ", registry.label,
            " did not stop cleanly: ", registry.process->StderrTail()));
      }
    }
    return exit_code_;
  }

 private:
  bool Wants(const char* measure) const {
    return std::find(options_.cluster.begin(), options_.cluster.end(),
                     measure) != options_.cluster.end();
  }

  void Note(const std::string& text) {
    if (!options_.json) out_ << "# " << text << "\n" << std::flush;
  }

  void Emit(const std::string& json, const std::string& text) {
    out_ << (options_.json ? json : text) << "\n" << std::flush;
  }

  int CannotStart(const std::string& message) {
    err_ << "chat-bench: " << message << "\n";
    exit_code_ = kExitCannotStart;
    return exit_code_;
  }

  void Failed(const std::string& message) {
    err_ << "chat-bench: " << message << "\n";
    if (exit_code_ == 0) exit_code_ = kExitCallsFailed;
  }

  // etcd's process id, for its CPU time: the one child of ours that runs
  // /usr/bin/etcd. 0 when not found.
  static pid_t EtcdPid() {
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc", error)) {
      pid_t pid = 0;
      const std::string name = entry.path().filename().string();
      if (!absl::SimpleAtoi(name, &pid)) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      std::getline(stat, line);
      // pid (comm) state ppid ...
      const size_t close = line.rfind(')');
      if (close == std::string::npos ||
          line.find("(etcd)") == std::string::npos) {
        continue;
      }
      std::vector<std::string> fields =
          absl::StrSplit(line.substr(close + 2), ' ');
      if (fields.size() > 1 && fields[1] == std::to_string(getpid())) {
        return pid;
      }
    }
    return 0;
  }

  // CPU seconds of every server: the registries and etcd.
  double ServersCpu() const {
    double total = 0;
    for (const RunningRegistry& registry : registries_) {
      total +=
          ReadCpuSeconds(std::to_string(registry.process->pid())).value_or(0);
    }
    if (etcd_pid_ > 0) {
      total += ReadCpuSeconds(std::to_string(etcd_pid_)).value_or(0);
    }
    return total;
  }

  bool StartRegistry(const std::string& label,
                     const std::vector<std::string>& store_args) {
    std::vector<std::string> argv = {
        (std::filesystem::path(bin_dir_) / "chat-registry").string(),
        "--listen", "127.0.0.1:0",
        // One token for all: registries of one etcd must agree on it.
        "--admin-token-file", (dir_ / "admin-token").string(), "--max-ttl",
        "3600",
        // Every watcher and listener of the bench comes from 127.0.0.1.
        "--max-watch-streams-per-client", "100000",
        "--max-listen-streams-per-client", "100000",
        // The bench's names share one key.
        "--max-names-per-key", "100000"};
    argv.insert(argv.end(), store_args.begin(), store_args.end());
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Spawn(argv, options_.server_cpus, options_.server_cgroup);
    if (!child.ok()) {
      CannotStart(absl::StrCat(argv[0], ": ", child.status().message()));
      return false;
    }
    absl::StatusOr<ChildLine> ready = (*child)->WaitForLine(
        "start: listening", /*stderr_stream=*/true, kStartTimeout);
    if (!ready.ok()) {
      CannotStart(
          absl::StrCat("registry ", label, ": ", ready.status().message()));
      return false;
    }
    const int port = PortInLine(ready->text);
    if (port == 0) {
      CannotStart("no port in the registry's line: " + ready->text);
      return false;
    }
    RunningRegistry registry;
    registry.label = label;
    registry.process = *std::move(child);
    registry.target = absl::StrCat("127.0.0.1:", port);
    Note(absl::StrCat("chat-registry ", label, " pid ", registry.process->pid(),
                      " on ", registry.target));
    registries_.push_back(std::move(registry));
    return true;
  }

  const RunningRegistry& Registry(const std::string& label) const {
    for (const RunningRegistry& registry : registries_) {
      if (registry.label == label) return registry;
    }
    return registries_.front();
  }

  // Connections to `registry`, enough for `watchers` streams.
  absl::StatusOr<Channels> WatchChannels(const std::string& label,
                                         int watchers) {
    const int count = std::max(
        1, (watchers + kWatchersPerConnection - 1) / kWatchersPerConnection);
    return NewChannels(Registry(label).target, count);
  }

  // One backend's watchers (streams i on registry labels[i % size]).
  absl::StatusOr<std::unique_ptr<FanoutWatchers>> OpenWatchers(
      const std::vector<std::string>& labels, const std::string& prefix) {
    Channels channels;
    const int per_registry =
        (options_.watchers + static_cast<int>(labels.size()) - 1) /
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
    absl::Status opened = watchers->Open(channels, options_.watchers);
    if (!opened.ok()) return opened;
    return watchers;
  }

  // `count` changes at `writer`, each waited for by every watcher.
  // Unmeasured when `totals` is null.
  bool Changes(RegistryClient& writer, FanoutWatchers& watchers,
               const Identity& identity, const std::string& prefix, int count,
               int* serial, FanoutTotals* totals) {
    const double driver_before = ReadCpuSeconds("self").value_or(0);
    const double servers_before = ServersCpu();
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
            registry::RegisterRequest(name, "127.0.0.1:9", kLeaseTtl),
            &identity);
        written = lease.status();
        if (lease.ok()) lease_id = lease->lease_id;
      } else {
        written = writer.Unregister(name, lease_id);
      }
      const MonoTime written_at = std::chrono::steady_clock::now();
      if (!written.ok()) {
        Failed(absl::StrCat("watch-fanout: ", put ? "Register" : "Unregister",
                            " of ", name, ": ", written.message()));
        return false;
      }
      const int delivered = watchers.WaitForDeliveries(kDeliveryLimit);
      std::vector<int64_t> delays = watchers.TakeDelays();
      if (totals == nullptr) continue;
      totals->write_us.push_back(MicrosBetween(start, written_at));
      ++totals->changes;
      totals->deliveries += delivered;
      totals->missed += options_.watchers - delivered;
      round_delays.insert(round_delays.end(), delays.begin(), delays.end());
    }
    if (totals == nullptr) return true;
    totals->seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began)
            .count();
    totals->driver_cpu += ReadCpuSeconds("self").value_or(0) - driver_before;
    totals->registries_cpu += ServersCpu() - servers_before;
    std::sort(round_delays.begin(), round_delays.end());
    totals->round_p99_us.push_back(Percentile(round_delays, 0.99));
    totals->delays_us.insert(totals->delays_us.end(), round_delays.begin(),
                             round_delays.end());
    return true;
  }

  void WatchFanout() {
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
        Failed(absl::StrCat("watch-fanout: ", backend.totals.backend, ": ",
                            watchers.status().message()));
        return;
      }
      backend.watchers = *std::move(watchers);
      // Changes are made at the first registry; with two, half of the
      // watchers read them through the other one's etcd watch.
      const std::string& target = Registry(backend.labels.front()).target;
      backend.writer = std::make_unique<RegistryClient>(
          grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
          target, kCallTimeout);
      // Two unmeasured changes: the first registration of a key and the
      // first event through each stream cost more than the rest.
      if (!Changes(*backend.writer, *backend.watchers, identity, backend.prefix,
                   2, &backend.serial, nullptr)) {
        return;
      }
    }
    Note(absl::StrCat(
        "watch-fanout: ", options_.watchers,
        " Watch streams of one prefix per backend (etcd: half on each of two "
        "registries; sqlite: one registry), ",
        kWatchersPerConnection,
        " per connection; each change (Register or Unregister of a fresh "
        "name at the first registry, one at a time) waits for every watcher; "
        "delay = from the write's start until a watcher reads the event"));
    // Even numbers of changes per round: each name comes and goes.
    const int per_round =
        std::max(2, (options_.changes / options_.rounds + 1) / 2 * 2);
    for (int round = 1; round <= options_.rounds; ++round) {
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
        Failed(absl::StrCat("watch-fanout: ", backend.watchers->ended(),
                            " watch streams of ", backend.totals.backend,
                            " ended during the run"));
      }
      backend.watchers->Close();
      if (backend.totals.missed > 0) {
        Failed(absl::StrCat(
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
    Emit(absl::StrCat("{\"kind\":\"fanout_ratio\",\"backend\":\"etcd\","
                      "\"baseline\":\"sqlite\",\"p50_ratio\":",
                      Fixed(ratio(e.p50_us, s.p50_us), 2), ",\"p99_ratio\":",
                      Fixed(ratio(e.p99_us, s.p99_us), 2), "}"),
         absl::StrFormat("fanout  etcd / sqlite: p50 x%.2f, p99 x%.2f",
                         ratio(e.p50_us, s.p50_us), ratio(e.p99_us, s.p99_us)));
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
        ",\"registries\":", t.registries, ",\"watchers\":", options_.watchers,
        ",\"changes\":", t.changes, ",\"deliveries\":", t.deliveries,
        ",\"missed\":", t.missed, ",\"p50_us\":", d.p50_us,
        ",\"p90_us\":", d.p90_us, ",\"p99_us\":", d.p99_us,
        ",\"max_us\":", d.max_us, ",\"round_p99_us\":[",
        absl::StrJoin(rounds, ","), "],\"write_p50_us\":", w.p50_us,
        ",\"write_p99_us\":", w.p99_us,
        ",\"driver_cores\":", Fixed(driver_cores, 2),
        ",\"servers_cores\":", Fixed(server_cores, 2));
    std::string text = absl::StrFormat(
        "fanout  %-6s %d registr%s, %d watchers, %d changes, %d deliveries "
        "(%d missed): p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f (p99 per "
        "round: %s us); the write itself p50 %.1f ms, p99 %.1f; chat-bench "
        "used %.2f cores, registries+etcd %.2f",
        t.backend, t.registries, t.registries == 1 ? "y" : "ies",
        options_.watchers, t.changes, t.deliveries, t.missed, d.p50_us / 1000.0,
        d.p90_us / 1000.0, d.p99_us / 1000.0, d.max_us / 1000.0,
        absl::StrJoin(rounds, " "), w.p50_us / 1000.0, w.p99_us / 1000.0,
        driver_cores, server_cores);
    if (judged) {
      absl::StrAppend(&json, ",\"target_p99_us\":", kFanoutTargetP99Us,
                      ",\"met\":", met ? "true" : "false");
      absl::StrAppend(&text, absl::StrFormat("; target p99 <= %d ms: %s",
                                             kFanoutTargetP99Us / 1000,
                                             met ? "met" : "MISSED"));
    }
    Emit(json + "}", text);
  }

  // Registers `count` recipients at `label`, each bound to `identity`.
  absl::StatusOr<std::vector<MailRoundTripWorkload::Recipient>> Recipients(
      const std::string& label, const std::string& prefix, int count,
      const Identity& identity) {
    const std::string& target = Registry(label).target;
    RegistryClient client(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), target,
        kCallTimeout);
    std::vector<MailRoundTripWorkload::Recipient> recipients;
    for (int i = 0; i < count; ++i) {
      const std::string name = absl::StrCat(prefix, i);
      absl::StatusOr<registry::Lease> lease = client.Register(
          registry::RegisterRequest(name, "127.0.0.1:9", kLeaseTtl), &identity);
      if (!lease.ok()) return lease.status();
      recipients.push_back({name, lease->lease_id});
    }
    return recipients;
  }

  void Mailbox() {
    struct Setup {
      std::string scenario;
      std::string deposit_at;
      std::string listen_at;
      Channels deposit;
      Channels listen;
      std::unique_ptr<MailRoundTripWorkload> workload;
    };
    std::vector<Setup> setups(3);
    setups[0] = {kBaselineMail, "sqlite", "sqlite", {}, {}, nullptr};
    setups[1] = {"mail-etcd", "etcd-a", "etcd-a", {}, {}, nullptr};
    setups[2] = {"mail-etcd-2reg", "etcd-a", "etcd-b", {}, {}, nullptr};
    const int callers = *std::max_element(options_.concurrency.begin(),
                                          options_.concurrency.end());
    const Identity identity = Identity::Generate();
    const std::string run = RandomHex(3);
    for (Setup& setup : setups) {
      absl::StatusOr<Channels> deposit =
          NewChannels(Registry(setup.deposit_at).target, options_.connections);
      absl::StatusOr<Channels> listen =
          NewChannels(Registry(setup.listen_at).target, options_.connections);
      absl::StatusOr<std::vector<MailRoundTripWorkload::Recipient>> recipients =
          Recipients(setup.listen_at,
                     absl::StrCat("mail-", run, "-", setup.scenario, "-"),
                     callers, identity);
      absl::Status ready = !deposit.ok()  ? deposit.status()
                           : !listen.ok() ? listen.status()
                                          : recipients.status();
      if (!ready.ok()) {
        Failed(
            absl::StrCat("mailbox: ", setup.scenario, ": ", ready.message()));
        return;
      }
      setup.deposit = *std::move(deposit);
      setup.listen = *std::move(listen);
      setup.workload = std::make_unique<MailRoundTripWorkload>(
          setup.deposit, setup.listen, *recipients);
    }
    Note(
        "mailbox: one call = Deposit of a 200-byte item for the caller's own "
        "recipient + the item read from the recipient's Listen stream + its "
        "Ack; mail-sqlite on the SQLite registry, mail-etcd through one "
        "registry on etcd, mail-etcd-2reg deposited at one and listened to "
        "and acknowledged at the other");
    std::vector<ScenarioResult> results;
    for (int concurrency : options_.concurrency) {
      for (int round = 1; round <= options_.rounds; ++round) {
        for (Setup& setup : setups) {
          LoadOptions load;
          load.concurrency = concurrency;
          load.warmup = options_.warmup;
          load.duration = options_.duration;
          LoadResult loaded = RunClosedLoop(*setup.workload, load);
          ScenarioResult result;
          result.scenario = setup.scenario;
          result.round = round;
          result.concurrency = concurrency;
          result.connections = options_.connections;
          result.calls = loaded.calls;
          result.errors = loaded.errors;
          result.error_counts = std::move(loaded.error_counts);
          result.seconds = loaded.seconds;
          result.calls_per_second =
              loaded.seconds > 0
                  ? static_cast<double>(loaded.calls) / loaded.seconds
                  : 0;
          result.latency = Summarize(loaded.latencies_us);
          EmitResult(result);
          if (result.errors > 0) {
            std::vector<std::string> parts;
            for (const auto& [reason, n] : result.error_counts) {
              parts.push_back(absl::StrCat(reason, " x", n));
            }
            Failed(absl::StrCat("mailbox: ", result.scenario,
                                " at concurrency ", concurrency,
                                " had errors: ", absl::StrJoin(parts, ", ")));
          }
          results.push_back(std::move(result));
        }
      }
      for (const Setup& setup : setups) {
        if (setup.scenario != kBaselineMail) {
          EmitRatio(results, setup.scenario, concurrency);
        }
      }
    }
    // Workloads end their Listen streams before the channels go.
    for (Setup& setup : setups) setup.workload.reset();
  }

  void EmitResult(const ScenarioResult& r) {
    Emit(ResultJson(r),
         absl::StrFormat("%-15s round %d conc %3d %8d calls %5d errors %8.0f "
                         "calls/s  p50 %7d us  p99 %7d us  max %7d us",
                         r.scenario, r.round, r.concurrency, r.calls, r.errors,
                         r.calls_per_second, r.latency.p50_us, r.latency.p99_us,
                         r.latency.max_us));
  }

  void EmitRatio(const std::vector<ScenarioResult>& results,
                 const std::string& scenario, int concurrency) {
    std::vector<double> throughput;
    std::vector<double> p50;
    for (const ScenarioResult& r : results) {
      if (r.scenario != scenario || r.concurrency != concurrency) continue;
      for (const ScenarioResult& base : results) {
        if (base.scenario != kBaselineMail || base.round != r.round ||
            base.concurrency != concurrency) {
          continue;
        }
        if (base.calls_per_second > 0) {
          throughput.push_back(r.calls_per_second / base.calls_per_second);
        }
        if (base.latency.p50_us > 0) {
          p50.push_back(static_cast<double>(r.latency.p50_us) /
                        static_cast<double>(base.latency.p50_us));
        }
      }
    }
    const Spread t = SpreadOf(throughput);
    const Spread p = SpreadOf(p50);
    auto spread_json = [](const Spread& s) {
      return absl::StrCat("{\"min\":", Fixed(s.min, 3),
                          ",\"median\":", Fixed(s.median, 3),
                          ",\"max\":", Fixed(s.max, 3), "}");
    };
    Emit(
        absl::StrCat("{\"kind\":\"ratio\",\"scenario\":", JsonQuote(scenario),
                     ",\"baseline\":", JsonQuote(kBaselineMail),
                     ",\"concurrency\":", concurrency,
                     ",\"rounds\":", throughput.size(),
                     ",\"throughput_ratio\":", spread_json(t),
                     ",\"p50_ratio\":", spread_json(p), "}"),
        absl::StrFormat("ratio %-15s / %s at conc %d over %d rounds: "
                        "throughput min %.2f median %.2f max %.2f; p50 "
                        "min %.2f median %.2f max %.2f",
                        scenario, kBaselineMail, concurrency, throughput.size(),
                        t.min, t.median, t.max, p.min, p.median, p.max));
  }

  const BenchOptions& options_;
  std::ostream& out_;
  std::ostream& err_;
  const std::string bin_dir_;
  std::filesystem::path dir_;
  std::unique_ptr<testing::EtcdCluster> etcd_;
  pid_t etcd_pid_ = 0;
  std::vector<RunningRegistry> registries_;
  // Kept until the end: the watchers' streams run over them.
  std::vector<Channels> watch_channels_;
  int exit_code_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseClusterMeasures(
    const std::string& list) {
  static const auto* const kAll =
      new std::vector<std::string>{"watch-fanout", "mailbox"};
  if (list == "all") return *kAll;
  std::vector<std::string> measures;
  for (const std::string& name :
       std::vector<std::string>(absl::StrSplit(list, ','))) {
    if (std::find(kAll->begin(), kAll->end(), name) == kAll->end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown measurement \"", name, "\"; choose from all, ",
                       absl::StrJoin(*kAll, ", ")));
    }
    if (std::find(measures.begin(), measures.end(), name) == measures.end()) {
      measures.push_back(name);
    }
  }
  return measures;
}

int RunClusterBench(const BenchOptions& options, std::ostream& out,
                    std::ostream& err) {
  ClusterBench bench(options, out, err);
  return bench.Run();
}

}  // namespace chat::bench
