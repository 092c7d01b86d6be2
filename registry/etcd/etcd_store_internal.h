// Private to the etcd Store (etcd_store.h): the EtcdStore class and the
// helpers its three source files share. Only etcd_store.cc,
// etcd_store_writes.cc and etcd_store_index.cc include it; nothing here is an
// interface, and anything may change with them.
//
// Where the members are defined:
// - etcd_store.cc: construction and start, the reads served from the index,
//   renewals (KeepAlive), and forgetting bindings that are over (ExpireDue).
// - etcd_store_writes.cc: every write, each one decided on the index and
//   committed as one Txn (CommitDecided), with Register's etcd leases.
// - etcd_store_index.cc: the index, fed by the snapshot and the watch, the
//   wait of a write for its own revision there, and the reservations written
//   when a bound name's lease ends.

#ifndef CHAT_REGISTRY_ETCD_ETCD_STORE_INTERNAL_H_
#define CHAT_REGISTRY_ETCD_ETCD_STORE_INTERNAL_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/log.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/etcd_keep_alive.h"
#include "registry/etcd/etcd_layout.h"
#include "registry/etcd/etcd_lease_pool.h"
#include "registry/etcd/etcd_store.h"
#include "registry/etcd/etcd_txn_batcher.h"
#include "registry/etcd/etcd_watch.h"
#include "registry/store/name_index.h"
#include "registry/store/store.h"
#include "registry/store/store_rules.h"
#include "registry/store/watch_hub.h"

namespace chat::registry::etcd::store_internal {

// A log line of the store's.
inline void Log(const std::string& message) { LogLine("etcd-store", message); }

// The whole seconds of the etcd lease that holds a name for `ttl`: rounded
// up, at least one.
inline int64_t LeaseSeconds(Millis ttl) {
  return std::max<int64_t>(1, (ttl.count() + 999) / 1000);
}

// `record` as live: the index holds a leased name until etcd deletes it, so
// an estimate that ran out means it was renewed at another registry.
inline Record Live(Record record, MonoTime now) {
  if (!record.is_static() && record.expires_at <= now) {
    record.expires_at = now + record.ttl;
  }
  return record;
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

// The Store of OpenEtcdStore(); etcd_store.h says how it keeps the Store
// contract. Thread-safe: the index is guarded by mu_, the watch by
// watch_mu_; a write waits for etcd holding neither.
class EtcdStore final : public Store, public SnapshotSource {
 public:
  // `clock` is not owned and must outlive the store.
  EtcdStore(const EtcdStoreOptions& options, const Clock& clock,
            std::unique_ptr<EtcdClient> client);

  ~EtcdStore() override;

  // Reads the snapshot, starts the watch, writes the reservations missed.
  absl::Status Start();

  // --- Writes -------------------------------------------------------------

  void RegisterAsync(const RegisterRequest& request,
                     LeaseCallback done) override;

  absl::StatusOr<Lease> Register(const RegisterRequest& request) override;

  void UnregisterAsync(const std::string& name, const std::string& lease_id,
                       DoneCallback done) override;

  absl::Status Unregister(const std::string& name,
                          const std::string& lease_id) override;

  using Store::List;
  using Store::PutStatic;

  absl::StatusOr<Entry> PutStatic(
      const std::string& name, const std::string& address,
      const std::vector<std::string>& services) override;

  absl::Status RemoveStatic(const std::string& name) override;

  absl::Status Release(const std::string& name) override;

  absl::StatusOr<Millis> KeepAlive(const std::string& name,
                                   const std::string& lease_id) override;

  // The renewal goes on the shared keep-alive stream and `done` runs on its
  // reader thread when etcd answers: no thread waits for etcd meanwhile.
  void KeepAliveAsync(const std::string& name, const std::string& lease_id,
                      TtlCallback done) override;

  absl::Status VerifyLease(const std::string& name,
                           const std::string& lease_id) override;

  // etcd ends leases, and every registry's watch writes the reservations
  // (see OpenEtcdStore()); what is left is forgetting the bindings that are
  // over, as the SQLite store does here. No entries: nothing expires here.
  absl::StatusOr<std::vector<Entry>> ExpireDue() override;

  // --- Reads, from the index ---------------------------------------------

  absl::StatusOr<Binding> GetBinding(const std::string& name) override;

  absl::StatusOr<Entry> Resolve(const std::string& name) override;

  ListPage List(const std::string& prefix, size_t page_size,
                const std::string& page_token,
                const std::string& service) override;

  using Store::Subscribe;
  std::unique_ptr<Watch> Subscribe(const WatchScope& scope,
                                   int64_t resume_after,
                                   std::function<void()> on_ready) override;

  void ReadSnapshotPage(const WatchKeys& scope, const std::string& after,
                        size_t max, PageTaker take) override;

  size_t Size() override;

  size_t CountOffering(const std::string& service) override;

  size_t WatchBacklogBytes() override;

  void CancelWatches() override;

 private:
  static absl::Status Contended(const std::string& name);

  // --- Forgetting bindings ----------------------------------------------

  // Deletes the bindings whose reservation is over and whose last proof is
  // out of the skew window (BindingForgetAt), at most kForgetPerSweep per
  // sweep and one sweep per kSweepEvery. Any registry may: each delete
  // compares the binding's revision, so a binding written again meanwhile
  // (a registration, another registry's delete) stays. A failed delete is
  // tried again at a later sweep; Register and PutStatic also forget such a
  // binding when they take its name.
  void ForgetEndedBindings() ABSL_LOCKS_EXCLUDED(mu_, sweep_mu_);

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
  // unless another registry changed what was read (merged with the Txns of
  // other names' writes waiting at that moment: txn_batcher_); the answer waits
  // until this registry's index applied the write, so a read here sees it. A
  // lost compare waits until the index holds what won, then decides again, up
  // to max_rounds times (then Contended). A Txn whose outcome is unknown
  // (kUnavailable: the member timed out or broke under it; kResourceExhausted:
  // NOSPACE) is read back at another member (the client passes over the one
  // that failed): there, it is answered as committed; surely not there, it
  // is decided again, which the compares make safe (a first commit that
  // lands late makes them fail). When the read-back fails too, the error
  // is answered.
  absl::Status CommitDecided(const std::string& name,
                             absl::FunctionRef<absl::StatusOr<Round>()> decide)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `txn`, whose outcome is unknown, was applied (Round::
  // applied_anyway), from one consistent read of the keys its success
  // branch writes: applied when every key it puts holds its value and lease
  // at one revision (a txn's writes share its revision) and every key it
  // deletes is absent. A write another registry made meanwhile reads as
  // "not applied", and the round is decided again on what is there: for a
  // call not yet answered, as good as a first try. A delete whose key is
  // gone reads as applied whoever deleted it, as Unregister does.
  std::optional<int64_t> ReadBack(const TxnRequest& txn);

  // The revision the index must reach to see why `txn`'s compares failed:
  // the newest write to a compared key. A compared key deleted since is
  // seen only at an unknown revision: then the store's revision.
  static int64_t RevisionThatWon(const TxnRequest& txn, const TxnResult& lost);

  // --- Register -----------------------------------------------------------

  absl::StatusOr<Lease> DoRegister(const RegisterRequest& request);

  // The answer to a committed registration; `replaced` is the etcd lease a
  // renewal moved off (discarded), or 0.
  Lease Granted(Record record, MonoTime now, int64_t replaced);

  int64_t LeaseGrantedSeconds(const ReadState& read);

  // --- Renewals -----------------------------------------------------------

  // One renewal of a KeepAliveAsync(): renews `read`'s etcd lease on the
  // keep-alive stream, again when the stream broke before the answer (see
  // KeepAliveAsync), and answers `done`.
  void Renew(std::string name, std::string key, ReadState read, int attempt,
             MonoTime deadline, TtlCallback done);

  // --- The index ----------------------------------------------------------

  // What a decision about `key` reads; `owner` (may be empty) for the
  // quota count.
  ReadState Read(const std::string& key, const std::string& owner)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Read() when `lease_id` holds the name (CheckHolder). A refusal may come
  // from an index that has not seen a registration made at another registry
  // yet: the index catches up with etcd once before it is believed.
  absl::StatusOr<ReadState> ReadHolder(const std::string& name,
                                       const std::string& key,
                                       const std::string& lease_id);

  // Blocks until the index has applied `revision` (or options_.index_wait
  // passed: what was committed stays committed; only reads here lag).
  void WaitApplied(int64_t revision) ABSL_LOCKS_EXCLUDED(mu_, watch_mu_);

  // Ends `watch` if it still runs (WatchLoop opens the next one, from the
  // last revision applied, on another member) and reports its member
  // failing.
  void ReopenWatch(const EtcdWatch* watch, const std::string& why)
      ABSL_LOCKS_EXCLUDED(watch_mu_);

  // Reads the whole prefix at one revision (in pages) and makes the index
  // hold it. At start nobody watches; on a resync the differences become
  // events. Returns the snapshot's revision.
  absl::StatusOr<int64_t> LoadSnapshot(bool resync) ABSL_LOCKS_EXCLUDED(mu_);

  // Applies one etcd event to the index and tells watchers, at `revision`
  // (the event's, or a snapshot's). `ended`: the (name key, revision) pairs
  // whose ends/ key was put in the same batch. Expiries whose binding must
  // start its reservation go to `reservations`.
  absl::Status ApplyEvent(
      const WatchEvent& event,
      const absl::flat_hash_set<std::pair<std::string, int64_t>>& ended,
      std::vector<PendingReservation>& reservations, bool strict,
      int64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Starts the reservation of a binding whose lease ended: only while the
  // binding is still what was read and the name is still free, so every
  // registry may try it and the first one wins.
  void WriteReservation(const PendingReservation& pending);

  // At start: bindings still marked online whose name is gone.
  void WriteMissedReservations();

  // Has the store's workers write `pending` (WriteReservation), each after
  // the writes of its name posted before it; returns at once.
  void PostReservations(std::vector<PendingReservation> pending);

  // --- The watch ----------------------------------------------------------

  void WatchLoop();

  void ApplyBatch(const WatchBatch& batch) ABSL_LOCKS_EXCLUDED(mu_);

  const EtcdStoreOptions options_;
  const Clock& clock_;
  const EtcdLayout layout_;
  const std::string ends_prefix_;
  const std::string owner_rev_prefix_;
  const std::unique_ptr<EtcdClient> client_;
  EtcdKeepAlive keep_alive_;
  EtcdLeasePool lease_pool_;
  // Every write's Txn goes through it (CommitDecided).
  TxnBatcher txn_batcher_;

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

}  // namespace chat::registry::etcd::store_internal

#endif  // CHAT_REGISTRY_ETCD_ETCD_STORE_INTERNAL_H_
