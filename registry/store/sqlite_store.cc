#include "registry/store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <malloc.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/random.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "registry/names.h"
#include "registry/store/name_index.h"
#include "registry/store/sqlite_schema.h"
#include "registry/store/sqlite_store_internal.h"
#include "registry/store/store_rules.h"

namespace chat::registry {
namespace sqlite_store_internal {
namespace {

// How readers see a record at `now`: while its lease lasts (ExpireDue
// removes it later).
auto ShownIfLive(MonoTime now) {
  return [now](const Record& record) -> std::optional<Entry> {
    if (!record.LiveAt(now)) return std::nullopt;
    return ToEntry(record, now);
  };
}

}  // namespace

Database::~Database() {
  upsert.reset();
  remove.reset();
  upsert_binding.reset();
  remove_binding.reset();
  db.reset();
}

SqliteStore::SqliteStore(const Clock& clock, const SqliteStoreOptions& options,
                         std::unique_ptr<Database> database,
                         std::optional<FileLock> lock,
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

SqliteStore::~SqliteStore() {
  hub_.CancelAll();
  batch_->Stop();
  absl::MutexLock lock(&db_mu_);
  database_.reset();  // Closes the file before the lock is released.
}

absl::Status SqliteStore::VerifyLease(const std::string& name,
                                      const std::string& lease_id) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  absl::ReaderMutexLock lock(&mu_);
  auto it = records_.find(NameKey(name));
  return CheckHolder(name, lease_id,
                     it == records_.end() ? nullptr : &it->second.record,
                     clock_.Monotonic());
}

absl::StatusOr<Binding> SqliteStore::GetBinding(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const NameState state = Find(NameKey(name));
  return BindingOf(name, state, options_.lease_policy, clock_.Monotonic(),
                   clock_.Wall());
}

absl::StatusOr<Entry> SqliteStore::Resolve(const std::string& name) {
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

ListPage SqliteStore::List(const std::string& prefix, size_t page_size,
                           const std::string& page_token,
                           const std::string& service) {
  absl::ReaderMutexLock lock(&mu_);
  return records_.List(NameKey(prefix), page_size, page_token, service,
                       ShownIfLive(clock_.Monotonic()));
}

std::unique_ptr<Watch> SqliteStore::Subscribe(const WatchScope& scope,
                                              int64_t resume_after,
                                              std::function<void()> on_ready) {
  return hub_.Subscribe(WatchKeys(scope), resume_after, std::move(on_ready));
}

void SqliteStore::ReadSnapshotPage(const WatchKeys& scope,
                                   const std::string& after, size_t max,
                                   PageTaker take) {
  // Shared is enough: Publish() runs under mu_ held exclusively.
  absl::ReaderMutexLock lock(&mu_);
  IndexPage page = records_.ReadSnapshotPage(
      scope, after, max, ShownIfLive(clock_.Monotonic()), &committed_);
  take(std::move(page.entries), page.last_key, page.done);
}

size_t SqliteStore::Size() {
  absl::ReaderMutexLock lock(&mu_);
  const MonoTime now = clock_.Monotonic();
  size_t due = 0;
  for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now;
       ++it) {
    ++due;
  }
  return records_.size() - due;
}

size_t SqliteStore::CountOffering(const std::string& service) {
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

NameState SqliteStore::Find(const std::string& key) {
  absl::ReaderMutexLock lock(&mu_);
  NameState state;
  auto it = records_.find(key);
  if (it != records_.end()) state.record = it->second.record;
  state.binding = FindBinding(key);
  return state;
}

NameCounts SqliteStore::Counts(const std::string& owner) {
  absl::ReaderMutexLock lock(&mu_);
  return records_.counts().For(owner);
}

std::optional<BindingRecord> SqliteStore::FindBinding(const std::string& key) {
  auto it = bindings_.find(key);
  if (it == bindings_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sqlite_store_internal

namespace {

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
  auto database = std::make_unique<sqlite_store_internal::Database>();
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
    auto store = std::unique_ptr<Store>(new sqlite_store_internal::SqliteStore(
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
