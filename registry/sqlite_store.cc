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

  ~SqliteStore() override {
    hub_.CancelAll();
    {
      absl::MutexLock lock(&write_mu_);
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
    CHAT_RETURN_IF_ERROR(WriteRow(key, record));

    Lease lease{record.lease_id, ToEntry(record, now)};
    Apply(key, old, std::move(record), now);
    return lease;
  }

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
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    std::optional<Record> old = Find(key);
    CHAT_RETURN_IF_ERROR(
        CheckHolder(name, lease_id, old ? &*old : nullptr, now));
    CHAT_RETURN_IF_ERROR(DeleteRows({key}));
    Apply(key, old, std::nullopt, now, EventReason::kUnregistered);
    return absl::OkStatus();
  }

  absl::StatusOr<Entry> PutStatic(const std::string& name,
                                  const std::string& address) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    CHAT_RETURN_IF_ERROR(ValidateAddress(address));
    const std::string key = NameKey(name);
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
    CHAT_RETURN_IF_ERROR(WriteRow(key, record));
    Entry entry = ToEntry(record, now);
    Apply(key, old, std::move(record), now);
    return entry;
  }

  absl::Status RemoveStatic(const std::string& name) override {
    CHAT_RETURN_IF_ERROR(ValidateName(name));
    const std::string key = NameKey(name);
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
    CHAT_RETURN_IF_ERROR(DeleteRows({key}));
    Apply(key, old, std::nullopt, now, EventReason::kUnregistered);
    return absl::OkStatus();
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
    if (due.empty()) return std::vector<Entry>();
    CHAT_RETURN_IF_ERROR(DeleteRows(due));

    // A due lease cannot be renewed (KeepAlive refuses it) and every other
    // change waits for write_mu_, so the due records are still here.
    std::vector<Entry> expired;
    absl::MutexLock lock(&mu_);
    for (const std::string& key : due) {
      auto it = records_.find(key);
      Entry entry = ToEntry(it->second, now);
      expiry_.erase({it->second.expires_at, key});
      records_.erase(it);
      hub_.Publish(
          key, WatchEvent{EventType::kDelete, EventReason::kExpired, entry});
      expired.push_back(std::move(entry));
    }
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

  absl::Status WriteRow(const std::string& key, const Record& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    SQLite::Statement& upsert = *database_->upsert;
    try {
      upsert.reset();
      upsert.bind(1, key);
      upsert.bind(2, record.name);
      upsert.bind(3, record.address);
      if (record.is_static()) {
        upsert.bind(4);  // NULL
      } else {
        upsert.bind(4, record.lease_id);
      }
      upsert.bind(5, static_cast<int64_t>(record.ttl.count()));
      upsert.bind(6, absl::ToUnixMillis(clock_.Wall()));
      upsert.exec();
      upsert.reset();
    } catch (const std::exception& e) {
      upsert.tryReset();
      return StorageError("write", e);
    }
    return absl::OkStatus();
  }

  absl::Status DeleteRows(const std::vector<std::string>& keys)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    SQLite::Statement& remove = *database_->remove;
    try {
      SQLite::Transaction transaction(database_->db);
      for (const std::string& key : keys) {
        remove.reset();
        remove.bind(1, key);
        remove.exec();
      }
      remove.reset();
      transaction.commit();
    } catch (const std::exception& e) {
      remove.tryReset();
      return StorageError("delete", e);
    }
    return absl::OkStatus();
  }

  // Makes memory match what was just written: `key` now holds `record` (or
  // nothing), and watchers hear of the change.
  void Apply(const std::string& key, const std::optional<Record>& old,
             std::optional<Record> record, MonoTime now,
             EventReason delete_reason = EventReason::kUnregistered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::MutexLock lock(&mu_);
    bool old_live = old && old->LiveAt(now);
    if (old) {
      if (!old->is_static()) expiry_.erase({old->expires_at, key});
      if (!old_live) {
        // It expired but the loop had not removed it yet: report that first.
        hub_.Publish(key, WatchEvent{EventType::kDelete, EventReason::kExpired,
                                     ToEntry(*old, now)});
      }
    }
    if (!record) {
      records_.erase(key);
      if (old_live) {
        hub_.Publish(key, WatchEvent{EventType::kDelete, delete_reason,
                                     ToEntry(*old, now)});
      }
      return;
    }
    if (!record->is_static()) expiry_.emplace(record->expires_at, key);
    EventReason reason = EventReason::kRegistered;
    if (old_live) {
      reason = old->address == record->address ? EventReason::kNone
                                               : EventReason::kAddressChanged;
    }
    Entry entry = ToEntry(*record, now);
    records_[key] = std::move(*record);
    if (reason != EventReason::kNone) {
      hub_.Publish(key, WatchEvent{EventType::kPut, reason, std::move(entry)});
    }
  }

  const Clock& clock_;
  const SqliteStoreOptions options_;
  // Keeps other registries off the file; none for ":memory:". Declared
  // before database_ so the file closes before the lock goes.
  std::optional<FileLock> lock_;
  WatchHub hub_;

  // Serialises every mutation that touches the file, so the file and memory
  // change in the same order. Readers never take it.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::unique_ptr<Database> database_ ABSL_GUARDED_BY(write_mu_);

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
