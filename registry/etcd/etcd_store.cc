#include "registry/etcd/etcd_store.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/random.h"
#include "common/status.h"
#include "registry/etcd/etcd_keep_alive.h"
#include "registry/etcd/etcd_layout.h"
#include "registry/etcd/etcd_lease_pool.h"
#include "registry/etcd/etcd_watch.h"
#include "registry/names.h"
#include "registry/store/name_index.h"
#include "registry/store/store_rules.h"
#include "registry/store/watch_hub.h"

namespace chat::registry::etcd {
namespace {

// What DecideRegister's new_lease_id() returns: the etcd lease is granted
// only once the decision says a new lease is needed.
constexpr char kNewLease[] = "new";
// Keys read per page of a snapshot.
constexpr int64_t kSnapshotPage = 1000;
// 32 random bytes: the secret half of a lease id.
constexpr int kSecretBytes = 32;
// How often ExpireDue() looks for bindings to forget, and how many it
// deletes at most each time (one Txn each).
constexpr Millis kSweepEvery(1000);
constexpr size_t kForgetPerSweep = 100;
// Rounds of one write whose Txn's outcome was unknown and that was surely
// not applied, each decided again, before the error is answered: a member
// that hangs costs one round; every member failing in turn is an outage.
constexpr int kMaxUnknownOutcomes = 3;

void Log(const std::string& message) { LogLine("etcd-store", message); }

// Whether a failed write may have been applied all the same.
bool MaybeApplied(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

int64_t LeaseSeconds(Millis ttl) {
  return std::max<int64_t>(1, (ttl.count() + 999) / 1000);
}

// `record` as live: the index holds a leased name until etcd deletes it, so
// an estimate that ran out means it was renewed at another registry.
Record Live(Record record, MonoTime now) {
  if (!record.is_static() && record.expires_at <= now) {
    record.expires_at = now + record.ttl;
  }
  return record;
}

// How readers see a record at `now`: every record the index holds, as
// live.
auto Shown(MonoTime now) {
  return [now](const Record& record) -> std::optional<Entry> {
    return ToEntry(Live(record, now), now);
  };
}

// Runs closures on a few threads of the store's, one queue per thread:
// the calls about one name go to one queue, so they are decided in the
// order they were made (as the SQLite store decides them in the caller's
// thread), while calls about other names go on in parallel.
class Workers {
 public:
  explicit Workers(int count) {
    for (int i = 0; i < std::max(1, count); ++i) {
      queues_.push_back(std::make_unique<Queue>());
    }
    for (auto& queue : queues_) {
      Queue* raw = queue.get();
      raw->thread = std::thread([raw] { raw->Run(); });
    }
  }
  ~Workers() {
    for (auto& queue : queues_) {
      {
        absl::MutexLock lock(&queue->mu);
        queue->stopping = true;
      }
      queue->thread.join();
    }
  }
  // Runs `job` after every job posted earlier with the same `key`.
  void Post(const std::string& key, std::function<void()> job) {
    Queue& queue = *queues_[absl::HashOf(key) % queues_.size()];
    absl::MutexLock lock(&queue.mu);
    queue.jobs.push_back(std::move(job));
  }

 private:
  struct Queue {
    void Run() {
      while (true) {
        std::function<void()> job;
        {
          absl::MutexLock lock(&mu);
          mu.Await(absl::Condition(
              +[](Queue* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu) {
                return self->stopping || !self->jobs.empty();
              },
              this));
          if (jobs.empty()) return;  // Stopping, and nothing left.
          job = std::move(jobs.front());
          jobs.pop_front();
        }
        job();
      }
    }

    absl::Mutex mu;
    std::deque<std::function<void()>> jobs ABSL_GUARDED_BY(mu);
    bool stopping ABSL_GUARDED_BY(mu) = false;
    std::thread thread;
  };

  std::vector<std::unique_ptr<Queue>> queues_;
};

// What the index keeps beside each name's record (whose expires_at is
// this registry's estimate).
struct NameSlotExtra {
  int64_t mod_revision = 0;
  int64_t etcd_lease = 0;
};

// One binding in the index.
struct BindingSlot {
  BindingRecord binding;  // With its last proof time.
  int64_t online_lease = 0;
  int64_t mod_revision = 0;
};

// A reservation to write once the index lock is released.
struct PendingReservation {
  std::string name_key;
  BindingSlot slot;
  Record ended;
};

// Everything a decision about one name reads from the index, with the
// revisions its Txn compares.
struct ReadState {
  NameState state;       // Records as live (see Live()).
  int64_t name_mod = 0;  // 0: absent.
  int64_t etcd_lease = 0;
  std::optional<BindingSlot> binding;
  int64_t owner_rev_mod = 0;  // 0: absent.
  int64_t static_rev_mod = 0;
  NameCounts counts;
};

Compare AtOrAbsent(std::string key, int64_t mod_revision) {
  return mod_revision == 0 ? Compare::Absent(std::move(key))
                           : Compare::ModifiedAt(std::move(key), mod_revision);
}

class EtcdStore final : public Store, public SnapshotSource {
 public:
  EtcdStore(const EtcdStoreOptions& options, const Clock& clock,
            std::unique_ptr<EtcdClient> client)
      : options_(options),
        clock_(clock),
        layout_(StoreRoot(options.prefix)),
        ends_prefix_(layout_.root() + "ends/"),
        owner_rev_prefix_(layout_.root() + "owner_rev/"),
        client_(std::move(client)),
        // On the real clock: its pauses wait for etcd, not for the rules.
        keep_alive_(client_.get(), RealClock(), nullptr),
        // On the real clock too: a pooled lease ages in etcd's time.
        lease_pool_(client_.get(), RealClock()),
        hub_(this, options.max_watch_backlog_bytes, "max-watch-backlog-kb",
             options.watch_history),
        workers_(options.workers) {}

  ~EtcdStore() override {
    hub_.CancelAll();
    {
      absl::MutexLock lock(&watch_mu_);
      stopping_ = true;
      if (watch_ != nullptr) watch_->Cancel();
    }
    if (watcher_.joinable()) watcher_.join();
  }

  // Reads the snapshot, starts the watch, writes the reservations missed.
  absl::Status Start() {
    CHAT_ASSIGN_OR_RETURN(int64_t revision, LoadSnapshot(/*resync=*/false));
    {
      absl::MutexLock lock(&mu_);
      applied_ = revision;
    }
    watcher_ = std::thread([this] { WatchLoop(); });
    WriteMissedReservations();
    return absl::OkStatus();
  }

  // --- Writes -------------------------------------------------------------

  void RegisterAsync(const RegisterRequest& request,
                     LeaseCallback done) override {
    if (absl::Status valid = ValidateRegisterRequest(request); !valid.ok()) {
      done(valid);
      return;
    }
    workers_.Post(
        NameKey(request.name),
        [this, request, done = std::move(done)] { done(DoRegister(request)); });
  }

  absl::StatusOr<Lease> Register(const RegisterRequest& request) override {
    CHAT_RETURN_IF_ERROR(ValidateRegisterRequest(request));
    return DoRegister(request);
  }

  void UnregisterAsync(const std::string& name, const std::string& lease_id,
                       DoneCallback done) override {
    if (absl::Status valid = ValidateName(name); !valid.ok()) {
      done(valid);
      return;
    }
    workers_.Post(NameKey(name),
                  [this, name, lease_id, done = std::move(done)] {
                    done(Unregister(name, lease_id));
                  });
  }

  absl::Status Unregister(const std::string& name,
                          const std::string& lease_id) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    int64_t ended_lease = 0;
    const absl::Status committed =
        CommitDecided(name, [&]() -> absl::StatusOr<Round> {
          CHAT_ASSIGN_OR_RETURN(ReadState read,
                                ReadHolder(name, key, lease_id));
          const absl::Time wall_now = clock_.Wall();
          Round round;
          TxnRequest& txn = round.txn;
          txn.compares.push_back(
              Compare::ModifiedAt(layout_.Name(key), read.name_mod));
          txn.compares.push_back(
              AtOrAbsent(layout_.Binding(key),
                         read.binding ? read.binding->mod_revision : 0));
          txn.success.push_back(Op::Delete(layout_.Name(key)));
          // On the name's own lease: it goes when the lease ends.
          txn.success.push_back(
              Op::Put(layout_.End(key), "unregistered", read.etcd_lease));
          if (read.binding) {
            std::optional<BindingRecord> after =
                BindingAfterLeaseEnds(read.state.binding, *read.state.record,
                                      options_.lease_policy, wall_now);
            if (after != read.state.binding) {
              txn.success.push_back(
                  Op::Put(layout_.Binding(key), EncodeBinding(*after, 0)));
            }
          }
          ended_lease = read.etcd_lease;
          round.applied_anyway =
              [this, &key,
               name_mod = read.name_mod]() -> std::optional<int64_t> {
            auto back = client_->Range(RangeRequest::Key(layout_.Name(key)));
            if (!back.ok()) return std::nullopt;
            // Still the incarnation read: not applied. Gone or replaced:
            // the name this call ended is gone either way.
            if (!back->kvs.empty() && back->kvs[0].mod_revision == name_mod) {
              return int64_t{0};
            }
            return back->kvs.empty() ? back->revision
                                     : back->kvs[0].mod_revision;
          };
          return round;
        });
    if (!committed.ok()) return committed;
    // The Txn deleted the name: nobody waits for the lease to end.
    lease_pool_.Discard(ended_lease);
    return absl::OkStatus();
  }

  using Store::List;
  using Store::PutStatic;

  absl::StatusOr<Entry> PutStatic(
      const std::string& name, const std::string& address,
      const std::vector<std::string>& services) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    CHAT_RETURN_IF_ERROR(ValidateAddress(address));
    const std::string key = NameKey(name);
    Entry entry;
    const absl::Status committed =
        CommitDecided(name, [&]() -> absl::StatusOr<Round> {
          const ReadState read = Read(key, "");
          const MonoTime now = clock_.Monotonic();
          const absl::Time wall_now = clock_.Wall();
          CHAT_ASSIGN_OR_RETURN(
              Record record,
              DecidePutStatic(name, address, services, read.state,
                              options_.lease_policy, options_.name_quotas,
                              read.counts, now, wall_now));
          const bool is_new = read.name_mod == 0;
          Round round;
          TxnRequest& txn = round.txn;
          txn.compares.push_back(AtOrAbsent(layout_.Name(key), read.name_mod));
          txn.compares.push_back(
              AtOrAbsent(layout_.Binding(key),
                         read.binding ? read.binding->mod_revision : 0));
          txn.success.push_back(Op::Put(layout_.Name(key), EncodeName(record)));
          if (is_new) {
            // Static entries are counted exactly: every new one bumps this key,
            // so two that pass on the same count cannot both commit.
            txn.compares.push_back(
                AtOrAbsent(layout_.StaticRev(), read.static_rev_mod));
            txn.success.push_back(Op::Put(layout_.StaticRev(), ""));
          }
          if (read.binding &&
              BindingForgetAt(read.binding->binding, options_.lease_policy) <=
                  wall_now) {
            // Over (DecidePutStatic refuses a name still bound) and its last
            // proof out of the skew window: forget it. One still in the window
            // stays, so a proof captured before cannot be used again.
            txn.success.push_back(Op::Delete(layout_.Binding(key)));
          }
          entry = ToEntry(record, now);
          return round;
        });
    if (!committed.ok()) return committed;
    return entry;
  }

  absl::Status RemoveStatic(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    return CommitDecided(name, [&]() -> absl::StatusOr<Round> {
      const ReadState read = Read(key, "");
      CHAT_RETURN_IF_ERROR(
          CheckRemoveStatic(name, read.state.record, clock_.Monotonic()));
      Round round;
      round.txn.compares.push_back(
          Compare::ModifiedAt(layout_.Name(key), read.name_mod));
      round.txn.success.push_back(Op::Delete(layout_.Name(key)));
      return round;
    });
  }

  absl::Status Release(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    int64_t ended_lease = 0;
    const absl::Status committed =
        CommitDecided(name, [&]() -> absl::StatusOr<Round> {
          const ReadState read = Read(key, "");
          const MonoTime now = clock_.Monotonic();
          const absl::Time wall_now = clock_.Wall();
          CHAT_RETURN_IF_ERROR(CheckRelease(
              name, read.state, options_.lease_policy, now, wall_now));
          Round round;
          TxnRequest& txn = round.txn;
          txn.compares.push_back(AtOrAbsent(layout_.Name(key), read.name_mod));
          txn.compares.push_back(Compare::ModifiedAt(
              layout_.Binding(key), read.binding->mod_revision));
          // What it leaves keeps the last proof time for the skew window.
          if (std::optional<BindingRecord> after = BindingAfterRelease(
                  read.binding->binding, options_.lease_policy, wall_now)) {
            txn.success.push_back(
                Op::Put(layout_.Binding(key), EncodeBinding(*after, 0)));
          } else {
            txn.success.push_back(Op::Delete(layout_.Binding(key)));
          }
          // The lease of the bound key goes with the binding.
          const bool lease_goes =
              read.state.record && !read.state.record->is_static() &&
              read.state.record->public_key == read.state.binding->key;
          ended_lease = 0;
          if (lease_goes) {
            txn.success.push_back(Op::Delete(layout_.Name(key)));
            txn.success.push_back(
                Op::Put(layout_.End(key), "released", read.etcd_lease));
            ended_lease = read.etcd_lease;
          }
          return round;
        });
    if (!committed.ok()) return committed;
    lease_pool_.Discard(ended_lease);
    return absl::OkStatus();
  }

  absl::StatusOr<Millis> KeepAlive(const std::string& name,
                                   const std::string& lease_id) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    CHAT_ASSIGN_OR_RETURN(ReadState read, ReadHolder(name, key, lease_id));
    // A renewal is idempotent: one lost with a stream that broke (its
    // member died) goes again on the stream that replaces it.
    absl::StatusOr<int64_t> ttl_seconds;
    for (int attempt = 0; attempt < 2; ++attempt) {
      absl::Notification renewed;
      keep_alive_.RenewOnce(read.etcd_lease,
                            [&](absl::StatusOr<int64_t> answer) {
                              ttl_seconds = std::move(answer);
                              renewed.Notify();
                            });
      renewed.WaitForNotification();
      if (ttl_seconds.status().code() != absl::StatusCode::kUnavailable) break;
    }
    if (!ttl_seconds.ok()) {
      if (ttl_seconds.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat(
            "no live lease holds \"", name, "\" (it expired; register again)"));
      }
      return ttl_seconds.status();
    }
    const Millis ttl = read.state.record->ttl;
    absl::MutexLock lock(&mu_);
    if (auto it = records_.find(key);
        it != records_.end() && it->second.etcd_lease == read.etcd_lease) {
      it->second.record.expires_at = clock_.Monotonic() + ttl;
    }
    return ttl;
  }

  absl::Status VerifyLease(const std::string& name,
                           const std::string& lease_id) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    return ReadHolder(name, NameKey(name), lease_id).status();
  }

  // etcd ends leases, and every registry's watch writes the reservations
  // (see OpenEtcdStore()); what is left is forgetting the bindings that are
  // over, as the SQLite store does here. No entries: nothing expires here.
  absl::StatusOr<std::vector<Entry>> ExpireDue() override {
    ForgetEndedBindings();
    return std::vector<Entry>{};
  }

  // --- Reads, from the index ---------------------------------------------

  absl::StatusOr<Binding> GetBinding(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const ReadState read = Read(NameKey(name), "");
    return BindingOf(name, read.state, options_.lease_policy,
                     clock_.Monotonic(), clock_.Wall());
  }

  absl::StatusOr<Entry> Resolve(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    absl::ReaderMutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    std::optional<Entry> entry = records_.Resolve(NameKey(name), Shown(now));
    if (!entry) {
      return absl::NotFoundError(
          absl::StrCat("no peer named \"", name, "\" is registered"));
    }
    return *std::move(entry);
  }

  ListPage List(const std::string& prefix, size_t page_size,
                const std::string& page_token,
                const std::string& service) override {
    absl::ReaderMutexLock lock(&mu_);
    return records_.List(NameKey(prefix), page_size, page_token, service,
                         Shown(clock_.Monotonic()));
  }

  using Store::Subscribe;
  std::unique_ptr<Watch> Subscribe(const WatchScope& scope,
                                   int64_t resume_after,
                                   std::function<void()> on_ready) override {
    return hub_.Subscribe(WatchKeys(scope), resume_after, std::move(on_ready));
  }

  void ReadSnapshotPage(const WatchKeys& scope, const std::string& after,
                        size_t max, PageTaker take) override {
    // Shared is enough: Publish() runs under mu_ held exclusively.
    absl::ReaderMutexLock lock(&mu_);
    IndexPage page =
        records_.ReadSnapshotPage(scope, after, max, Shown(clock_.Monotonic()));
    take(std::move(page.entries), page.last_key, page.done);
  }

  size_t Size() override {
    absl::ReaderMutexLock lock(&mu_);
    return records_.size();
  }

  size_t CountOffering(const std::string& service) override {
    absl::ReaderMutexLock lock(&mu_);
    return records_.counts().Offering(service);
  }

  size_t WatchBacklogBytes() override { return hub_.QueuedBytes(); }

  void CancelWatches() override { hub_.CancelAll(); }

 private:
  static absl::Status Contended(const std::string& name) {
    return absl::UnavailableError(absl::StrCat(
        "\"", name,
        "\" kept changing at other registries while this one decided; try "
        "again"));
  }

  // --- Forgetting bindings ----------------------------------------------

  // Deletes the bindings whose reservation is over and whose last proof is
  // out of the skew window (BindingForgetAt), at most kForgetPerSweep per
  // sweep and one sweep per kSweepEvery. Any registry may: each delete
  // compares the binding's revision, so a binding written again meanwhile
  // (a registration, another registry's delete) stays. A failed delete is
  // tried again at a later sweep; Register and PutStatic also forget such a
  // binding when they take its name.
  void ForgetEndedBindings() ABSL_LOCKS_EXCLUDED(mu_, sweep_mu_) {
    const MonoTime now = clock_.Monotonic();
    {
      absl::MutexLock lock(&sweep_mu_);
      if (now < next_sweep_) return;
      next_sweep_ = now + kSweepEvery;
    }
    const absl::Time wall_now = clock_.Wall();
    std::vector<std::pair<std::string, int64_t>> over;
    {
      absl::ReaderMutexLock lock(&mu_);
      for (const auto& [key, slot] : bindings_) {
        if (over.size() == kForgetPerSweep) break;
        if (slot.online_lease == 0 &&
            BindingForgetAt(slot.binding, options_.lease_policy) <= wall_now) {
          over.emplace_back(key, slot.mod_revision);
        }
      }
    }
    for (const auto& [key, mod_revision] : over) {
      TxnRequest txn;
      txn.compares.push_back(
          Compare::ModifiedAt(layout_.Binding(key), mod_revision));
      txn.success.push_back(Op::Delete(layout_.Binding(key)));
      if (absl::StatusOr<TxnResult> result = client_->Txn(txn); !result.ok()) {
        Log(absl::StrCat(
            "forgetting the binding of ", key,
            " failed (tried again later): ", result.status().ToString()));
        return;
      }
    }
  }

  // --- The write loop -----------------------------------------------------

  // What one round of a write decided: the Txn that makes it so, with
  // compares saying that what the decision read is still what etcd holds.
  struct Round {
    TxnRequest txn;
    // For a Txn whose outcome is unknown (MaybeApplied), read back from
    // etcd: the revision at which its write is there all the same; 0 when
    // it surely is not (the round is decided again, as after a lost
    // compare: the member it went to died or stopped answering); nullopt
    // when it cannot be told (the error is answered). Empty: ReadBack().
    std::function<std::optional<int64_t>()> applied_anyway;
    // Runs once the Txn committed and the index applied it.
    std::function<void()> committed;
  };

  // The loop of every write: `decide` reads the index and decides (its
  // error, a refusal, is answered as is); the Txn commits the decision
  // unless another registry changed what was read; the answer waits until
  // this registry's index applied the write, so a read here sees it. A lost
  // compare waits until the index holds what won, then decides again, up to
  // max_rounds times (then Contended). A Txn whose outcome is unknown
  // (kUnavailable: the member timed out or broke under it; kResourceExhausted:
  // NOSPACE) is read back at another member (the client passes over the one
  // that failed): there, it is answered as committed; surely not there, it
  // is decided again, which the compares make safe (a first commit that
  // lands late makes them fail). When the read-back fails too, the error
  // is answered.
  absl::Status CommitDecided(const std::string& name,
                             absl::FunctionRef<absl::StatusOr<Round>()> decide)
      ABSL_LOCKS_EXCLUDED(mu_) {
    int unknown_outcomes = 0;
    for (int attempt = 0; attempt < options_.max_rounds; ++attempt) {
      CHAT_ASSIGN_OR_RETURN(Round round, decide());
      // A lost compare reads what the compares were about, so the wait
      // below is for the writes that won, not for the store's revision
      // (which may be a key outside the store's root, bringing no event).
      for (const Compare& compare : round.txn.compares) {
        round.txn.failure.push_back(Op::Get(compare.key));
      }
      absl::StatusOr<TxnResult> result = client_->Txn(round.txn);
      if (!result.ok()) {
        if (!MaybeApplied(result.status())) return result.status();
        const std::optional<int64_t> revision =
            round.applied_anyway ? round.applied_anyway() : ReadBack(round.txn);
        if (revision && *revision > 0) {
          WaitApplied(*revision);
          if (round.committed) round.committed();
          return absl::OkStatus();
        }
        if (!revision || ++unknown_outcomes >= kMaxUnknownOutcomes) {
          return result.status();
        }
        Log(absl::StrCat("a write about \"", name, "\" is not in etcd after ",
                         result.status().ToString(), "; deciding again"));
        continue;
      }
      if (result->succeeded) {
        WaitApplied(result->revision);
        if (round.committed) round.committed();
        return absl::OkStatus();
      }
      WaitApplied(RevisionThatWon(round.txn, *result));
    }
    return Contended(name);
  }

  // Whether `txn`, whose outcome is unknown, was applied (Round::
  // applied_anyway), from one consistent read of the keys its success
  // branch writes: applied when every key it puts holds its value and lease
  // at one revision (a txn's writes share its revision) and every key it
  // deletes is absent. A write another registry made meanwhile reads as
  // "not applied", and the round is decided again on what is there: for a
  // call not yet answered, as good as a first try. A delete whose key is
  // gone reads as applied whoever deleted it, as Unregister does.
  std::optional<int64_t> ReadBack(const TxnRequest& txn) {
    TxnRequest read;
    for (const Op& op : txn.success) read.success.push_back(Op::Get(op.key));
    absl::StatusOr<TxnResult> back = client_->Txn(read);
    if (!back.ok() || back->results.size() != txn.success.size()) {
      return std::nullopt;
    }
    int64_t put_at = 0;
    for (size_t i = 0; i < txn.success.size(); ++i) {
      const Op& op = txn.success[i];
      const std::vector<KeyValue>& kvs = back->results[i].kvs;
      if (op.kind == Op::Kind::kDelete) {
        if (!kvs.empty()) return int64_t{0};
        continue;
      }
      if (op.kind != Op::Kind::kPut) continue;
      if (kvs.empty() || kvs[0].value != op.value || kvs[0].lease != op.lease ||
          (put_at != 0 && kvs[0].mod_revision != put_at)) {
        return int64_t{0};
      }
      put_at = kvs[0].mod_revision;
    }
    return put_at != 0 ? put_at : back->revision;
  }

  // The revision the index must reach to see why `txn`'s compares failed:
  // the newest write to a compared key. A compared key deleted since is
  // seen only at an unknown revision: then the store's revision.
  static int64_t RevisionThatWon(const TxnRequest& txn, const TxnResult& lost) {
    int64_t revision = 0;
    for (size_t i = 0; i < txn.compares.size(); ++i) {
      if (i >= lost.results.size()) return lost.revision;
      const std::vector<KeyValue>& kvs = lost.results[i].kvs;
      if (kvs.empty()) {
        const Compare& compare = txn.compares[i];
        const bool expected_absent =
            compare.target == Compare::Target::kCreateRevision &&
            compare.number == 0;
        if (!expected_absent) return lost.revision;
        continue;
      }
      revision = std::max(revision, kvs[0].mod_revision);
    }
    return revision;
  }

  // --- Register -----------------------------------------------------------

  absl::StatusOr<Lease> DoRegister(const RegisterRequest& request) {
    const std::string key = NameKey(request.name);
    const std::string owner = NameOwner(request);
    // An etcd lease taken for this call, kept across rounds; discarded when
    // no round used it.
    std::optional<LeaseGrant> taken;
    // A Txn on `taken` whose outcome is unknown: the lease must stay (it
    // ends at its TTL).
    bool maybe_attached = false;
    bool taken_used = false;
    const std::string secret = RandomHex(kSecretBytes);
    std::optional<Lease> granted;
    absl::Status committed =
        CommitDecided(request.name, [&]() -> absl::StatusOr<Round> {
          const ReadState read = Read(key, owner);
          const MonoTime now = clock_.Monotonic();
          const absl::Time wall_now = clock_.Wall();
          CHAT_ASSIGN_OR_RETURN(
              RegisterDecision decision,
              DecideRegister(request, read.state, options_.lease_policy,
                             options_.name_quotas, read.counts, now, wall_now,
                             [] { return std::string(kNewLease); }));
          Record& record = decision.record;
          const int64_t seconds = LeaseSeconds(record.ttl);
          int64_t etcd_lease = read.etcd_lease;
          // A new lease, or a renewal asking for more than etcd's lease has
          // (etcd cannot lengthen a lease: the name moves to a new one).
          const bool fresh =
              record.lease_id == kNewLease ||
              (read.etcd_lease != 0 && seconds > LeaseGrantedSeconds(read));
          if (fresh) {
            if (!taken || taken->ttl_seconds < seconds) {
              if (taken) lease_pool_.Discard(taken->id);
              taken.reset();
              CHAT_ASSIGN_OR_RETURN(taken, lease_pool_.Take(seconds));
            }
            etcd_lease = taken->id;
            record.lease_id = MakeLeaseId(taken->id, secret);
          }
          Round round;
          TxnRequest& txn = round.txn;
          txn.compares.push_back(AtOrAbsent(layout_.Name(key), read.name_mod));
          txn.compares.push_back(
              AtOrAbsent(layout_.Binding(key),
                         read.binding ? read.binding->mod_revision : 0));
          txn.success.push_back(
              Op::Put(layout_.Name(key), EncodeName(record), etcd_lease));
          if (decision.binding && request.public_key) {
            // Online under the lease that now holds the name, with the proof
            // time DecideRegister checked (CheckProofFreshness) and records.
            // The compare of the binding's revision above makes check and
            // record one step across registries: of two registrations with one
            // proof, the second reads the first's binding and is refused.
            txn.success.push_back(
                Op::Put(layout_.Binding(key),
                        EncodeBinding(*decision.binding, etcd_lease)));
          } else if (read.binding &&
                     BindingForgetAt(read.binding->binding,
                                     options_.lease_policy) <= wall_now) {
            // A keyless registration takes only a name whose binding is over;
            // the binding is forgotten once its last proof is out of the skew
            // window too, and kept (binding nothing) until then.
            txn.success.push_back(Op::Delete(layout_.Binding(key)));
          }
          if (!owner.empty()) {
            // Names per owner are counted exactly: every registration of the
            // owner bumps this key, so two that pass on the same count cannot
            // both commit.
            txn.compares.push_back(
                AtOrAbsent(layout_.OwnerRev(owner), read.owner_rev_mod));
            txn.success.push_back(Op::Put(layout_.OwnerRev(owner), ""));
          }
          const int64_t replaced = fresh ? read.etcd_lease : 0;
          round.applied_anyway =
              [this, &maybe_attached, &key, etcd_lease, fresh,
               value = EncodeName(record)]() -> std::optional<int64_t> {
            // Applied after all when the name hangs on our lease now.
            auto back = client_->Range(RangeRequest::Key(layout_.Name(key)));
            if (back.ok() && !back->kvs.empty() &&
                back->kvs[0].lease == etcd_lease &&
                back->kvs[0].value == value) {
              return back->kvs[0].mod_revision;
            }
            // A write that may yet be applied must keep its lease.
            if (fresh) maybe_attached = true;
            if (!back.ok()) return std::nullopt;
            // Not there as of this linearizable read: not applied.
            return int64_t{0};
          };
          round.committed = [this, &granted, &taken_used, record, now, fresh,
                             etcd_lease, replaced] {
            taken_used = fresh;
            if (!fresh) {
              // A renewal by Register renews the etcd lease too.
              absl::Notification renewed;
              keep_alive_.RenewOnce(etcd_lease, [&](absl::StatusOr<int64_t>) {
                renewed.Notify();
              });
              renewed.WaitForNotification();
            }
            granted = Granted(record, now, replaced);
          };
          return round;
        });
    if (!committed.ok()) {
      if (taken && !maybe_attached) lease_pool_.Discard(taken->id);
      return committed;
    }
    // A round that renewed the lease it read left `taken` unused.
    if (taken && !taken_used) lease_pool_.Discard(taken->id);
    return *std::move(granted);
  }

  // The answer to a committed registration; `replaced` is the etcd lease a
  // renewal moved off (discarded), or 0.
  Lease Granted(Record record, MonoTime now, int64_t replaced) {
    if (replaced != 0) lease_pool_.Discard(replaced);
    record.expires_at = now + record.ttl;
    return Lease{record.lease_id, ToEntry(record, now)};
  }

  int64_t LeaseGrantedSeconds(const ReadState& read) {
    absl::ReaderMutexLock lock(&mu_);
    auto it = lease_seconds_.find(read.etcd_lease);
    return it == lease_seconds_.end() ? LeaseSeconds(read.state.record->ttl)
                                      : it->second;
  }

  // --- The index ----------------------------------------------------------

  // What a decision about `key` reads; `owner` (may be empty) for the
  // quota count.
  ReadState Read(const std::string& key, const std::string& owner)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    ReadState read;
    if (auto it = records_.find(key); it != records_.end()) {
      read.state.record = Live(it->second.record, now);
      read.name_mod = it->second.mod_revision;
      read.etcd_lease = it->second.etcd_lease;
    }
    if (auto it = bindings_.find(key); it != bindings_.end()) {
      read.binding = it->second;
      read.state.binding = it->second.binding;
    }
    read.counts = records_.counts().For(owner);
    if (!owner.empty()) {
      if (auto it = owner_revs_.find(layout_.OwnerRev(owner));
          it != owner_revs_.end()) {
        read.owner_rev_mod = it->second;
      }
    }
    read.static_rev_mod = static_rev_;
    return read;
  }

  // Read() when `lease_id` holds the name (CheckHolder). A refusal may come
  // from an index that has not seen a registration made at another registry
  // yet: the index catches up with etcd once before it is believed.
  absl::StatusOr<ReadState> ReadHolder(const std::string& name,
                                       const std::string& key,
                                       const std::string& lease_id) {
    ReadState read = Read(key, "");
    absl::Status holder = CheckHolder(
        name, lease_id, read.state.record ? &*read.state.record : nullptr,
        clock_.Monotonic());
    if (holder.ok() || holder.code() == absl::StatusCode::kInvalidArgument) {
      CHAT_RETURN_IF_ERROR(holder);
      return read;
    }
    auto now = client_->Range(RangeRequest::Key(layout_.Name(key)));
    if (!now.ok()) return holder;
    // The name's own write when it is there; gone, it went at a revision
    // the Range does not say.
    WaitApplied(now->kvs.empty() ? now->revision : now->kvs[0].mod_revision);
    read = Read(key, "");
    CHAT_RETURN_IF_ERROR(CheckHolder(
        name, lease_id, read.state.record ? &*read.state.record : nullptr,
        clock_.Monotonic()));
    return read;
  }

  // Blocks until the index has applied `revision` (or options_.index_wait
  // passed: what was committed stays committed; only reads here lag).
  void WaitApplied(int64_t revision) ABSL_LOCKS_EXCLUDED(mu_, watch_mu_) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (applied_ >= revision) return;
    }
    // The watch this wait relies on: only it is reopened when it brings
    // nothing, not one that another wait has reopened already.
    const EtcdWatch* watching;
    {
      absl::MutexLock lock(&watch_mu_);
      watching = watch_;
    }
    auto caught_up = [this, revision]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return applied_ >= revision;
    };
    {
      // Usually the write's own event comes within a millisecond or two.
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&caught_up),
                               absl::Milliseconds(50))) {
        return;
      }
    }
    // A revision made by keys outside the store's root (the mailbox's,
    // another deployment's) brings no event: write one under it, which comes
    // through the watch after every event before it. (Not a progress
    // notification: etcd 3.4.23 may send one with a revision ahead of events it
    // has not sent yet.)
    // The key's value does not matter, so a Put that timed out is sent
    // again (to another member: the client passes over the one that timed
    // out).
    absl::StatusOr<int64_t> synced = client_->Put(layout_.root() + "sync", "");
    if (!synced.ok()) synced = client_->Put(layout_.root() + "sync", "");
    if (!synced.ok()) {
      Log(absl::StrCat("cannot write the sync key: ",
                       synced.status().ToString()));
    }
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&caught_up),
                               client_->attempt_timeout())) {
        return;
      }
    }
    // The watch brought nothing for a whole call attempt: its member may
    // hang (stopped, or cut off without a reset, which gRPC's keepalive
    // notices only after 15 s). It is reopened elsewhere from the last
    // revision applied, and its member passed over for a while.
    ReopenWatch(watching,
                absl::StrCat("the watch has not brought revision ", revision,
                             " within ",
                             absl::FormatDuration(client_->attempt_timeout())));
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&caught_up),
                              options_.index_wait)) {
      Log(absl::StrCat("the index is behind revision ", revision, " after ",
                       absl::FormatDuration(options_.index_wait),
                       "; answering anyway"));
    }
  }

  // Ends `watch` if it still runs (WatchLoop opens the next one, from the
  // last revision applied, on another member) and reports its member
  // failing.
  void ReopenWatch(const EtcdWatch* watch, const std::string& why)
      ABSL_LOCKS_EXCLUDED(watch_mu_) {
    absl::MutexLock lock(&watch_mu_);
    if (watch_ == nullptr || watch_ != watch || stopping_) return;
    Log(why + "; reopening it on another member");
    client_->ReportStreamFailure(watch_->channel());
    watch_->Cancel();
  }

  // Reads the whole prefix at one revision (in pages) and makes the index
  // hold it. At start nobody watches; on a resync the differences become
  // events. Returns the snapshot's revision.
  absl::StatusOr<int64_t> LoadSnapshot(bool resync) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<KeyValue> kvs;
    RangeRequest page;
    page.key = layout_.root();
    page.range_end = PrefixEnd(layout_.root());
    page.limit = kSnapshotPage;
    int64_t revision = 0;
    while (true) {
      CHAT_ASSIGN_OR_RETURN(RangeResult result, client_->Range(page));
      if (revision == 0) revision = result.revision;
      page.revision = revision;
      for (KeyValue& kv : result.kvs) kvs.push_back(std::move(kv));
      if (!result.more || kvs.empty()) break;
      page.key = kvs.back().key + std::string(1, '\0');
    }
    std::vector<WatchEvent> events;
    absl::flat_hash_set<std::string> present;
    for (KeyValue& kv : kvs) {
      present.insert(kv.key);
      WatchEvent event;
      event.type = WatchEvent::Type::kPut;
      event.kv = std::move(kv);
      events.push_back(std::move(event));
    }
    absl::MutexLock lock(&mu_);
    if (resync) {
      // What the index holds and the snapshot does not: gone meanwhile.
      auto gone = [&](const std::string& key) {
        if (present.contains(key)) return;
        WatchEvent event;
        event.type = WatchEvent::Type::kDelete;
        event.kv.key = key;
        event.kv.mod_revision = revision;
        events.push_back(std::move(event));
      };
      for (const auto& [key, slot] : records_) gone(layout_.Name(key));
      for (const auto& [key, slot] : bindings_) gone(layout_.Binding(key));
      for (const auto& [key, mod] : owner_revs_) gone(key);
    }
    std::vector<PendingReservation> reservations;
    for (const WatchEvent& event : events) {
      CHAT_RETURN_IF_ERROR(
          ApplyEvent(event, {}, reservations, !resync, revision));
    }
    applied_ = std::max(applied_, revision);
    // Watchers were told the differences, at the snapshot's revision; what
    // led to it cannot be replayed.
    hub_.ResetHistory(revision);
    return revision;
  }

  // Applies one etcd event to the index and tells watchers, at `revision`
  // (the event's, or a snapshot's). `ended`: the (name key, revision) pairs
  // whose ends/ key was put in the same batch. Expiries whose binding must
  // start its reservation go to `reservations`.
  absl::Status ApplyEvent(
      const WatchEvent& event,
      const absl::flat_hash_set<std::pair<std::string, int64_t>>& ended,
      std::vector<PendingReservation>& reservations, bool strict,
      int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string& key = event.kv.key;
    const bool put = event.type == WatchEvent::Type::kPut;
    const MonoTime now = clock_.Monotonic();
    if (absl::StartsWith(key, owner_rev_prefix_)) {
      if (put) {
        owner_revs_[key] = event.kv.mod_revision;
      } else {
        owner_revs_.erase(key);
      }
      return absl::OkStatus();
    }
    if (key == layout_.StaticRev()) {
      static_rev_ = put ? event.kv.mod_revision : 0;
      return absl::OkStatus();
    }
    const EtcdLayout::Parsed parsed = layout_.Parse(key);
    if (parsed.kind == EtcdLayout::Parsed::Kind::kBinding) {
      if (!put) {
        bindings_.erase(parsed.name_key);
        return absl::OkStatus();
      }
      absl::StatusOr<DecodedBinding> decoded = DecodeBinding(event.kv.value);
      if (!decoded.ok()) {
        if (strict) return decoded.status();
        Log(absl::StrCat("ignoring ", key, ": ", decoded.status().ToString()));
        return absl::OkStatus();
      }
      BindingSlot& slot = bindings_[parsed.name_key];
      slot.binding = std::move(decoded->binding);
      slot.online_lease = decoded->online_lease;
      slot.mod_revision = event.kv.mod_revision;
      return absl::OkStatus();
    }
    if (parsed.kind != EtcdLayout::Parsed::Kind::kName) {
      return absl::OkStatus();
    }
    const std::string& name_key = parsed.name_key;
    auto it = records_.find(name_key);
    std::optional<Record> before;
    if (it != records_.end()) before = Live(it->second.record, now);
    if (!put) {
      if (it == records_.end()) return absl::OkStatus();
      EventReason reason = EventReason::kExpired;
      if (before->is_static() ||
          ended.contains(std::make_pair(name_key, event.kv.mod_revision))) {
        reason = EventReason::kUnregistered;
      }
      for (auto& change : ChangeEvents(&*before, nullptr, now, reason)) {
        change.revision = revision;
        hub_.Publish(name_key, change);
      }
      if (reason == EventReason::kExpired) {
        if (auto binding = bindings_.find(name_key);
            binding != bindings_.end() && binding->second.online_lease != 0) {
          reservations.push_back(
              PendingReservation{name_key, binding->second, *before});
        }
      }
      lease_seconds_.erase(it->second.etcd_lease);
      records_.Erase(name_key);
      return absl::OkStatus();
    }
    absl::StatusOr<Record> decoded = DecodeName(event.kv.value, event.kv.lease);
    if (!decoded.ok()) {
      if (strict) return decoded.status();
      Log(absl::StrCat("ignoring ", key, ": ", decoded.status().ToString()));
      return absl::OkStatus();
    }
    Record& after = *decoded;
    after.expires_at = now + after.ttl;
    for (auto& change : ChangeEvents(before ? &*before : nullptr, &after, now,
                                     EventReason::kUnregistered)) {
      change.revision = revision;
      hub_.Publish(name_key, change);
    }
    if (it != records_.end() && it->second.etcd_lease != event.kv.lease) {
      lease_seconds_.erase(it->second.etcd_lease);
    }
    if (event.kv.lease != 0 && !lease_seconds_.contains(event.kv.lease)) {
      lease_seconds_[event.kv.lease] = LeaseSeconds(after.ttl);
    }
    records_.Put(name_key, std::move(after),
                 NameSlotExtra{event.kv.mod_revision, event.kv.lease});
    return absl::OkStatus();
  }

  // Starts the reservation of a binding whose lease ended: only while the
  // binding is still what was read and the name is still free, so every
  // registry may try it and the first one wins.
  void WriteReservation(const PendingReservation& pending) {
    BindingRecord reserved = pending.slot.binding;
    reserved.reserved_until = clock_.Wall() + options_.lease_policy.reserve;
    TxnRequest txn;
    txn.compares.push_back(Compare::ModifiedAt(
        layout_.Binding(pending.name_key), pending.slot.mod_revision));
    txn.compares.push_back(Compare::Absent(layout_.Name(pending.name_key)));
    txn.success.push_back(
        Op::Put(layout_.Binding(pending.name_key), EncodeBinding(reserved, 0)));
    absl::StatusOr<TxnResult> result = client_->Txn(txn);
    if (!result.ok()) {
      // Not lost: the binding stays online (it holds the name, for its key
      // only) until a registry writes it, at the latest at its next start.
      Log(absl::StrCat("the reservation of ", pending.name_key,
                       " was not written (", result.status().ToString(),
                       "); another registry, or the next start, writes it"));
    }
  }

  // At start: bindings still marked online whose name is gone.
  void WriteMissedReservations() {
    std::vector<PendingReservation> missed;
    {
      absl::ReaderMutexLock lock(&mu_);
      for (const auto& [key, slot] : bindings_) {
        if (slot.online_lease != 0 && !records_.contains(key)) {
          missed.push_back(PendingReservation{key, slot, Record{}});
        }
      }
    }
    for (const PendingReservation& pending : missed) WriteReservation(pending);
  }

  // --- The watch ----------------------------------------------------------

  void WatchLoop() {
    while (true) {
      int64_t next;
      {
        absl::ReaderMutexLock lock(&mu_);
        next = applied_ + 1;
      }
      WatchOptions options = WatchOptions::Prefix(layout_.root(), next);
      options.progress_notify = true;
      absl::StatusOr<std::unique_ptr<EtcdWatch>> opened =
          EtcdWatch::Open(client_.get(), options);
      {
        absl::MutexLock lock(&watch_mu_);
        if (stopping_) return;
        if (!opened.ok()) {
          Log(absl::StrCat("watch failed to open (trying again): ",
                           opened.status().ToString()));
          watch_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                     absl::Milliseconds(200));
          continue;
        }
        watch_ = opened->get();
      }
      absl::Status ended;
      while (true) {
        absl::StatusOr<WatchBatch> batch = (*opened)->Next();
        if (!batch.ok()) {
          ended = batch.status();
          break;
        }
        ApplyBatch(*batch);
      }
      {
        absl::MutexLock lock(&watch_mu_);
        watch_ = nullptr;
        if (stopping_) return;
      }
      if (IsCompacted(ended)) {
        Log("the watch fell behind etcd's compaction; reading a snapshot");
        absl::StatusOr<int64_t> resynced = LoadSnapshot(/*resync=*/true);
        if (!resynced.ok()) {
          Log(absl::StrCat("resync failed (trying again): ",
                           resynced.status().ToString()));
        }
        WriteMissedReservations();
      } else if (ended.code() != absl::StatusCode::kUnavailable &&
                 ended.code() != absl::StatusCode::kCancelled) {
        Log(absl::StrCat("watch ended: ", ended.ToString()));
      }
    }
  }

  void ApplyBatch(const WatchBatch& batch) ABSL_LOCKS_EXCLUDED(mu_) {
    // Unregister and Release put ends/<name> in the Txn that deletes the
    // name: a DELETE with that put at its revision is not an expiry.
    absl::flat_hash_set<std::pair<std::string, int64_t>> ended;
    for (const WatchEvent& event : batch.events) {
      if (event.type == WatchEvent::Type::kPut &&
          absl::StartsWith(event.kv.key, ends_prefix_)) {
        ended.emplace(event.kv.key.substr(ends_prefix_.size()),
                      event.kv.mod_revision);
      }
    }
    std::vector<PendingReservation> reservations;
    {
      absl::MutexLock lock(&mu_);
      for (const WatchEvent& event : batch.events) {
        ApplyEvent(event, ended, reservations, /*strict=*/false,
                   event.kv.mod_revision)
            .IgnoreError();
      }
      // A batch of events says it is complete only up to its last event (a
      // watch catching up may send a long history in several batches, each
      // with the newest revision in its header). An empty one (a progress
      // notification) is not believed: etcd 3.4.23 may send one ahead of
      // events still to come.
      if (!batch.events.empty()) {
        applied_ = std::max(applied_, batch.events.back().kv.mod_revision);
        hub_.Advance(applied_);
      }
    }
    for (const PendingReservation& pending : reservations) {
      WriteReservation(pending);
    }
  }

  const EtcdStoreOptions options_;
  const Clock& clock_;
  const EtcdLayout layout_;
  const std::string ends_prefix_;
  const std::string owner_rev_prefix_;
  const std::unique_ptr<EtcdClient> client_;
  EtcdKeepAlive keep_alive_;
  EtcdLeasePool lease_pool_;

  absl::Mutex sweep_mu_;
  MonoTime next_sweep_ ABSL_GUARDED_BY(sweep_mu_);

  // The index. Publish() to hub_ happens under it (exclusive).
  absl::Mutex mu_;
  // Names, with the counts the quotas and CountOffering read.
  NameIndex<NameSlotExtra> records_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, BindingSlot> bindings_ ABSL_GUARDED_BY(mu_);
  // owner_rev/ keys and static_rev: their mod revisions.
  absl::flat_hash_map<std::string, int64_t> owner_revs_ ABSL_GUARDED_BY(mu_);
  int64_t static_rev_ ABSL_GUARDED_BY(mu_) = 0;
  // The whole seconds each etcd lease in the index was granted with (as
  // its first record asked).
  absl::flat_hash_map<int64_t, int64_t> lease_seconds_ ABSL_GUARDED_BY(mu_);
  // The last etcd revision the index has applied.
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;

  WatchHub hub_;

  absl::Mutex watch_mu_;
  EtcdWatch* watch_ ABSL_GUARDED_BY(watch_mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watcher_;

  Workers workers_;  // Last: its jobs use the above.
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenEtcdStore(
    const EtcdStoreOptions& options, const Clock& clock) {
  CHAT_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client,
                        EtcdClient::Create(options.etcd));
  auto store = std::make_unique<EtcdStore>(options, clock, std::move(client));
  CHAT_RETURN_IF_ERROR(store->Start());
  return store;
}

absl::Status AgreeOnAdminToken(const EtcdStoreOptions& options,
                               const std::string& token) {
  CHAT_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client,
                        EtcdClient::Create(options.etcd));
  const EtcdLayout layout(StoreRoot(options.prefix));
  const std::string hash = ContentDigest(token);
  TxnRequest txn;
  txn.compares.push_back(Compare::Absent(layout.AdminTokenHash()));
  txn.success.push_back(Op::Put(layout.AdminTokenHash(), hash));
  txn.failure.push_back(Op::Get(layout.AdminTokenHash()));
  CHAT_ASSIGN_OR_RETURN(TxnResult result, client->Txn(txn));
  if (result.succeeded) return absl::OkStatus();
  const std::vector<KeyValue>& kvs = result.results.at(0).kvs;
  if (!kvs.empty() && SameSecret(kvs[0].value, hash)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "this registry's admin token is not the one of the deployment under ",
      layout.root(),
      " (etcd keeps the hash of the token of the first registry that "
      "started, at ",
      layout.AdminTokenHash(),
      "): give every registry the same --admin-token-file"));
}

}  // namespace chat::registry::etcd
