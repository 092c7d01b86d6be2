#include "registry/store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <malloc.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/random.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "registry/names.h"
#include "registry/store/name_index.h"
#include "registry/store/sqlite_schema.h"
#include "registry/store/store_rules.h"
#include "registry/store/watch_hub.h"

namespace chat::registry {
namespace {

absl::Status StorageError(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(
      absl::StrCat("registry storage failed to ", what, ": ", e.what()));
}

// The SQLite connection and its prepared statements.
struct Database {
  std::unique_ptr<SQLite::Database> db;
  std::unique_ptr<SQLite::Statement> upsert;
  std::unique_ptr<SQLite::Statement> remove;
  std::unique_ptr<SQLite::Statement> upsert_binding;
  std::unique_ptr<SQLite::Statement> remove_binding;

  ~Database() {
    upsert.reset();
    remove.reset();
    upsert_binding.reset();
    remove_binding.reset();
    db.reset();
  }
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

Change RecordChange(const std::string& key, std::optional<Record> after,
                    absl::Time wall_now) {
  Change change;
  change.key = key;
  change.record_changes = true;
  change.after = std::move(after);
  change.updated_at_ms = absl::ToUnixMillis(wall_now);
  return change;
}

// Adds the binding's change to `change` when `after` differs from `before`.
void ChangeBinding(Change& change, const std::optional<BindingRecord>& before,
                   std::optional<BindingRecord> after) {
  if (before == after) return;
  change.binding_changes = true;
  change.binding_after = std::move(after);
}

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

// Blocks a caller until its write's commit is over: Callback() is handed
// to the write, Wait() returns what it was called with.
template <typename T>
class Waiter {
 public:
  std::function<void(T)> Callback() {
    return [this](T value) {
      value_ = std::move(value);
      done_.Notify();
    };
  }
  T Wait() {
    done_.WaitForNotification();
    return std::move(value_);
  }

 private:
  absl::Notification done_;
  T value_;  // Written before done_ is notified.
};

// Calls `start` with a callback and blocks until that is called; returns
// what it was given.
template <typename T, typename Start>
T Await(Start start) {
  Waiter<T> waiter;
  start(waiter.Callback());
  return waiter.Wait();
}

// How readers see a record at `now`: while its lease lasts (ExpireDue
// removes it later).
auto ShownIfLive(MonoTime now) {
  return [now](const Record& record) -> std::optional<Entry> {
    if (!record.LiveAt(now)) return std::nullopt;
    return ToEntry(record, now);
  };
}

class SqliteStore final : public Store, public SnapshotSource {
 public:
  // `first_revision`: where this open's revisions start (see the
  // revisions in sqlite_store.h).
  SqliteStore(const Clock& clock, const SqliteStoreOptions& options,
              std::unique_ptr<Database> database, std::optional<FileLock> lock,
              absl::btree_map<std::string, Record> records,
              absl::btree_map<std::string, BindingRecord> bindings,
              int64_t first_revision)
      : clock_(clock),
        options_(options),
        lock_(std::move(lock)),
        hub_(this, options.max_watch_backlog_bytes, "max-watch-backlog-kb",
             options.watch_history, first_revision),
        database_(std::move(database)),
        records_(std::move(records)),
        revision_(first_revision) {
    absl::MutexLock index_lock(&mu_);
    for (const auto& [key, slot] : records_) {
      if (!slot.record.is_static()) {
        expiry_.emplace(slot.record.expires_at, key);
      }
    }
    // Taken whole, not copied entry by entry: at a million names a second
    // copy of every binding is a peak of a hundred megabytes more.
    bindings_ = std::move(bindings);
    for (const auto& [key, binding] : bindings_) {
      const absl::Time forget_at =
          BindingForgetAt(binding, options_.lease_policy);
      if (forget_at != absl::InfiniteFuture()) {
        reservations_.emplace(forget_at, key);
      }
    }
    batch_ = std::make_unique<SqliteBatch>(database_->db.get(), &db_mu_);
  }

  // No call may be in flight; writes still queued are finished.
  ~SqliteStore() override {
    hub_.CancelAll();
    batch_->Stop();
    absl::MutexLock lock(&db_mu_);
    database_.reset();  // Closes the file before the lock is released.
  }

  void RegisterAsync(const RegisterRequest& request,
                     LeaseCallback done) override {
    if (absl::Status valid = ValidateRegisterRequest(request); !valid.ok()) {
      done(valid);
      return;
    }
    const std::string key = NameKey(request.name);
    absl::Status refused;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      const absl::Time wall_now = clock_.Wall();
      const NameState state = Find(key);
      absl::StatusOr<RegisterDecision> decision =
          DecideRegister(request, state, options_.lease_policy,
                         options_.name_quotas, Counts(NameOwner(request)), now,
                         wall_now, [] { return RandomHex(16); });
      if (decision.ok()) {
        Lease lease{decision->record.lease_id, ToEntry(decision->record, now)};
        Change change =
            RecordChange(key, std::move(decision->record), wall_now);
        ChangeBinding(change, state.binding, std::move(decision->binding));
        Decide(std::move(change), now, EventReason::kUnregistered,
               [lease = std::move(lease),
                done = std::move(done)](const absl::Status& status) {
                 if (status.ok()) {
                   done(lease);
                 } else {
                   done(status);
                 }
               });
        return;
      }
      refused = decision.status();
    }
    done(refused);
  }

  absl::StatusOr<Lease> Register(const RegisterRequest& request) override {
    return Await<absl::StatusOr<Lease>>(
        [&](LeaseCallback done) { RegisterAsync(request, std::move(done)); });
  }

  // Memory only: a renewal is not written (every lease gets a full TTL
  // again after a restart), so it never waits for the disk.
  absl::StatusOr<Millis> KeepAlive(const std::string& name,
                                   const std::string& lease_id) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    absl::MutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    auto it = records_.find(key);
    CHAT_RETURN_IF_ERROR(
        CheckHolder(name, lease_id,
                    it == records_.end() ? nullptr : &it->second.record, now));
    Record& record = it->second.record;
    expiry_.erase({record.expires_at, key});
    record.expires_at = now + record.ttl;
    expiry_.emplace(record.expires_at, key);
    return record.ttl;
  }

  absl::Status VerifyLease(const std::string& name,
                           const std::string& lease_id) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    absl::ReaderMutexLock lock(&mu_);
    auto it = records_.find(NameKey(name));
    return CheckHolder(name, lease_id,
                       it == records_.end() ? nullptr : &it->second.record,
                       clock_.Monotonic());
  }

  void UnregisterAsync(const std::string& name, const std::string& lease_id,
                       DoneCallback done) override {
    if (absl::Status valid = ValidateName(name); !valid.ok()) {
      done(valid);
      return;
    }
    const std::string key = NameKey(name);
    absl::Status refused;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      const absl::Time wall_now = clock_.Wall();
      const NameState state = Find(key);
      refused = CheckHolder(name, lease_id,
                            state.record ? &*state.record : nullptr, now);
      if (refused.ok()) {
        Change change = RecordChange(key, std::nullopt, wall_now);
        ChangeBinding(change, state.binding,
                      BindingAfterLeaseEnds(state.binding, *state.record,
                                            options_.lease_policy, wall_now));
        Decide(std::move(change), now, EventReason::kUnregistered,
               [done = std::move(done)](const absl::Status& status) {
                 done(status);
               });
        return;
      }
    }
    done(refused);
  }

  absl::Status Unregister(const std::string& name,
                          const std::string& lease_id) override {
    return Await<absl::Status>([&](DoneCallback done) {
      UnregisterAsync(name, lease_id, std::move(done));
    });
  }

  using Store::List;
  using Store::PutStatic;

  absl::StatusOr<Entry> PutStatic(
      const std::string& name, const std::string& address,
      const std::vector<std::string>& services) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    CHAT_RETURN_IF_ERROR(ValidateAddress(address));
    const std::string key = NameKey(name);
    Waiter<absl::Status> waiter;
    Entry entry;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      const absl::Time wall_now = clock_.Wall();
      absl::StatusOr<Record> record = DecidePutStatic(
          name, address, services, Find(key), options_.lease_policy,
          options_.name_quotas, Counts(""), now, wall_now);
      if (!record.ok()) return record.status();
      entry = ToEntry(*record, now);
      Decide(RecordChange(key, *std::move(record), wall_now), now,
             EventReason::kUnregistered, waiter.Callback());
    }
    CHAT_RETURN_IF_ERROR(waiter.Wait());
    return entry;
  }

  absl::Status RemoveStatic(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    Waiter<absl::Status> waiter;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      CHAT_RETURN_IF_ERROR(CheckRemoveStatic(name, Find(key).record, now));
      Decide(RecordChange(key, std::nullopt, clock_.Wall()), now,
             EventReason::kUnregistered, waiter.Callback());
    }
    return waiter.Wait();
  }

  absl::StatusOr<Binding> GetBinding(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const NameState state = Find(NameKey(name));
    return BindingOf(name, state, options_.lease_policy, clock_.Monotonic(),
                     clock_.Wall());
  }

  absl::Status Release(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    Waiter<absl::Status> waiter;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      const absl::Time wall_now = clock_.Wall();
      const NameState state = Find(key);
      CHAT_RETURN_IF_ERROR(
          CheckRelease(name, state, options_.lease_policy, now, wall_now));
      Change change;
      change.key = key;
      change.updated_at_ms = absl::ToUnixMillis(wall_now);
      // The lease of the bound key goes with the binding.
      if (state.record && !state.record->is_static() &&
          state.record->public_key == state.binding->key) {
        change.record_changes = true;
      }
      // What it leaves keeps the last proof time for the skew window.
      ChangeBinding(
          change, state.binding,
          BindingAfterRelease(*state.binding, options_.lease_policy, wall_now));
      Decide(std::move(change), now, EventReason::kUnregistered,
             waiter.Callback());
    }
    return waiter.Wait();
  }

  absl::StatusOr<Entry> Resolve(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    absl::ReaderMutexLock lock(&mu_);
    std::optional<Entry> entry =
        records_.Resolve(key, ShownIfLive(clock_.Monotonic()));
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
                         ShownIfLive(clock_.Monotonic()));
  }

  using Store::Subscribe;
  std::unique_ptr<Watch> Subscribe(const WatchScope& scope,
                                   int64_t resume_after,
                                   std::function<void()> on_ready) override {
    return hub_.Subscribe(WatchKeys(scope), resume_after, std::move(on_ready));
  }

  // Watchers see what is committed: for a name with a write in flight, what
  // was committed last (committed_).
  void ReadSnapshotPage(const WatchKeys& scope, const std::string& after,
                        size_t max, PageTaker take) override {
    // Shared is enough: Publish() runs under mu_ held exclusively.
    absl::ReaderMutexLock lock(&mu_);
    IndexPage page = records_.ReadSnapshotPage(
        scope, after, max, ShownIfLive(clock_.Monotonic()), &committed_);
    take(std::move(page.entries), page.last_key, page.done);
  }

  size_t WatchBacklogBytes() override { return hub_.QueuedBytes(); }

  absl::StatusOr<std::vector<Entry>> ExpireDue() override {
    Waiter<absl::Status> waiter;
    std::vector<Entry> expired;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      const absl::Time wall_now = clock_.Wall();
      std::vector<std::string> due;
      std::vector<std::string> reservations_over;
      {
        absl::ReaderMutexLock lock(&mu_);
        for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now;
             ++it) {
          due.push_back(it->second);
        }
        for (auto it = reservations_.begin();
             it != reservations_.end() && it->first <= wall_now; ++it) {
          reservations_over.push_back(it->second);
        }
      }
      // A due lease cannot be renewed (KeepAlive refuses it) and every other
      // change waits for write_mu_, so the due records are still here.
      if (due.empty() && reservations_over.empty()) return expired;
      auto write = std::make_unique<PendingWrite>();
      {
        absl::MutexLock lock(&mu_);
        for (std::string& key : due) {
          Change change = RecordChange(key, std::nullopt, wall_now);
          const Record& record = records_.find(key)->second.record;
          ChangeBinding(change, FindBinding(key),
                        BindingAfterLeaseEnds(
                            FindBinding(key), record, options_.lease_policy,
                            LeaseEndWall(record, now, wall_now)));
          write->changes.push_back(std::move(change));
          Apply(write->changes.back(), now, EventReason::kExpired);
          expired.push_back(ToEntry(*write->changes.back().before, now));
        }
        for (std::string& key : reservations_over) {
          Change change;
          change.key = std::move(key);
          change.updated_at_ms = absl::ToUnixMillis(wall_now);
          ChangeBinding(change, FindBinding(change.key), std::nullopt);
          write->changes.push_back(std::move(change));
          Apply(write->changes.back(), now, EventReason::kExpired);
        }
      }
      write->done = waiter.Callback();
      Submit(std::move(write));
    }
    CHAT_RETURN_IF_ERROR(waiter.Wait());
    return expired;
  }

  size_t Size() override {
    absl::ReaderMutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    size_t due = 0;
    for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now;
         ++it) {
      ++due;
    }
    return records_.size() - due;
  }

  size_t CountOffering(const std::string& service) override {
    absl::ReaderMutexLock lock(&mu_);
    const size_t offering = records_.counts().Offering(service);
    if (offering == 0) return 0;
    const MonoTime now = clock_.Monotonic();
    size_t due = 0;
    for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now;
         ++it) {
      auto record = records_.find(it->second);
      if (record != records_.end() &&
          RecordOffers(record->second.record, service)) {
        ++due;
      }
    }
    return offering - std::min(due, offering);
  }

  void CancelWatches() override { hub_.CancelAll(); }

 private:
  NameState Find(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    NameState state;
    auto it = records_.find(key);
    if (it != records_.end()) state.record = it->second.record;
    state.binding = FindBinding(key);
    return state;
  }

  // What the name quotas count now, for a decision about `owner`'s name.
  NameCounts Counts(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    return records_.counts().For(owner);
  }

  std::optional<BindingRecord> FindBinding(const std::string& key)
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = bindings_.find(key);
    if (it == bindings_.end()) return std::nullopt;
    return it->second;
  }

  // Makes memory hold `binding` (or none) for `key`, its reservation indexed.
  void SetBinding(const std::string& key, std::optional<BindingRecord> binding)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (auto it = bindings_.find(key); it != bindings_.end()) {
      reservations_.erase(
          {BindingForgetAt(it->second, options_.lease_policy), key});
      bindings_.erase(it);
    }
    if (!binding) return;
    const absl::Time forget_at =
        BindingForgetAt(*binding, options_.lease_policy);
    if (forget_at != absl::InfiniteFuture()) {
      reservations_.emplace(forget_at, key);
    }
    bindings_.emplace(key, *std::move(binding));
  }

  // Records the decision `change` (what `change.key` now holds): applies it
  // to memory, tells watchers, and queues the row writes, all under
  // write_mu_, so the file changes in the order of the decisions. `done`
  // hears the outcome of the commit.
  void Decide(Change change, MonoTime now, EventReason delete_reason,
              std::function<void(const absl::Status&)> done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    auto write = std::make_unique<PendingWrite>();
    write->changes.push_back(std::move(change));
    write->done = std::move(done);
    {
      absl::MutexLock lock(&mu_);
      Apply(write->changes.back(), now, delete_reason);
    }
    Submit(std::move(write));
  }

  // Makes memory hold `change.after` under its key (or nothing), remembers in
  // `change.before` what it held, and tells watchers.
  void Apply(Change& change, MonoTime now, EventReason delete_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_) {
    if (change.binding_changes) {
      change.binding_before = FindBinding(change.key);
      SetBinding(change.key, change.binding_after);
    }
    if (change.record_changes) ApplyRecord(change, now, delete_reason);
  }

  // Watchers are not told yet: the events wait in `change` for the commit
  // (Publish()). Until then they see, for this name, what was committed.
  void ApplyRecord(Change& change, MonoTime now, EventReason delete_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_) {
    const std::string& key = change.key;
    // Read again under mu_: a KeepAlive may have moved the expiry since the
    // decision (it cannot change whether the record is live).
    auto it = records_.find(key);
    if (it != records_.end()) {
      change.before = it->second.record;
      if (!change.before->is_static()) {
        expiry_.erase({change.before->expires_at, key});
      }
    }
    if (pending_changes_[key]++ == 0) committed_[key] = change.before;
    // On a copy: ChangeEvents marks an expiry reported, which must not
    // stick to what an undo would put back (watchers never heard of it).
    std::optional<Record> shown_before = change.before;
    change.events = ChangeEvents(shown_before ? &*shown_before : nullptr,
                                 change.after ? &*change.after : nullptr, now,
                                 delete_reason);
    if (!change.after) {
      records_.Erase(key);
      return;
    }
    const Record& record = *change.after;
    if (!record.is_static()) expiry_.emplace(record.expires_at, key);
    records_.Put(key, record);
  }

  // One fewer write in flight for `key`; `committed` is what it holds in
  // the file once the write is over (committed, or undone).
  void WriteOver(const std::string& key, const std::optional<Record>& committed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto pending = pending_changes_.find(key);
    if (pending == pending_changes_.end()) return;
    if (--pending->second == 0) {
      pending_changes_.erase(pending);
      committed_.erase(key);
    } else {
      committed_[key] = committed;
    }
  }

  // Puts back what `change` replaced, as if it never happened. Changes are
  // undone newest first, so memory holds exactly what `change` left.
  // Watchers never saw it: nothing to tell them.
  void Undo(const Change& change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_) {
    if (change.binding_changes) SetBinding(change.key, change.binding_before);
    if (!change.record_changes) return;
    const std::string& key = change.key;
    if (auto it = records_.find(key); it != records_.end()) {
      if (!it->second.record.is_static()) {
        expiry_.erase({it->second.record.expires_at, key});
      }
      records_.Erase(key);
    }
    if (change.before) {
      if (!change.before->is_static()) {
        expiry_.emplace(change.before->expires_at, key);
      }
      records_.Put(key, *change.before);
    }
    // What the file holds for it is still what committed_ says.
    if (auto pending = pending_changes_.find(key);
        pending != pending_changes_.end() && --pending->second == 0) {
      pending_changes_.erase(pending);
      committed_.erase(key);
    }
  }

  // `write` is committed: watchers hear of its changes, in the order
  // they were decided, each at the next revision.
  void Publish(PendingWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Change& change : write.changes) {
      if (!change.record_changes) continue;
      for (WatchEvent& event : change.events) {
        event.revision = ++revision_;
        hub_.Publish(change.key, event);
      }
      WriteOver(change.key, change.after);
    }
  }

  // Queues `write`'s rows for the group commit, in decision order.
  void Submit(std::unique_ptr<PendingWrite> write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    PendingWrite* pending = write.release();  // Owned by the after-commit.
    pending->seq = ++last_seq_;
    {
      absl::MutexLock lock(&inflight_mu_);
      inflight_.push_back(pending);
    }
    batch_->Post(
        [this, pending](SQLite::Database&) {
          db_mu_.AssertHeld();
          return WriteRows(*pending);
        },
        [this, pending](const absl::Status& status) {
          Finished(pending, status);
        },
        [this, pending](const absl::Status& status) {
          db_mu_.AssertHeld();
          Fail(*pending, status);
        });
  }

  // The batch's job for `write`, inside its transaction.
  absl::Status WriteRows(const PendingWrite& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    // Decided on top of a write that failed: undone with it already.
    if (!write.undone.ok()) return write.undone;
    SQLite::Statement& upsert = *database_->upsert;
    SQLite::Statement& remove = *database_->remove;
    SQLite::Statement& upsert_binding = *database_->upsert_binding;
    SQLite::Statement& remove_binding = *database_->remove_binding;
    try {
      for (const Change& change : write.changes) {
        if (change.record_changes && change.after) {
          WriteRow(upsert, change.key, *change.after, change.updated_at_ms);
        } else if (change.record_changes) {
          remove.bind(1, change.key);
          remove.exec();
          remove.reset();
        }
        if (change.binding_changes && change.binding_after) {
          WriteBindingRow(upsert_binding, change.key, *change.binding_after,
                          change.updated_at_ms);
        } else if (change.binding_changes) {
          remove_binding.bind(1, change.key);
          remove_binding.exec();
          remove_binding.reset();
        }
      }
    } catch (const std::exception& e) {
      upsert.tryReset();
      remove.tryReset();
      upsert_binding.tryReset();
      remove_binding.tryReset();
      return StorageError("write", e);
    }
    return absl::OkStatus();
  }

  static void WriteBindingRow(SQLite::Statement& upsert, const std::string& key,
                              const BindingRecord& binding,
                              int64_t updated_at_ms) {
    upsert.bind(1, key);
    upsert.bind(2, binding.name);
    upsert.bind(3, binding.key.bytes.data(),
                static_cast<int>(binding.key.bytes.size()));
    if (binding.reserved_until == absl::InfiniteFuture()) {
      upsert.bind(4);  // NULL: a lease holds it.
    } else {
      upsert.bind(4, absl::ToUnixMillis(binding.reserved_until));
    }
    upsert.bind(5, updated_at_ms);
    upsert.bind(6, binding.last_proof_unix_ms);
    upsert.exec();
    upsert.reset();
  }

  static void WriteRow(SQLite::Statement& upsert, const std::string& key,
                       const Record& record, int64_t updated_at_ms) {
    upsert.bind(1, key);
    upsert.bind(2, record.name);
    upsert.bind(3, record.address);
    if (record.is_static()) {
      upsert.bind(4);  // NULL
    } else {
      upsert.bind(4, record.lease_id);
    }
    upsert.bind(5, static_cast<int64_t>(record.ttl.count()));
    upsert.bind(6, updated_at_ms);
    if (record.public_key) {
      upsert.bind(7, record.public_key->bytes.data(),
                  static_cast<int>(record.public_key->bytes.size()));
    } else {
      upsert.bind(7);  // NULL
    }
    if (record.services.empty()) {
      upsert.bind(8);  // NULL: not said (a client older than services).
    } else {
      upsert.bind(8, record.services);
    }
    upsert.exec();
    upsert.reset();
  }

  // The on-failure hook: `write` is not in the file (its job or its batch's
  // commit failed). Every write decided since was decided on top of it, so
  // it fails too: memory goes back to what it was before `write`, newest
  // change first, and the later writes' jobs write nothing. Writes decided
  // before `write` are not touched: they are committed, or fail themselves
  // (with their batch), each telling its own hook.
  void Fail(PendingWrite& write, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_)
          ABSL_LOCKS_EXCLUDED(write_mu_, mu_, inflight_mu_) {
    if (!write.undone.ok()) return;  // Undone already.
    // Blocks new decisions while memory goes back.
    absl::MutexLock write_lock(&write_mu_);
    std::vector<PendingWrite*> undone;  // Newest first; `write` last.
    {
      absl::MutexLock lock(&inflight_mu_);
      while (!inflight_.empty() && inflight_.back()->seq >= write.seq) {
        undone.push_back(inflight_.back());
        undone.back()->undone = status;
        inflight_.pop_back();
      }
    }
    size_t changes = 0;
    {
      absl::MutexLock lock(&mu_);
      for (const PendingWrite* undo : undone) {
        for (auto change = undo->changes.rbegin();
             change != undo->changes.rend(); ++change) {
          Undo(*change);
          ++changes;
        }
      }
    }
    LogLine("registry",
            absl::StrCat("undid ", changes, " change(s) of ", undone.size(),
                         " call(s): ", status.message()));
  }

  // The after-commit hook: tells `write`'s caller, and lets it go.
  void Finished(PendingWrite* write, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(inflight_mu_, mu_) {
    std::unique_ptr<PendingWrite> owned(write);
    if (status.ok()) {
      {
        absl::MutexLock lock(&inflight_mu_);
        // Commits come in decision order, so it is the oldest in flight.
        auto it = std::find(inflight_.begin(), inflight_.end(), write);
        if (it != inflight_.end()) inflight_.erase(it);
      }
      absl::MutexLock lock(&mu_);
      Publish(*write);
    }
    write->done(status);
  }

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

absl::btree_map<std::string, Record> LoadRecords(SQLite::Database& db,
                                                 MonoTime now) {
  absl::btree_map<std::string, Record> records;
  SQLite::Statement select(
      db,
      "SELECT name_key, name, address, lease_id, ttl_ms, public_key, "
      "services FROM names");
  while (select.executeStep()) {
    Record record;
    std::string key = select.getColumn(0).getString();
    record.name = select.getColumn(1).getString();
    record.address = select.getColumn(2).getString();
    record.lease_id = select.getColumn(3).getString();  // "" for NULL.
    record.ttl = Millis(select.getColumn(4).getInt64());
    // Every surviving lease gets its full TTL again.
    record.expires_at = now + record.ttl;
    bool key_ok = true;
    if (!select.getColumn(5).isNull()) {
      absl::StatusOr<PublicKey> public_key =
          PublicKey::FromBytes(select.getColumn(5).getString());
      key_ok = public_key.ok() && !record.is_static();
      if (key_ok) record.public_key = *public_key;
    }
    // NULL ("" here) for a lease of a client older than services: "chat".
    record.services = select.getColumn(6).getString();
    absl::StatusOr<std::vector<std::string>> services =
        CanonicalServices(SplitServices(record.services));
    if (services.ok()) record.services = JoinServices(*services);
    if (key != NameKey(record.name) || !ValidateName(record.name).ok() ||
        !ValidateAddress(record.address).ok() || !key_ok || !services.ok()) {
      LogLine("registry", absl::StrCat("skipping malformed row for \"", key,
                                       "\" in the database"));
      continue;
    }
    records.emplace(std::move(key), std::move(record));
  }
  return records;
}

absl::btree_map<std::string, BindingRecord> LoadBindings(
    SQLite::Database& db, const absl::btree_map<std::string, Record>& records,
    const LeasePolicy& policy, absl::Time wall_now) {
  absl::btree_map<std::string, BindingRecord> bindings;
  SQLite::Statement select(
      db,
      "SELECT name_key, name, public_key, reserved_until_ms, last_proof_ms "
      "FROM bindings");
  while (select.executeStep()) {
    BindingRecord binding;
    std::string key = select.getColumn(0).getString();
    binding.name = select.getColumn(1).getString();
    absl::StatusOr<PublicKey> public_key =
        PublicKey::FromBytes(select.getColumn(2).getString());
    if (key != NameKey(binding.name) || !ValidateName(binding.name).ok() ||
        !public_key.ok()) {
      LogLine("registry", absl::StrCat("skipping malformed binding for \"", key,
                                       "\" in the database"));
      continue;
    }
    binding.key = *public_key;
    binding.last_proof_unix_ms = select.getColumn(4).getInt64();
    if (!select.getColumn(3).isNull()) {
      binding.reserved_until =
          absl::FromUnixMillis(select.getColumn(3).getInt64());
    } else {
      // Held by a lease; without that lease (a file written by hand, or a
      // lease row skipped above) the reservation starts now.
      auto it = records.find(key);
      if (it == records.end() || it->second.public_key != binding.key) {
        binding.reserved_until = wall_now + policy.reserve;
      }
    }
    bindings.emplace(std::move(key), std::move(binding));
  }
  return bindings;
}

// This open's epoch (see the revisions in sqlite_store.h): one more than
// the last open's, kept in the file; a file's first is random.
int64_t NextEpoch(SQLite::Database& db) {
  constexpr int64_t kFirstEpochs = int64_t{1} << 21;
  SQLite::Statement select(
      db, "SELECT value FROM registry_meta WHERE key = 'revision_epoch'");
  int64_t epoch = 0;
  if (select.executeStep()) {
    epoch = select.getColumn(0).getInt64() + 1;
  } else {
    epoch = 1 + static_cast<int64_t>(std::stoull(RandomHex(4), nullptr, 16) %
                                     static_cast<uint64_t>(kFirstEpochs - 1));
  }
  SQLite::Statement upsert(
      db,
      "INSERT INTO registry_meta (key, value) VALUES ('revision_epoch', ?1) "
      "ON CONFLICT (key) DO UPDATE SET value = ?1");
  upsert.bind(1, epoch);
  upsert.exec();
  return epoch;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, const Clock& clock,
    const SqliteStoreOptions& options) {
  absl::StatusOr<SqliteFile> file =
      OpenRegistryDatabase(path, "registry database", options.sync_full,
                           /*lock=*/true);
  if (!file.ok()) return file.status();
  auto database = std::make_unique<Database>();
  database->db = std::move(file->db);
  try {
    SQLite::Database& db = *database->db;
    database->upsert = std::make_unique<SQLite::Statement>(
        db,
        "INSERT INTO names (name_key, name, address, lease_id, ttl_ms, "
        "updated_at_ms, public_key, services) VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7, ?8) ON CONFLICT (name_key) DO UPDATE SET name = ?2, "
        "address = ?3, lease_id = ?4, ttl_ms = ?5, updated_at_ms = ?6, "
        "public_key = ?7, services = ?8");
    database->remove = std::make_unique<SQLite::Statement>(
        db, "DELETE FROM names WHERE name_key = ?1");
    database->upsert_binding = std::make_unique<SQLite::Statement>(
        db,
        "INSERT INTO bindings (name_key, name, public_key, "
        "reserved_until_ms, updated_at_ms, last_proof_ms) VALUES (?1, ?2, "
        "?3, ?4, ?5, ?6) ON CONFLICT (name_key) DO UPDATE SET name = ?2, "
        "public_key = ?3, reserved_until_ms = ?4, updated_at_ms = ?5, "
        "last_proof_ms = ?6");
    database->remove_binding = std::make_unique<SQLite::Statement>(
        db, "DELETE FROM bindings WHERE name_key = ?1");
    auto records = LoadRecords(db, clock.Monotonic());
    auto bindings =
        LoadBindings(db, records, options.lease_policy, clock.Wall());
    const int64_t epoch = NextEpoch(db);
    auto store = std::unique_ptr<Store>(new SqliteStore(
        clock, options, std::move(database), std::move(file->lock),
        std::move(records), std::move(bindings), epoch << 40));
    // Loading a large file leaves freed buffers (rows read, temporaries)
    // in the heap; give them back rather than carry them as RSS.
    malloc_trim(0);
    return store;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open registry database ", path, ": ", e.what()));
  }
}

}  // namespace chat::registry
