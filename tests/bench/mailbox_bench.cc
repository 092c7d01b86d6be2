#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/random.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client/registry_client.h"
#include "tests/bench/cluster_measures.h"
#include "tests/bench/driver.h"
#include "tests/bench/stats.h"
#include "tests/bench/workloads.h"

namespace chat::bench {
namespace {

namespace v1 = registry::v1;
using registry::RegistryClient;

constexpr char kBaselineMail[] = "mail-sqlite";

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
                                      kClusterCallTimeout);
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
          Replied(caller, Reply::kDeposit, status);
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
                                  kClusterCallTimeout);
      c.ack_request.Clear();
      c.ack_request.set_name(c.recipient.name);
      c.ack_request.set_lease_id(c.recipient.lease_id);
      c.ack_request.add_ids(item.id());
      c.ack_request.add_digests(item.digest());
    }
    c.listen_stub->async()->Ack(c.ack_context.get(), &c.ack_request,
                                &c.ack_response,
                                [this, caller](const grpc::Status& status) {
                                  Replied(caller, Reply::kAck, status);
                                });
  }

  enum class Reply { kDeposit, kAck };

  // The operation's deposit or Ack answered: the operation fails with the
  // first error, and succeeds once both succeeded, in either order.
  void Replied(int caller, Reply reply, const grpc::Status& status) {
    Caller& c = callers_[caller];
    if (!status.ok()) {
      Finish(c, CodeName(status.error_code()));
      return;
    }
    bool finished = false;
    {
      absl::MutexLock lock(&c.mu);
      (reply == Reply::kDeposit ? c.deposited : c.acked) = true;
      finished = c.deposited && c.acked;
    }
    if (finished) Finish(c, "");
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

// One run of the measurement.
class MailboxRun {
 public:
  explicit MailboxRun(const ClusterBenchRun& bench) : bench_(bench) {}

  // Runs the measurement; once.
  void Run() {
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
    const int callers = *std::max_element(bench_.options.concurrency.begin(),
                                          bench_.options.concurrency.end());
    const Identity identity = Identity::Generate();
    const std::string run = RandomHex(3);
    for (Setup& setup : setups) {
      absl::StatusOr<Channels> deposit = NewChannels(
          bench_.cluster.Target(setup.deposit_at), bench_.options.connections);
      absl::StatusOr<Channels> listen = NewChannels(
          bench_.cluster.Target(setup.listen_at), bench_.options.connections);
      absl::StatusOr<std::vector<MailRoundTripWorkload::Recipient>> recipients =
          Recipients(setup.listen_at,
                     absl::StrCat("mail-", run, "-", setup.scenario, "-"),
                     callers, identity);
      absl::Status ready = !deposit.ok()  ? deposit.status()
                           : !listen.ok() ? listen.status()
                                          : recipients.status();
      if (!ready.ok()) {
        bench_.report.Failed(
            absl::StrCat("mailbox: ", setup.scenario, ": ", ready.message()));
        return;
      }
      setup.deposit = *std::move(deposit);
      setup.listen = *std::move(listen);
      setup.workload = std::make_unique<MailRoundTripWorkload>(
          setup.deposit, setup.listen, *recipients);
    }
    bench_.report.Note(
        "mailbox: one call = Deposit of a 200-byte item for the caller's own "
        "recipient + the item read from the recipient's Listen stream + its "
        "Ack; mail-sqlite on the SQLite registry, mail-etcd through one "
        "registry on etcd, mail-etcd-2reg deposited at one and listened to "
        "and acknowledged at the other");
    std::vector<ScenarioResult> results;
    for (int concurrency : bench_.options.concurrency) {
      for (int round = 1; round <= bench_.options.rounds; ++round) {
        for (Setup& setup : setups) {
          ScenarioResult result =
              MeasureClosedLoop(*setup.workload, setup.scenario, round,
                                concurrency, bench_.options);
          EmitResult(result);
          if (result.errors > 0) {
            bench_.report.Failed(absl::StrCat(
                "mailbox: ", result.scenario, " at concurrency ", concurrency,
                " had errors: ", ErrorCountsText(result.error_counts)));
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

 private:
  // Registers `count` recipients at `label`, each bound to `identity`.
  absl::StatusOr<std::vector<MailRoundTripWorkload::Recipient>> Recipients(
      const std::string& label, const std::string& prefix, int count,
      const Identity& identity) {
    const std::string& target = bench_.cluster.Target(label);
    RegistryClient client(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), target,
        kClusterCallTimeout);
    std::vector<MailRoundTripWorkload::Recipient> recipients;
    for (int i = 0; i < count; ++i) {
      const std::string name = absl::StrCat(prefix, i);
      absl::StatusOr<registry::Lease> lease = client.Register(
          registry::RegisterRequest(name, "127.0.0.1:9", kClusterLeaseTtl),
          &identity);
      if (!lease.ok()) return lease.status();
      recipients.push_back({name, lease->lease_id});
    }
    return recipients;
  }

  void EmitResult(const ScenarioResult& r) {
    bench_.report.Emit(
        ResultJson(r),
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
    bench_.report.Emit(
        RatioJson(scenario, kBaselineMail, concurrency, throughput.size(), t,
                  p),
        absl::StrFormat("ratio %-15s / %s at conc %d over %d rounds: "
                        "throughput min %.2f median %.2f max %.2f; p50 "
                        "min %.2f median %.2f max %.2f",
                        scenario, kBaselineMail, concurrency, throughput.size(),
                        t.min, t.median, t.max, p.min, p.median, p.max));
  }

  const ClusterBenchRun bench_;
};

}  // namespace

void RunMailbox(const ClusterBenchRun& bench) { MailboxRun(bench).Run(); }

}  // namespace chat::bench
