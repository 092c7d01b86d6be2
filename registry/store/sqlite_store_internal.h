// Inside the SQLite Store (sqlite_store.h): the store's class and the records
// of a write in flight, shared by the files that make it up and by nothing
// else. sqlite_store.cc opens the file, loads the index and serves reads;
// sqlite_store_writes.cc decides every change and applies it to memory;
// sqlite_store_commit.cc writes the rows, then publishes a committed change
// to watchers or undoes a failed one.

#ifndef CHAT_REGISTRY_STORE_SQLITE_STORE_INTERNAL_H_
#define CHAT_REGISTRY_STORE_SQLITE_STORE_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "registry/store/name_index.h"
#include "registry/store/sqlite_store.h"
#include "registry/store/store.h"
#include "registry/store/store_rules.h"
#include "registry/store/watch_hub.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace chat::registry::sqlite_store_internal {

// The SQLite connection and its prepared statements.
struct Database {
  std::unique_ptr<SQLite::Database> db;
  std::unique_ptr<SQLite::Statement> upsert;
  std::unique_ptr<SQLite::Statement> remove;
  std::unique_ptr<SQLite::Statement> upsert_binding;
  std::unique_ptr<SQLite::Statement> remove_binding;

  // Finalizes the statements before the connection closes.
  ~Database();
};

// One name's change, decided under write_mu_ and applied to memory at once:
// the rows it writes (its record's, its binding's, or both), and what memory
// held before, to undo it if its write fails.
struct Change {
  std::string key;
  bool record_changes = false;   // Whether the names row is written.
  std::optional<Record> before;  // Memory before; refreshed by Apply().
  std::optional<Record> after;   // The row to write; nullopt deletes it.
  bool binding_changes = false;  // Whether the bindings row is written.
  std::optional<BindingRecord> binding_before;  // Refreshed by Apply().
  std::optional<BindingRecord> binding_after;   // nullopt deletes it.
  int64_t updated_at_ms = 0;                    // Wall time of the decision.
  // What watchers are told once it is committed (never before).
  std::vector<WatchEvent> events;
};

// The changes of one call, from the decision until its commit is over.
// Owned by the batch's after-commit hook, which runs last; the job, the
// on-failure hook and the in-flight list only point to it.
struct PendingWrite {
  uint64_t seq = 0;  // Decision order.
  std::vector<Change> changes;
  std::function<void(const absl::Status&)> done;
  // Why it was undone (with a write decided before it that failed); OK
  // while it stands. Guarded by SqliteStore::db_mu_.
  absl::Status undone;
};

// The Store that OpenSqliteStore() returns; its contract is in
// sqlite_store.h. Thread-safe. Locks are taken in the order db_mu_,
// write_mu_, then mu_ or inflight_mu_ (the compiler checks it).
class SqliteStore final : public Store, public SnapshotSource {
 public:
  // `first_revision`: where this open's revisions start (see the
  // revisions in sqlite_store.h).
  SqliteStore(const Clock& clock, const SqliteStoreOptions& options,
              std::unique_ptr<Database> database, std::optional<FileLock> lock,
              absl::btree_map<std::string, Record> records,
              absl::btree_map<std::string, BindingRecord> bindings,
              int64_t first_revision);

  // No call may be in flight; writes still queued are finished.
  ~SqliteStore() override;

  void RegisterAsync(const RegisterRequest& request,
                     LeaseCallback done) override;

  absl::StatusOr<Lease> Register(const RegisterRequest& request) override;

  // Memory only: a renewal is not written (every lease gets a full TTL
  // again after a restart), so it never waits for the disk.
  absl::StatusOr<Millis> KeepAlive(const std::string& name,
                                   const std::string& lease_id) override;

  absl::Status VerifyLease(const std::string& name,
                           const std::string& lease_id) override;

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

  absl::StatusOr<Binding> GetBinding(const std::string& name) override;

  absl::Status Release(const std::string& name) override;

  absl::StatusOr<Entry> Resolve(const std::string& name) override;

  ListPage List(const std::string& prefix, size_t page_size,
                const std::string& page_token,
                const std::string& service) override;

  using Store::Subscribe;
  std::unique_ptr<Watch> Subscribe(const WatchScope& scope,
                                   int64_t resume_after,
                                   std::function<void()> on_ready) override;

  // Watchers see what is committed: for a name with a write in flight, what
  // was committed last (committed_).
  void ReadSnapshotPage(const WatchKeys& scope, const std::string& after,
                        size_t max, PageTaker take) override;

  size_t WatchBacklogBytes() override { return hub_.QueuedBytes(); }

  absl::StatusOr<std::vector<Entry>> ExpireDue() override;

  size_t Size() override;

  size_t CountOffering(const std::string& service) override;

  void CancelWatches() override { hub_.CancelAll(); }

 private:
  NameState Find(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);

  // What the name quotas count now, for a decision about `owner`'s name.
  NameCounts Counts(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);

  std::optional<BindingRecord> FindBinding(const std::string& key)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Makes memory hold `binding` (or none) for `key`, its reservation indexed.
  void SetBinding(const std::string& key, std::optional<BindingRecord> binding)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Records the decision `change` (what `change.key` now holds): applies it
  // to memory, tells watchers, and queues the row writes, all under
  // write_mu_, so the file changes in the order of the decisions. `done`
  // hears the outcome of the commit.
  void Decide(Change change, MonoTime now, EventReason delete_reason,
              std::function<void(const absl::Status&)> done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Makes memory hold `change.after` under its key (or nothing), remembers in
  // `change.before` what it held, and tells watchers.
  void Apply(Change& change, MonoTime now, EventReason delete_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_);

  // Watchers are not told yet: the events wait in `change` for the commit
  // (Publish()). Until then they see, for this name, what was committed.
  void ApplyRecord(Change& change, MonoTime now, EventReason delete_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_);

  // One fewer write in flight for `key`; `committed` is what it holds in
  // the file once the write is over (committed, or undone).
  void WriteOver(const std::string& key, const std::optional<Record>& committed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Puts back what `change` replaced, as if it never happened. Changes are
  // undone newest first, so memory holds exactly what `change` left.
  // Watchers never saw it: nothing to tell them.
  void Undo(const Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_);

  // `write` is committed: watchers hear of its changes, in the order
  // they were decided, each at the next revision.
  void Publish(PendingWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Queues `write`'s rows for the group commit, in decision order.
  void Submit(std::unique_ptr<PendingWrite> write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // The batch's job for `write`, inside its transaction.
  absl::Status WriteRows(const PendingWrite& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);

  static void WriteBindingRow(SQLite::Statement& upsert, const std::string& key,
                              const BindingRecord& binding,
                              int64_t updated_at_ms);

  static void WriteRow(SQLite::Statement& upsert, const std::string& key,
                       const Record& record, int64_t updated_at_ms);

  // The on-failure hook: `write` is not in the file (its job or its batch's
  // commit failed). Every write decided since was decided on top of it, so
  // it fails too: memory goes back to what it was before `write`, newest
  // change first, and the later writes' jobs write nothing. Writes decided
  // before `write` are not touched: they are committed, or fail themselves
  // (with their batch), each telling its own hook.
  void Fail(PendingWrite& write, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_)
          ABSL_LOCKS_EXCLUDED(write_mu_, mu_, inflight_mu_);

  // The after-commit hook: tells `write`'s caller, and lets it go.
  void Finished(PendingWrite* write, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(inflight_mu_, mu_);

  const Clock& clock_;
  const SqliteStoreOptions options_;
  // Keeps other registries off the file; none for ":memory:". Declared
  // before database_ so the file closes before the lock goes.
  std::optional<FileLock> lock_;
  WatchHub hub_;

  // The connection, used by the batch's writer thread (and by its
  // on-failure hooks, which then take write_mu_).
  absl::Mutex db_mu_ ABSL_ACQUIRED_BEFORE(write_mu_);
  std::unique_ptr<Database> database_ ABSL_GUARDED_BY(db_mu_);

  // Serialises every decision to change a name: it is taken against memory,
  // applied to memory and queued for the file under this lock, so the file
  // and memory change in the same order. Readers never take it; nobody waits
  // for the disk while holding it.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_, inflight_mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(write_mu_) = 0;

  // Writes decided and not yet committed (or undone), in decision order.
  absl::Mutex inflight_mu_;
  std::deque<PendingWrite*> inflight_ ABSL_GUARDED_BY(inflight_mu_);

  // Guards the in-memory index that serves every read. B-trees throughout:
  // at a million names a hash map's empty slots (bindings_ at 7/8 load,
  // doubled) and a red-black tree's nodes (expiry_) cost a few hundred
  // megabytes more (docs/benchmarks.md).
  absl::Mutex mu_;
  // Names as decided (committed, or in flight), with the quota counts.
  NameIndex<> records_ ABSL_GUARDED_BY(mu_);
  // What the file holds for names with writes in flight (how many:
  // pending_changes_): what watchers' snapshots show for them.
  NameIndex<>::Overrides committed_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> pending_changes_
      ABSL_GUARDED_BY(mu_);
  // The revision of the last change published.
  int64_t revision_ ABSL_GUARDED_BY(mu_);
  // (expires_at, key) of every leased record, soonest first.
  absl::btree_set<std::pair<MonoTime, std::string>> expiry_
      ABSL_GUARDED_BY(mu_);
  // Every name's binding, and (BindingForgetAt, key) of those no lease
  // holds (reserved, or left by Release), soonest first.
  absl::btree_map<std::string, BindingRecord> bindings_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<std::pair<absl::Time, std::string>> reservations_
      ABSL_GUARDED_BY(mu_);

  // Declared last: stopped (its queue finished) before the rest goes.
  std::unique_ptr<SqliteBatch> batch_;
};

}  // namespace chat::registry::sqlite_store_internal

#endif  // CHAT_REGISTRY_STORE_SQLITE_STORE_INTERNAL_H_
