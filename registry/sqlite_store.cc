#include "registry/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/random.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "registry/names.h"
#include "registry/sqlite_schema.h"
#include "registry/watch_hub.h"

namespace chat::registry {
namespace {

// One name as kept in memory.
struct Record {
  std::string name;
  std::string address;
  std::string lease_id;  // Empty for static entries.
  Millis ttl{0};
  MonoTime expires_at;  // Meaningless for static entries.
  // Memory only: watchers were already told this lease expired (a record
  // restored by an undone write can be present, expired and reported).
  bool expiry_reported = false;

  bool is_static() const { return lease_id.empty(); }
  bool LiveAt(MonoTime now) const { return is_static() || expires_at > now; }
};

Entry ToEntry(const Record& record, MonoTime now) {
  Entry entry;
  entry.name = record.name;
  entry.address = record.address;
  entry.is_static = record.is_static();
  if (!record.is_static()) {
    entry.ttl = record.ttl;
    entry.expires_in = Millis(MillisUntil(record.expires_at, now));
  }
  return entry;
}

// Lease ids are secrets: compare without leaking where they differ.
bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

absl::Status StorageError(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(
      absl::StrCat("registry storage failed to ", what, ": ", e.what()));
}

// The SQLite connection and its prepared statements.
struct Database {
  explicit Database(const std::string& path)
      : db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE) {}

  SQLite::Database db;
  std::unique_ptr<SQLite::Statement> upsert;
  std::unique_ptr<SQLite::Statement> remove;
};

// One name's change, decided under write_mu_ and applied to memory at once:
// the row it writes, and what memory held before, to undo it if the commit
// fails.
struct Change {
  std::string key;
  std::optional<Record> before;  // Memory before; refreshed by Apply().
  std::optional<Record> after;   // The row to write; nullopt deletes it.
  int64_t updated_at_ms = 0;     // Wall time of the decision.
};

// The changes of one call, waiting for the group commit that makes them
// durable. Lives on the caller's stack until `done`.
struct PendingWrite {
  std::vector<Change> changes;
  bool done = false;  // Guarded by SqliteStore::commit_mu_.
  absl::Status status;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(const Clock& clock, const SqliteStoreOptions& options,
              std::unique_ptr<Database> database, std::optional<FileLock> lock,
              absl::btree_map<std::string, Record> records)
      : clock_(clock),
        options_(options),
        lock_(std::move(lock)),
        hub_(options.max_watch_backlog),
        database_(std::move(database)),
        records_(std::move(records)) {
    for (const auto& [key, record] : records_) {
      if (!record.is_static()) expiry_.emplace(record.expires_at, key);
    }
  }

  // No call may be in flight, so no write is waiting for a commit.
  ~SqliteStore() override {
    hub_.CancelAll();
    {
      absl::MutexLock lock(&db_mu_);
      database_.reset();  // Closes the file before the lock is released.
    }
  }

  absl::StatusOr<Lease> Register(const RegisterRequest& request) override {
    CHAT_RETURN_IF_ERROR(ValidateName(request.name));
    CHAT_RETURN_IF_ERROR(ValidateAddress(request.address));
    if (request.ttl.count() < 0) {
      return absl::InvalidArgumentError("ttl must not be negative");
    }
    const Millis ttl = GrantedTtl(options_.lease_policy, request.ttl);
    const std::string key = NameKey(request.name);

    PendingWrite write;
    Lease lease;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      std::optional<Record> old = Find(key);
      Record record;
      if (old && old->LiveAt(now)) {
        if (old->is_static() || request.lease_id.empty() ||
            !SameSecret(old->lease_id, request.lease_id)) {
          return HeldError(*old, now);
        }
        record = *old;  // The holder renews and perhaps moves.
        record.address = request.address;
      } else {
        record.name = request.name;
        record.address = request.address;
        record.lease_id = RandomHex(16);
      }
      record.ttl = ttl;
      record.expires_at = now + ttl;
      lease = Lease{record.lease_id, ToEntry(record, now)};
      Decide(write, key, std::move(record), now);
    }
    CHAT_RETURN_IF_ERROR(AwaitCommit(write));
    return lease;
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
    CHAT_RETURN_IF_ERROR(CheckHolder(
        name, lease_id, it == records_.end() ? nullptr : &it->second, now));
    Record& record = it->second;
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
                       it == records_.end() ? nullptr : &it->second,
                       clock_.Monotonic());
  }

  absl::Status Unregister(const std::string& name,
                          const std::string& lease_id) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    PendingWrite write;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      std::optional<Record> old = Find(key);
      CHAT_RETURN_IF_ERROR(
          CheckHolder(name, lease_id, old ? &*old : nullptr, now));
      Decide(write, key, std::nullopt, now, EventReason::kUnregistered);
    }
    return AwaitCommit(write);
  }

  absl::StatusOr<Entry> PutStatic(const std::string& name,
                                  const std::string& address) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    CHAT_RETURN_IF_ERROR(ValidateAddress(address));
    const std::string key = NameKey(name);
    PendingWrite write;
    Entry entry;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      std::optional<Record> old = Find(key);
      Record record;
      if (old && old->LiveAt(now)) {
        if (!old->is_static()) return HeldError(*old, now);
        record = *old;
      } else {
        record.name = name;
      }
      record.address = address;
      entry = ToEntry(record, now);
      Decide(write, key, std::move(record), now);
    }
    CHAT_RETURN_IF_ERROR(AwaitCommit(write));
    return entry;
  }

  absl::Status RemoveStatic(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    PendingWrite write;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      std::optional<Record> old = Find(key);
      if (!old || !old->LiveAt(now)) {
        return absl::NotFoundError(
            absl::StrCat("no static entry named \"", name, "\""));
      }
      if (!old->is_static()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "\"", old->name,
            "\" is held by a peer's lease, not a static entry; it leaves when "
            "the peer unregisters or its lease expires"));
      }
      Decide(write, key, std::nullopt, now, EventReason::kUnregistered);
    }
    return AwaitCommit(write);
  }

  absl::StatusOr<Entry> Resolve(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
    absl::ReaderMutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    auto it = records_.find(key);
    if (it == records_.end() || !it->second.LiveAt(now)) {
      return absl::NotFoundError(
          absl::StrCat("no peer named \"", name, "\" is registered"));
    }
    return ToEntry(it->second, now);
  }

  ListPage List(const std::string& prefix, size_t page_size,
                const std::string& page_token) override {
    const std::string key_prefix = NameKey(prefix);
    page_size = std::max<size_t>(page_size, 1);
    ListPage page;
    absl::ReaderMutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    // The token is the last key of the previous page; resume after it.
    auto it = page_token.empty() || page_token < key_prefix
                  ? records_.lower_bound(key_prefix)
                  : records_.upper_bound(page_token);
    for (; it != records_.end() && absl::StartsWith(it->first, key_prefix);
         ++it) {
      if (!it->second.LiveAt(now)) continue;
      if (page.entries.size() == page_size) {
        page.next_page_token = NameKey(page.entries.back().name);
        break;
      }
      page.entries.push_back(ToEntry(it->second, now));
    }
    return page;
  }

  std::unique_ptr<Watch> Subscribe(const std::string& prefix,
                                   std::function<void()> on_ready) override {
    std::string key_prefix = NameKey(prefix);
    // Exclusive: no change may slip between the snapshot and the subscription.
    absl::MutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    std::vector<WatchEvent> initial;
    for (auto it = records_.lower_bound(key_prefix);
         it != records_.end() && absl::StartsWith(it->first, key_prefix);
         ++it) {
      if (!it->second.LiveAt(now)) continue;
      initial.push_back(WatchEvent{EventType::kPut, EventReason::kInitial,
                                   ToEntry(it->second, now)});
    }
    return hub_.Subscribe(std::move(key_prefix), std::move(initial),
                          std::move(on_ready));
  }

  absl::StatusOr<std::vector<Entry>> ExpireDue() override {
    PendingWrite write;
    std::vector<Entry> expired;
    {
      absl::MutexLock write_lock(&write_mu_);
      const MonoTime now = clock_.Monotonic();
      std::vector<std::string> due;
      {
        absl::ReaderMutexLock lock(&mu_);
        for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now;
             ++it) {
          due.push_back(it->second);
        }
      }
      // A due lease cannot be renewed (KeepAlive refuses it) and every other
      // change waits for write_mu_, so the due records are still here.
      if (due.empty()) return expired;
      const int64_t wall_ms = absl::ToUnixMillis(clock_.Wall());
      {
        absl::MutexLock lock(&mu_);
        for (std::string& key : due) {
          write.changes.push_back(
              Change{std::move(key), std::nullopt, std::nullopt, wall_ms});
          Change& change = write.changes.back();
          Apply(change, now, EventReason::kExpired);
          expired.push_back(ToEntry(*change.before, now));
        }
      }
      Enqueue(write);
    }
    CHAT_RETURN_IF_ERROR(AwaitCommit(write));
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

  void CancelWatches() override { hub_.CancelAll(); }

 private:
  std::optional<Record> Find(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReaderMutexLock lock(&mu_);
    auto it = records_.find(key);
    if (it == records_.end()) return std::nullopt;
    return it->second;
  }

  absl::Status HeldError(const Record& holder, MonoTime now) const {
    if (holder.is_static()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "\"", holder.name,
          "\" is a static entry (an operator can remove it with: chatctl "
          "unregister ",
          holder.name, " --static)"));
    }
    const int64_t left_ms = MillisUntil(holder.expires_at, now);
    return absl::AlreadyExistsError(absl::StrFormat(
        "\"%s\" is held by another live lease until %s (%.1f s from now "
        "unless it is renewed)",
        holder.name,
        FormatWallTime(clock_.Wall() + absl::Milliseconds(left_ms)),
        static_cast<double>(left_ms) / 1000.0));
  }

  // OK when `record` is a live lease held by `lease_id`.
  static absl::Status CheckHolder(const std::string& name,
                                  const std::string& lease_id,
                                  const Record* record, MonoTime now) {
    if (lease_id.empty()) {
      return absl::InvalidArgumentError("lease id is empty");
    }
    if (record == nullptr || !record->LiveAt(now)) {
      return absl::NotFoundError(absl::StrCat(
          "no live lease holds \"", name, "\" (it expired; register again)"));
    }
    if (record->is_static() || !SameSecret(record->lease_id, lease_id)) {
      return absl::PermissionDeniedError(
          absl::StrCat("that lease id does not hold \"", record->name, "\""));
    }
    return absl::OkStatus();
  }

  // Records the decision that `key` now holds `record` (or nothing): applies
  // it to memory, tells watchers, and queues the row write, all under
  // write_mu_, so the file changes in the order of the decisions.
  void Decide(PendingWrite& write, const std::string& key,
              std::optional<Record> record, MonoTime now,
              EventReason delete_reason = EventReason::kUnregistered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    write.changes.push_back(Change{key, std::nullopt, std::move(record),
                                   absl::ToUnixMillis(clock_.Wall())});
    {
      absl::MutexLock lock(&mu_);
      Apply(write.changes.back(), now, delete_reason);
    }
    Enqueue(write);
  }

  // Makes memory hold `change.after` under its key (or nothing), remembers in
  // `change.before` what it held, and tells watchers.
  void Apply(Change& change, MonoTime now, EventReason delete_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_) {
    const std::string& key = change.key;
    // Read again under mu_: a KeepAlive may have moved the expiry since the
    // decision (it cannot change whether the record is live).
    auto it = records_.find(key);
    if (it != records_.end()) change.before = it->second;
    std::optional<Record>& old = change.before;
    const bool old_live = old && old->LiveAt(now);
    if (old) {
      if (!old->is_static()) expiry_.erase({old->expires_at, key});
      if (!old_live && !old->expiry_reported) {
        // It expired but the loop had not removed it yet: report that first.
        hub_.Publish(key, WatchEvent{EventType::kDelete, EventReason::kExpired,
                                     ToEntry(*old, now)});
        old->expiry_reported = true;
      }
    }
    if (!change.after) {
      if (it != records_.end()) records_.erase(it);
      if (old_live) {
        hub_.Publish(key, WatchEvent{EventType::kDelete, delete_reason,
                                     ToEntry(*old, now)});
      }
      return;
    }
    const Record& record = *change.after;
    if (!record.is_static()) expiry_.emplace(record.expires_at, key);
    EventReason reason = EventReason::kRegistered;
    if (old_live) {
      reason = old->address == record.address ? EventReason::kNone
                                              : EventReason::kAddressChanged;
    }
    records_[key] = record;
    if (reason != EventReason::kNone) {
      hub_.Publish(key,
                   WatchEvent{EventType::kPut, reason, ToEntry(record, now)});
    }
  }

  // Puts back what `change` replaced, as if it never happened, and tells
  // watchers whatever takes them back to that state. Changes are undone
  // newest first, so memory holds exactly what `change` left.
  void Undo(const Change& change, MonoTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_, mu_) {
    const std::string& key = change.key;
    std::optional<Record> current;
    if (auto it = records_.find(key); it != records_.end()) {
      if (!it->second.is_static()) expiry_.erase({it->second.expires_at, key});
      current = std::move(it->second);
      records_.erase(it);
    }
    // What watchers believe is there now, and should believe afterwards.
    const bool seen_now = current && !current->expiry_reported;
    const bool seen_after = change.before && !change.before->expiry_reported &&
                            change.before->LiveAt(now);
    if (change.before) {
      Record restored = *change.before;
      // One that ran out meanwhile stays out of the watchers' view.
      restored.expiry_reported = !seen_after;
      if (!restored.is_static()) expiry_.emplace(restored.expires_at, key);
      records_[key] = std::move(restored);
    }
    if (seen_now && !seen_after) {
      hub_.Publish(key,
                   WatchEvent{EventType::kDelete,
                              current->LiveAt(now) ? EventReason::kUnregistered
                                                   : EventReason::kExpired,
                              ToEntry(*current, now)});
    } else if (!seen_now && seen_after) {
      hub_.Publish(key, WatchEvent{EventType::kPut, EventReason::kRegistered,
                                   ToEntry(*change.before, now)});
    } else if (seen_now && seen_after &&
               current->address != change.before->address) {
      hub_.Publish(key,
                   WatchEvent{EventType::kPut, EventReason::kAddressChanged,
                              ToEntry(*change.before, now)});
    }
  }

  void Enqueue(PendingWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::MutexLock lock(&commit_mu_);
    queue_.push_back(&write);
  }

  // Group commit. Blocks until `write` is committed (OK) or undone (its
  // error). The first waiter to find no commit running commits everything
  // queued so far in one transaction, for itself and the others.
  absl::Status AwaitCommit(PendingWrite& write)
      ABSL_LOCKS_EXCLUDED(write_mu_, commit_mu_) {
    struct Wait {
      SqliteStore* store;
      PendingWrite* write;
    } wait{this, &write};
    commit_mu_.Lock();
    while (!write.done) {
      if (committing_) {
        commit_mu_.Await(absl::Condition(
            +[](Wait* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->store->commit_mu_) {
              return w->write->done || !w->store->committing_;
            },
            &wait));
        continue;
      }
      // This caller commits: `write` is queued, no commit is running.
      committing_ = true;
      std::vector<PendingWrite*> batch;
      batch.swap(queue_);
      commit_mu_.Unlock();
      absl::Status status = CommitBatch(batch);
      if (!status.ok()) {
        Fail(std::move(batch), status);  // Marks them done.
        commit_mu_.Lock();
        continue;
      }
      commit_mu_.Lock();
      for (PendingWrite* committed : batch) committed->done = true;
      committing_ = false;
    }
    absl::Status status = write.status;
    commit_mu_.Unlock();
    return status;
  }

  // Writes every change of `batch` in one transaction.
  absl::Status CommitBatch(const std::vector<PendingWrite*>& batch)
      ABSL_LOCKS_EXCLUDED(db_mu_) {
    absl::MutexLock lock(&db_mu_);
    SQLite::Statement& upsert = *database_->upsert;
    SQLite::Statement& remove = *database_->remove;
    try {
      SQLite::Transaction transaction(database_->db,
                                      SQLite::TransactionBehavior::IMMEDIATE);
      for (const PendingWrite* write : batch) {
        for (const Change& change : write->changes) {
          if (change.after) {
            WriteRow(upsert, change.key, *change.after, change.updated_at_ms);
          } else {
            remove.bind(1, change.key);
            remove.exec();
            remove.reset();
          }
        }
      }
      transaction.commit();
    } catch (const std::exception& e) {
      upsert.tryReset();
      remove.tryReset();
      return StorageError("write", e);
    }
    return absl::OkStatus();
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
    upsert.exec();
    upsert.reset();
  }

  // The commit of `batch` failed: nothing of it is on disk. Every write
  // queued since was decided on top of it, so it fails too; memory goes back
  // to what the file holds, newest change first, and every caller hears
  // `status`.
  void Fail(std::vector<PendingWrite*> batch, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(write_mu_, mu_, commit_mu_) {
    absl::MutexLock write_lock(&write_mu_);
    {
      absl::MutexLock lock(&commit_mu_);
      batch.insert(batch.end(), queue_.begin(), queue_.end());
      queue_.clear();
    }
    size_t changes = 0;
    {
      absl::MutexLock lock(&mu_);
      const MonoTime now = clock_.Monotonic();
      for (auto write = batch.rbegin(); write != batch.rend(); ++write) {
        for (auto change = (*write)->changes.rbegin();
             change != (*write)->changes.rend(); ++change) {
          Undo(*change, now);
          ++changes;
        }
      }
    }
    LogLine("registry",
            absl::StrCat("undid ", changes, " change(s) of ", batch.size(),
                         " call(s): ", status.message()));
    absl::MutexLock lock(&commit_mu_);
    for (PendingWrite* write : batch) {
      write->status = status;
      write->done = true;
    }
    committing_ = false;
  }

  const Clock& clock_;
  const SqliteStoreOptions options_;
  // Keeps other registries off the file; none for ":memory:". Declared
  // before database_ so the file closes before the lock goes.
  std::optional<FileLock> lock_;
  WatchHub hub_;

  // Serialises every decision to change a name: it is taken against memory,
  // applied to memory and queued for the file under this lock, so the file
  // and memory change in the same order. Readers never take it; nobody waits
  // for the disk while holding it.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_, commit_mu_);

  // The queue of decided writes and the group commit of it.
  absl::Mutex commit_mu_;
  std::vector<PendingWrite*> queue_ ABSL_GUARDED_BY(commit_mu_);
  bool committing_ ABSL_GUARDED_BY(commit_mu_) = false;

  // The connection, used by one committer at a time.
  absl::Mutex db_mu_;
  std::unique_ptr<Database> database_ ABSL_GUARDED_BY(db_mu_);

  // Guards the in-memory index that serves every read.
  absl::Mutex mu_;
  absl::btree_map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  // (expires_at, key) of every leased record, soonest first.
  std::set<std::pair<MonoTime, std::string>> expiry_ ABSL_GUARDED_BY(mu_);
};

absl::btree_map<std::string, Record> LoadRecords(SQLite::Database& db,
                                                 MonoTime now) {
  absl::btree_map<std::string, Record> records;
  SQLite::Statement select(
      db, "SELECT name_key, name, address, lease_id, ttl_ms FROM names");
  while (select.executeStep()) {
    Record record;
    std::string key = select.getColumn(0).getString();
    record.name = select.getColumn(1).getString();
    record.address = select.getColumn(2).getString();
    record.lease_id = select.getColumn(3).getString();  // "" for NULL.
    record.ttl = Millis(select.getColumn(4).getInt64());
    // Every surviving lease gets its full TTL again.
    record.expires_at = now + record.ttl;
    if (key != NameKey(record.name) || !ValidateName(record.name).ok() ||
        !ValidateAddress(record.address).ok()) {
      LogLine("registry", absl::StrCat("skipping malformed row for \"", key,
                                       "\" in the database"));
      continue;
    }
    records.emplace(std::move(key), std::move(record));
  }
  return records;
}

}  // namespace

Millis GrantedTtl(const LeasePolicy& policy, Millis requested) {
  if (requested.count() <= 0) requested = policy.default_ttl;
  return std::clamp(requested, policy.min_ttl, policy.max_ttl);
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, const Clock& clock,
    const SqliteStoreOptions& options) {
  const bool in_memory = path == ":memory:";
  std::optional<FileLock> lock;
  if (!in_memory) {
    absl::StatusOr<FileLock> acquired =
        FileLock::Acquire(path, "chat-registry");
    if (!acquired.ok()) return acquired.status();
    lock = *std::move(acquired);
  }
  try {
    auto database = std::make_unique<Database>(path);
    SQLite::Database& db = database->db;
    db.setBusyTimeout(5000);
    if (!in_memory) db.exec("PRAGMA journal_mode = WAL");
    db.exec(options.sync_full ? "PRAGMA synchronous = FULL"
                              : "PRAGMA synchronous = NORMAL");
    absl::Status migrated = MigrateRegistryDatabase(db, path);
    if (!migrated.ok()) return migrated;
    database->upsert = std::make_unique<SQLite::Statement>(
        db,
        "INSERT INTO names (name_key, name, address, lease_id, ttl_ms, "
        "updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (name_key) DO UPDATE SET name = ?2, address = ?3, "
        "lease_id = ?4, ttl_ms = ?5, updated_at_ms = ?6");
    database->remove = std::make_unique<SQLite::Statement>(
        db, "DELETE FROM names WHERE name_key = ?1");
    auto records = LoadRecords(db, clock.Monotonic());
    return std::unique_ptr<Store>(
        new SqliteStore(clock, options, std::move(database), std::move(lock),
                        std::move(records)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open registry database ", path, ": ", e.what()));
  }
}

}  // namespace chat::registry
