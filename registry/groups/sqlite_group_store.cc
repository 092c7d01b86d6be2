#include "registry/groups/sqlite_group_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "registry/groups/group_store_rules.h"

namespace chat::registry {
namespace {

// The group file's schema; migration i brings user_version from i to i+1.
// Append only: a file in the field may be at any earlier version.
const char* const kGroupMigrations[] = {
    // 1: every version of every group, and each group's latest (what Put
    // compares with and the quotas count).
    R"sql(
      CREATE TABLE groups (
        group_id       TEXT PRIMARY KEY NOT NULL,
        latest_version INTEGER NOT NULL,
        owner_key      TEXT NOT NULL,     -- the latest version's owner
        ended          INTEGER NOT NULL   -- 1: the latest version ended it
      ) WITHOUT ROWID;
      CREATE INDEX groups_by_live_owner ON groups (owner_key) WHERE ended = 0;
      CREATE TABLE group_states (
        group_id  TEXT NOT NULL,
        version   INTEGER NOT NULL,
        owner_key TEXT NOT NULL,
        ended     INTEGER NOT NULL,
        state     BLOB NOT NULL,          -- the serialized GroupState
        PRIMARY KEY (group_id, version)
      );
    )sql",
};

constexpr char kSelectHead[] =
    "SELECT latest_version, owner_key, ended FROM groups WHERE group_id = ?1";
constexpr char kCountLiveOwned[] =
    "SELECT count(*) FROM groups WHERE owner_key = ?1 AND ended = 0";
constexpr char kSelectStates[] =
    "SELECT version, owner_key, ended, state FROM group_states WHERE "
    "group_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3";
constexpr char kInsertState[] =
    "INSERT INTO group_states (group_id, version, owner_key, ended, state) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr char kUpsertHead[] =
    "INSERT OR REPLACE INTO groups (group_id, latest_version, owner_key, "
    "ended) VALUES (?1, ?2, ?3, ?4)";

absl::Status StorageError(const std::string& what, const std::exception& e) {
  if (const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
      sqlite != nullptr && sqlite->getErrorCode() == SQLITE_FULL) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the group store's disk is full (", e.what(), ")"));
  }
  return absl::UnavailableError(
      absl::StrCat("group storage failed to ", what, ": ", e.what()));
}

class SqliteGroupStore final : public GroupStore {
 public:
  SqliteGroupStore(SqliteFile file, size_t groups,
                   const GroupStoreLimits& limits)
      : limits_(limits),
        lock_(std::move(file.lock)),
        db_(std::move(file.db)),
        statements_(db_.get()),
        groups_(groups) {
    batch_ = std::make_unique<SqliteBatch>(db_.get(), &db_mu_);
  }

  ~SqliteGroupStore() override {
    batch_->Stop();  // Finishes queued writes.
    absl::MutexLock lock(&db_mu_);
    statements_.Clear();
    db_.reset();
  }

  absl::StatusOr<GroupPutOutcome> Put(const StoredGroupState& next) override {
    CHAT_RETURN_IF_ERROR(ValidateGroupPut(next, limits_));
    GroupPutOutcome outcome;
    bool counted_new_group = false;
    const absl::Status status = batch_->Run(
        [this, &next, &outcome, &counted_new_group](SQLite::Database&) {
          db_mu_.AssertHeld();
          try {
            return PutLocked(next, outcome, counted_new_group);
          } catch (const std::exception& e) {
            return StorageError("write", e);
          }
        },
        [this, &counted_new_group](const absl::Status&) {
          db_mu_.AssertHeld();
          // Rolled back: so is the count it made.
          if (counted_new_group) --groups_;
          counted_new_group = false;
        });
    if (!status.ok()) return status;
    return outcome;
  }

  absl::StatusOr<GroupStatesPage> Get(const std::string& group_id,
                                      int64_t after_version,
                                      int max_states) override {
    CHAT_RETURN_IF_ERROR(ValidateGroupId(group_id));
    CHAT_ASSIGN_OR_RETURN(const int page, GroupPageSize(max_states, limits_));
    absl::MutexLock lock(&db_mu_);
    try {
      // One read transaction: the page and the latest agree.
      SQLite::Transaction read(*db_, SQLite::TransactionBehavior::DEFERRED);
      std::optional<GroupHead> head = HeadLocked(group_id);
      if (!head.has_value()) return NotHeld(group_id);
      GroupStatesPage result;
      result.latest_version = head->version;
      result.states = StatesLocked(group_id, after_version, page);
      read.commit();
      return result;
    } catch (const std::exception& e) {
      return StorageError("read", e);
    }
  }

  absl::StatusOr<StoredGroupState> Latest(
      const std::string& group_id) override {
    CHAT_RETURN_IF_ERROR(ValidateGroupId(group_id));
    absl::MutexLock lock(&db_mu_);
    try {
      std::optional<StoredGroupState> latest = LatestLocked(group_id);
      if (!latest.has_value()) return NotHeld(group_id);
      return *std::move(latest);
    } catch (const std::exception& e) {
      return StorageError("read", e);
    }
  }

 private:
  static absl::Status NotHeld(const std::string& group_id) {
    return absl::NotFoundError(
        absl::StrCat("group ", group_id, " is not held here"));
  }

  // Inside the batch's transaction. Throws on storage failure.
  absl::Status PutLocked(const StoredGroupState& next, GroupPutOutcome& outcome,
                         bool& counted_new_group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    const std::optional<GroupHead> head = HeadLocked(next.group_id);
    GroupCounts counts;
    counts.groups = groups_;
    {
      ScopedStatement count(statements_, kCountLiveOwned);
      count->bind(1, next.owner_key);
      if (count->executeStep()) {
        counts.next_owner_groups =
            static_cast<size_t>(count->getColumn(0).getInt64());
      }
    }
    CHAT_ASSIGN_OR_RETURN(const GroupPutPlan plan,
                          DecideGroupPut(head, next, counts, limits_));
    if (!plan.accept) {
      std::optional<StoredGroupState> latest = LatestLocked(next.group_id);
      if (!latest.has_value()) {
        return absl::DataLossError(absl::StrCat("group ", next.group_id,
                                                " has no state at version ",
                                                head->version));
      }
      outcome.accepted = false;
      outcome.current = *std::move(latest);
      return absl::OkStatus();
    }
    {
      ScopedStatement insert(statements_, kInsertState);
      insert->bind(1, next.group_id);
      insert->bind(2, next.version);
      insert->bind(3, next.owner_key);
      insert->bind(4, next.ended ? 1 : 0);
      insert->bind(5, next.state.data(), static_cast<int>(next.state.size()));
      insert->exec();
    }
    {
      ScopedStatement upsert(statements_, kUpsertHead);
      upsert->bind(1, next.group_id);
      upsert->bind(2, next.version);
      upsert->bind(3, next.owner_key);
      upsert->bind(4, next.ended ? 1 : 0);
      upsert->exec();
    }
    if (plan.new_group) {
      ++groups_;
      counted_new_group = true;
    }
    outcome.accepted = true;
    return absl::OkStatus();
  }

  std::optional<GroupHead> HeadLocked(const std::string& group_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    ScopedStatement select(statements_, kSelectHead);
    select->bind(1, group_id);
    if (!select->executeStep()) return std::nullopt;
    GroupHead head;
    head.version = select->getColumn(0).getInt64();
    head.owner_key = select->getColumn(1).getString();
    head.ended = select->getColumn(2).getInt() != 0;
    return head;
  }

  std::vector<StoredGroupState> StatesLocked(const std::string& group_id,
                                             int64_t after_version, int max)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    std::vector<StoredGroupState> states;
    ScopedStatement select(statements_, kSelectStates);
    select->bind(1, group_id);
    select->bind(2, after_version);
    select->bind(3, max);
    while (select->executeStep()) {
      StoredGroupState state;
      state.group_id = group_id;
      state.version = select->getColumn(0).getInt64();
      state.owner_key = select->getColumn(1).getString();
      state.ended = select->getColumn(2).getInt() != 0;
      SQLite::Column bytes = select->getColumn(3);
      state.state.assign(static_cast<const char*>(bytes.getBlob()),
                         static_cast<size_t>(bytes.getBytes()));
      states.push_back(std::move(state));
    }
    return states;
  }

  std::optional<StoredGroupState> LatestLocked(const std::string& group_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    const std::optional<GroupHead> head = HeadLocked(group_id);
    if (!head.has_value()) return std::nullopt;
    std::vector<StoredGroupState> states =
        StatesLocked(group_id, head->version - 1, 1);
    if (states.empty()) return std::nullopt;
    return std::move(states.front());
  }

  const GroupStoreLimits limits_;
  std::optional<FileLock> lock_;  // Keeps other processes off the file.
  absl::Mutex db_mu_;             // One thread at a time on the connection.
  std::unique_ptr<SQLite::Database> db_ ABSL_GUARDED_BY(db_mu_);
  SqliteStatements statements_ ABSL_GUARDED_BY(db_mu_);
  // Groups in all, kept in step with the file, so --max-groups costs no
  // count of the table per creation. Changed only by the writer thread.
  size_t groups_ ABSL_GUARDED_BY(db_mu_);
  // Declared last: stopped (its queue finished) before the rest goes.
  std::unique_ptr<SqliteBatch> batch_;
};

}  // namespace

std::string GroupStorePath(const std::string& registry_path) {
  return SiblingDatabasePath(registry_path, "groups");
}

absl::StatusOr<std::unique_ptr<GroupStore>> OpenSqliteGroupStore(
    const std::string& registry_path, const GroupStoreLimits& limits) {
  CHAT_RETURN_IF_ERROR(ValidateGroupStoreLimits(limits));
  const std::string path = GroupStorePath(registry_path);
  // An accepted version must survive power loss (else another state could
  // take it after a restart, and members would see the group fork): FULL,
  // made cheap by group commit.
  SqliteOpenOptions options;
  options.what = "group database";
  options.program = "chat-registry";
  options.sync_full = true;
  options.lock = true;
  options.migrations.assign(std::begin(kGroupMigrations),
                            std::end(kGroupMigrations));
  absl::StatusOr<SqliteFile> file = OpenSqlite(path, options);
  if (!file.ok()) return file.status();
  try {
    const auto groups = static_cast<size_t>(
        file->db->execAndGet("SELECT count(*) FROM groups").getInt64());
    return std::unique_ptr<GroupStore>(
        new SqliteGroupStore(*std::move(file), groups, limits));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open group database ", path, ": ", e.what()));
  }
}

}  // namespace chat::registry
