#include "registry/mailbox/sqlite_mailbox.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/identity.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "registry/mailbox/arrival_hub.h"
#include "registry/mailbox/mailbox_rules.h"
#include "registry/names.h"

namespace chat::registry {
namespace {

constexpr int kKindMessage = 1;
constexpr int kKindReceipt = 2;
constexpr int kKindReadReceipt = 3;
constexpr int kKindExpired = 4;

int KindColumn(MailItem::Kind kind) {
  switch (kind) {
    case MailItem::Kind::kReceipt:
      return kKindReceipt;
    case MailItem::Kind::kReadReceipt:
      return kKindReadReceipt;
    case MailItem::Kind::kExpired:
      return kKindExpired;
    case MailItem::Kind::kMessage:
      break;
  }
  return kKindMessage;
}

MailItem::Kind KindFromColumn(int column) {
  switch (column) {
    case kKindReceipt:
      return MailItem::Kind::kReceipt;
    case kKindReadReceipt:
      return MailItem::Kind::kReadReceipt;
    case kKindExpired:
      return MailItem::Kind::kExpired;
    default:
      return MailItem::Kind::kMessage;
  }
}

absl::Status StorageError(const std::string& what, const std::exception& e) {
  // The file reached its page cap (or the disk is full): the mailbox is
  // full, not broken.
  if (const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
      sqlite != nullptr && sqlite->getErrorCode() == SQLITE_FULL) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the mailbox file is full (", e.what(),
                     "); see --mailbox-max-total-mb"));
  }
  return absl::UnavailableError(
      absl::StrCat("mailbox storage failed to ", what, ": ", e.what()));
}

// The mailbox file's schema; migration i brings user_version from i to
// i+1. Append only. (Older registries kept mail in the registry's own file,
// in a table of the same shape without `origin`; OpenSqliteMailbox moves
// it.)
const char* const kMailMigrations[] = {
    R"sql(
      CREATE TABLE mail (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
        recipient_key   TEXT NOT NULL,                      -- lowercase
        id              TEXT NOT NULL,
        kind            INTEGER NOT NULL,  -- 1 message, 2 receipt,
                                           -- 3 read receipt, 4 expired
        sender          TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        payload         BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL,
        origin          TEXT NOT NULL DEFAULT '',  -- who deposited it
        UNIQUE (recipient_key, id)
      );
      CREATE INDEX mail_by_recipient ON mail (recipient_key, seq);
      CREATE INDEX mail_by_age ON mail (deposited_at_ms);
    )sql",
    // 2: an item is named by its id and the digest of its payload, so a
    // deposit made first under a message's id (by whoever learnt it) cannot
    // take the message's place. SQLite cannot drop a UNIQUE constraint: the
    // table is made again, its rows and its AUTOINCREMENT counter (Listen
    // resumes after a seq) carried over. The digests of the rows carried
    // over are filled in by FillDigests() (SQL has no BLAKE2b).
    R"sql(
      CREATE TABLE mail_v2 (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient_key   TEXT NOT NULL,
        id              TEXT NOT NULL,
        kind            INTEGER NOT NULL,
        sender          TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        payload         BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL,
        origin          TEXT NOT NULL DEFAULT '',
        digest          BLOB NOT NULL DEFAULT X'',  -- BLAKE2b-256 of payload
        UNIQUE (recipient_key, id, digest)
      );
      INSERT INTO mail_v2 (seq, recipient_key, id, kind, sender, recipient,
                           payload, deposited_at_ms, origin)
        SELECT seq, recipient_key, id, kind, sender, recipient, payload,
               deposited_at_ms, origin FROM mail ORDER BY seq;
      DELETE FROM sqlite_sequence WHERE name = 'mail_v2';
      INSERT INTO sqlite_sequence (name, seq)
        SELECT 'mail_v2', seq FROM sqlite_sequence WHERE name = 'mail';
      DROP TABLE mail;
      ALTER TABLE mail_v2 RENAME TO mail;
      CREATE INDEX mail_by_recipient ON mail (recipient_key, seq);
      CREATE INDEX mail_by_age ON mail (deposited_at_ms);
    )sql",
};

// Sets the digest of every row that has none (carried over by migration 2,
// or moved from an older registry's file). May throw.
void FillDigests(SQLite::Database& db) {
  std::vector<std::pair<int64_t, std::string>> rows;
  {
    SQLite::Statement select(
        db, "SELECT seq, payload FROM mail WHERE length(digest) = 0");
    while (select.executeStep()) {
      SQLite::Column payload = select.getColumn(1);
      rows.emplace_back(select.getColumn(0).getInt64(),
                        std::string(static_cast<const char*>(payload.getBlob()),
                                    static_cast<size_t>(payload.getBytes())));
    }
  }
  if (rows.empty()) return;
  SQLite::Transaction transaction(db);
  // OR IGNORE: two rows that differ only in a missing digest cannot exist
  // (the old key was (recipient, id)), but a row moved twice could.
  SQLite::Statement update(db,
                           "UPDATE OR IGNORE mail SET digest = ?2 WHERE seq = "
                           "?1");
  for (const auto& [seq, payload] : rows) {
    update.reset();
    update.bind(1, seq);
    const std::string digest = ContentDigest(payload);
    update.bind(2, digest.data(), static_cast<int>(digest.size()));
    update.exec();
  }
  transaction.commit();
}

// The statements every deposit and acknowledgement uses, prepared once: a
// write parses no SQL.
struct Statements {
  std::unique_ptr<SQLite::Statement> insert;
  std::unique_ptr<SQLite::Statement> find;
  std::unique_ptr<SQLite::Statement> remove;
};

using UsageMap = absl::flat_hash_map<std::string, MailUsage>;

// Everything the limits count, kept in step with the file.
struct Usages {
  UsageMap recipients;     // By recipient key.
  UsageMap senders;        // By origin; items without one are not here.
  size_t total_bytes = 0;  // ChargedBytes of every item.

  void Add(const std::string& recipient_key, const std::string& origin,
           size_t bytes) {
    MailUsage& recipient = recipients[recipient_key];
    ++recipient.count;
    recipient.bytes += bytes;
    if (!origin.empty()) {
      MailUsage& sender = senders[origin];
      ++sender.count;
      sender.bytes += bytes;
    }
    total_bytes += ChargedBytes(bytes);
  }

  void Remove(const std::string& recipient_key, const std::string& origin,
              size_t bytes) {
    auto take = [bytes](UsageMap& map, const std::string& key) {
      auto it = map.find(key);
      if (it == map.end()) return;
      it->second.count -= std::min<size_t>(it->second.count, 1);
      it->second.bytes -= std::min(it->second.bytes, bytes);
      if (it->second.count == 0) map.erase(it);
    };
    take(recipients, recipient_key);
    if (!origin.empty()) take(senders, origin);
    total_bytes -= std::min(total_bytes, ChargedBytes(bytes));
  }
};

// Reads back, from the file, what waits for each recipient and from each
// sender. May throw.
Usages LoadUsages(SQLite::Database& db) {
  Usages usages;
  SQLite::Statement select(
      db,
      "SELECT recipient_key, origin, count(*), "
      "coalesce(sum(length(payload)), 0) FROM mail GROUP BY recipient_key, "
      "origin");
  while (select.executeStep()) {
    const std::string origin = select.getColumn(1).getString();
    const auto count = static_cast<size_t>(select.getColumn(2).getInt64());
    const auto bytes = static_cast<size_t>(select.getColumn(3).getInt64());
    MailUsage& recipient = usages.recipients[select.getColumn(0).getString()];
    recipient.count += count;
    recipient.bytes += bytes;
    if (!origin.empty()) {
      MailUsage& sender = usages.senders[origin];
      sender.count += count;
      sender.bytes += bytes;
    }
    usages.total_bytes += bytes + count * kMailItemOverheadBytes;
  }
  return usages;
}

// What one write did, told to its caller once committed.
struct WriteResult {
  size_t count = 0;                           // Ack, ExpireOld: rows removed.
  absl::flat_hash_set<std::string> arrivals;  // Keys that got items.
  bool usage_changed = false;                 // The counts in memory moved.
};

class SqliteMailbox final : public Mailbox {
 public:
  SqliteMailbox(SqliteFile file, Statements statements, Usages usage,
                const Clock& clock, const MailboxLimits& limits)
      : clock_(clock),
        limits_(limits),
        lock_(std::move(file.lock)),
        db_(std::move(file.db)),
        insert_(std::move(statements.insert)),
        find_(std::move(statements.find)),
        remove_(std::move(statements.remove)),
        usage_(std::move(usage)) {
    batch_ = std::make_unique<SqliteBatch>(db_.get(), &db_mu_);
  }

  ~SqliteMailbox() override {
    batch_->Stop();  // Finishes queued writes.
    absl::MutexLock lock(&db_mu_);
    insert_.reset();
    find_.reset();
    remove_.reset();
    db_.reset();
  }

  absl::Status Deposit(const MailItem& item) override {
    CHAT_RETURN_IF_ERROR(ValidateDeposit(item, limits_));
    return Write([this, &item](WriteResult& result) {
             db_mu_.AssertHeld();
             return InsertLocked(item, /*limited=*/true, result);
           })
        .status();
  }

  absl::StatusOr<std::vector<MailItem>> Peek(const std::string& recipient,
                                             int64_t after_seq,
                                             size_t max) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    absl::MutexLock lock(&db_mu_);
    std::vector<MailItem> items;
    try {
      SQLite::Statement select(
          *db_,
          "SELECT seq, kind, id, sender, recipient, payload, "
          "deposited_at_ms, digest FROM mail WHERE recipient_key = ?1 AND "
          "seq > ?2 ORDER BY seq LIMIT ?3");
      select.bind(1, NameKey(recipient));
      select.bind(2, static_cast<int64_t>(after_seq));
      select.bind(3, static_cast<int64_t>(max));
      while (select.executeStep()) {
        MailItem item;
        item.seq = select.getColumn(0).getInt64();
        item.kind = KindFromColumn(select.getColumn(1).getInt());
        item.id = select.getColumn(2).getString();
        item.sender = select.getColumn(3).getString();
        item.recipient = select.getColumn(4).getString();
        SQLite::Column payload = select.getColumn(5);
        item.payload.assign(static_cast<const char*>(payload.getBlob()),
                            static_cast<size_t>(payload.getBytes()));
        item.deposited_at =
            absl::FromUnixMillis(select.getColumn(6).getInt64());
        SQLite::Column digest = select.getColumn(7);
        item.digest.assign(static_cast<const char*>(digest.getBlob()),
                           static_cast<size_t>(digest.getBytes()));
        items.push_back(std::move(item));
      }
    } catch (const std::exception& e) {
      return StorageError("read", e);
    }
    return items;
  }

  absl::StatusOr<size_t> Ack(const std::string& recipient,
                             const std::vector<MailRef>& items,
                             const std::vector<MailItem>& receipts) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    const std::string key = NameKey(recipient);
    absl::StatusOr<WriteResult> result =
        Write([this, &key, &items, &receipts](WriteResult& written) {
          db_mu_.AssertHeld();
          AckLocked(key, items, receipts, written);
          return absl::OkStatus();
        });
    if (!result.ok()) return result.status();
    return result->count;
  }

  absl::StatusOr<MailboxStats> Stat(const std::string& recipient) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    absl::MutexLock lock(&db_mu_);
    try {
      return StatLocked(NameKey(recipient));
    } catch (const std::exception& e) {
      return StorageError("read", e);
    }
  }

  std::unique_ptr<ArrivalSubscription> OnArrival(
      const std::string& recipient, std::function<void()> on_arrival) override {
    return std::make_unique<ArrivalHub::Entry>(&arrivals_, NameKey(recipient),
                                               std::move(on_arrival));
  }

  absl::StatusOr<size_t> ExpireOld() override {
    absl::StatusOr<WriteResult> result = Write([this](WriteResult& written) {
      db_mu_.AssertHeld();
      const int64_t cutoff =
          absl::ToUnixMillis(clock_.Wall() - limits_.max_age);
      // The messages about to go, each to be reported to its sender
      // (ExpiryReceipt: receipts of any kind make none).
      std::vector<MailItem> expired;
      {
        SQLite::Statement select(
            *db_,
            "SELECT id, sender, recipient FROM mail WHERE deposited_at_ms < "
            "?1 AND kind = 1 ORDER BY seq");
        select.bind(1, cutoff);
        while (select.executeStep()) {
          MailItem message;
          message.id = select.getColumn(0).getString();
          message.sender = select.getColumn(1).getString();
          message.recipient = select.getColumn(2).getString();
          std::optional<MailItem> receipt =
              ExpiryReceipt(message, limits_.max_age);
          if (receipt.has_value()) expired.push_back(*std::move(receipt));
        }
      }
      SQLite::Statement remove(*db_,
                               "DELETE FROM mail WHERE deposited_at_ms < ?1");
      remove.bind(1, cutoff);
      written.count = static_cast<size_t>(remove.exec());
      if (written.count > 0) {
        usage_ = LoadUsages(*db_);
        written.usage_changed = true;
      }
      // Over its recipient's limits (or the total): dropped, like a
      // receipt; the expiry stands.
      for (const MailItem& receipt : expired) {
        InsertLocked(receipt, /*limited=*/true, written).IgnoreError();
      }
      return absl::OkStatus();
    });
    if (!result.ok()) return result.status();
    return result->count;
  }

 private:
  // Counts messages only: what people wait for (receipts count against the
  // limits all the same).
  MailboxStats StatLocked(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    SQLite::Statement select(
        *db_,
        "SELECT count(*), coalesce(sum(length(payload)), 0), "
        "min(deposited_at_ms) FROM mail WHERE recipient_key = ?1 AND kind = 1");
    select.bind(1, key);
    MailboxStats stats;
    if (select.executeStep()) {
      stats.count = static_cast<size_t>(select.getColumn(0).getInt64());
      stats.bytes = static_cast<size_t>(select.getColumn(1).getInt64());
      if (!select.getColumn(2).isNull()) {
        stats.oldest_age =
            std::max(absl::ZeroDuration(),
                     clock_.Wall() -
                         absl::FromUnixMillis(select.getColumn(2).getInt64()));
      }
    }
    return stats;
  }

  // Runs `write` in the group commit and waits for its commit. A failed
  // write leaves nothing in the file (its savepoint is rolled back) and the
  // counts it changed in memory are read back from the file. Arrivals are
  // told from the writer thread once committed.
  absl::StatusOr<WriteResult> Write(
      std::function<absl::Status(WriteResult&)> write) {
    WriteResult result;
    absl::Status status;
    absl::Notification done;
    batch_->Post([&write, &result](SQLite::Database&) { return write(result); },
                 [this, &result, &status, &done](const absl::Status& outcome) {
                   status = outcome;
                   if (outcome.ok()) arrivals_.Notify(result.arrivals);
                   done.Notify();
                 },
                 [this, &result](const absl::Status&) {
                   db_mu_.AssertHeld();
                   const bool changed = result.usage_changed;
                   result = WriteResult();
                   if (!changed) return;
                   try {
                     usage_ = LoadUsages(*db_);
                   } catch (const std::exception&) {
                     usage_ =
                         Usages();  // Unreadable now: the next load will tell.
                   }
                 });
    done.WaitForNotification();
    if (!status.ok()) return status;
    return result;
  }

  // Inserts one item inside the open transaction. Returns the per-item
  // outcome; throws on storage failure.
  absl::Status InsertLocked(const MailItem& item, bool limited,
                            WriteResult& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    const std::string key = NameKey(item.recipient);
    const std::string digest = ContentDigest(item.payload);
    if (limited && !FitsLocked(key, item) &&
        HoldsLocked(key, item.id, digest)) {
      return absl::OkStatus();  // A copy of one waiting: no room needed.
    }
    if (limited) {
      CHAT_RETURN_IF_ERROR(CheckLimitsLocked(key, item));
    }
    SQLite::Statement& insert = *insert_;
    insert.tryReset();  // An earlier failed step is no error now.
    insert.bind(1, key);
    insert.bind(2, item.id);
    insert.bind(3, KindColumn(item.kind));
    insert.bind(4, item.sender);
    insert.bind(5, item.recipient);
    insert.bind(6, item.payload.data(), static_cast<int>(item.payload.size()));
    insert.bind(7, absl::ToUnixMillis(clock_.Wall()));
    insert.bind(8, item.origin);
    insert.bind(9, digest.data(), static_cast<int>(digest.size()));
    if (insert.exec() > 0) {
      write.arrivals.insert(key);
      write.usage_changed = true;
      usage_.Add(key, item.origin, item.payload.size());
    }
    return absl::OkStatus();
  }

  // LimitError naming the first limit `item` would go past
  // (CheckMailLimits over the counts in memory).
  absl::Status CheckLimitsLocked(const std::string& key, const MailItem& item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    MailUsage recipient;
    if (auto it = usage_.recipients.find(key); it != usage_.recipients.end()) {
      recipient = it->second;
    }
    MailUsage sender;
    if (auto it = usage_.senders.find(item.origin);
        !item.origin.empty() && it != usage_.senders.end()) {
      sender = it->second;
    }
    return CheckMailLimits(item, limits_, recipient, sender,
                           usage_.total_bytes);
  }

  void AckLocked(const std::string& recipient_key,
                 const std::vector<MailRef>& items,
                 const std::vector<MailItem>& receipts, WriteResult& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    // The senders of the messages this call removed, by id.
    absl::flat_hash_map<std::string, std::string> removed_messages;
    SQLite::Statement& find = *find_;
    SQLite::Statement& remove = *remove_;
    struct Row {
      int64_t seq;
      int kind;
      std::string sender;
      size_t bytes;
      std::string origin;
    };
    for (const MailRef& ref : items) {
      // Collected first: deleting rows while stepping over them is unsafe.
      std::vector<Row> rows;
      find.tryReset();
      find.clearBindings();
      find.bind(1, recipient_key);
      find.bind(2, ref.id);
      // Unbound (NULL): any digest, as an older peer's Ack meant.
      if (!ref.digest.empty()) {
        find.bind(3, ref.digest.data(), static_cast<int>(ref.digest.size()));
      }
      while (find.executeStep()) {
        rows.push_back({find.getColumn(0).getInt64(),
                        find.getColumn(1).getInt(),
                        find.getColumn(2).getString(),
                        static_cast<size_t>(find.getColumn(4).getInt64()),
                        find.getColumn(5).getString()});
      }
      find.reset();
      for (const Row& row : rows) {
        remove.tryReset();
        remove.bind(1, row.seq);
        const size_t removed = static_cast<size_t>(remove.exec());
        write.count += removed;
        if (removed > 0) {
          write.usage_changed = true;
          usage_.Remove(recipient_key, row.origin, row.bytes);
          if (row.kind == kKindMessage) removed_messages[ref.id] = row.sender;
        }
      }
    }
    // Only the acknowledging peer's receipts for what it really removed,
    // addressed to those messages' senders: nobody can make a receipt
    // appear for a message it did not receive, or in a third mailbox. A
    // sender that is not a valid name (a lab peer's free-form name) has no
    // mailbox.
    for (const MailItem& receipt : receipts) {
      auto it = removed_messages.find(receipt.id);
      if (it == removed_messages.end() ||
          !AcceptsReceipt(recipient_key, receipt, it->second)) {
        continue;
      }
      removed_messages.erase(it);  // One receipt per message.
      // Over its recipient's limits: dropped, the Ack stands.
      InsertLocked(receipt, /*limited=*/true, write).IgnoreError();
    }
  }

  const Clock& clock_;
  const MailboxLimits limits_;
  ArrivalHub arrivals_;  // Used by the writer thread until it is joined.

  bool FitsLocked(const std::string& key, const MailItem& item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    return CheckLimitsLocked(key, item).ok();
  }

  bool HoldsLocked(const std::string& key, const std::string& id,
                   const std::string& digest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    find_->tryReset();
    find_->clearBindings();
    find_->bind(1, key);
    find_->bind(2, id);
    find_->bind(3, digest.data(), static_cast<int>(digest.size()));
    const bool found = find_->executeStep();
    find_->reset();
    return found;
  }

  std::optional<FileLock> lock_;  // Keeps other processes off the file.
  absl::Mutex db_mu_;             // One thread at a time on the connection.
  std::unique_ptr<SQLite::Database> db_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SQLite::Statement> insert_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SQLite::Statement> find_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SQLite::Statement> remove_ ABSL_GUARDED_BY(db_mu_);
  // What waits, by recipient and by sender, kept in step with the file, so
  // the limits cost no query per deposit.
  Usages usage_ ABSL_GUARDED_BY(db_mu_);
  // Declared last: stopped (its queue finished) before the rest goes.
  std::unique_ptr<SqliteBatch> batch_;
};

// Moves the mail an older registry kept in its own file (`registry_path`)
// into the mailbox's file. Idempotent (a crash between the two files'
// commits moves the same rows again, which are then ignored). May throw.
void MoveMailFrom(SQLite::Database& db, const std::string& registry_path) {
  std::error_code error;
  if (!std::filesystem::exists(registry_path, error)) return;
  SQLite::Statement attach(db, "ATTACH DATABASE ?1 AS registry");
  attach.bind(1, registry_path);
  attach.exec();
  const bool has_mail =
      db.execAndGet(
            "SELECT count(*) FROM registry.sqlite_master WHERE type = "
            "'table' AND name = 'mail'")
              .getInt() > 0 &&
      db.execAndGet("SELECT EXISTS (SELECT 1 FROM registry.mail)").getInt() > 0;
  if (has_mail) {
    SQLite::Transaction transaction(db);
    db.exec(
        "INSERT OR IGNORE INTO main.mail (seq, recipient_key, id, kind, "
        "sender, recipient, payload, deposited_at_ms) SELECT seq, "
        "recipient_key, id, kind, sender, recipient, payload, "
        "deposited_at_ms FROM registry.mail ORDER BY seq");
    transaction.commit();
    db.exec("DELETE FROM registry.mail");
  }
  db.exec("DETACH DATABASE registry");
}

}  // namespace

std::string MailboxPath(const std::string& registry_path) {
  return SiblingDatabasePath(registry_path, "mail");
}

size_t DefaultMailboxTotalBytes(const std::string& registry_path) {
  constexpr size_t kMiB = 1024 * 1024;
  constexpr size_t kMost = 1024 * kMiB;
  if (registry_path == ":memory:") return kMost;
  std::filesystem::path dir =
      std::filesystem::path(registry_path).parent_path();
  if (dir.empty()) dir = ".";
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return kMost;
  const size_t free_bytes =
      static_cast<size_t>(fs.f_bavail) * static_cast<size_t>(fs.f_frsize);
  return std::clamp(free_bytes / 4, kMiB, kMost);
}

absl::StatusOr<std::unique_ptr<Mailbox>> OpenSqliteMailbox(
    const std::string& registry_path, const Clock& clock,
    const MailboxLimits& limits) {
  const std::string path = MailboxPath(registry_path);
  // Mail must survive power loss: FULL, made cheap by group commit.
  SqliteOpenOptions options;
  options.what = "mailbox database";
  options.program = "chat-registry";
  options.sync_full = true;
  options.lock = true;
  options.migrations.assign(std::begin(kMailMigrations),
                            std::end(kMailMigrations));
  absl::StatusOr<SqliteFile> file = OpenSqlite(path, options);
  if (!file.ok()) return file.status();
  SQLite::Database& db = *file->db;
  try {
    if (path != registry_path) MoveMailFrom(db, registry_path);
    FillDigests(db);
    // The file never grows past twice the quota (and a little): a backstop
    // for whatever the count of bytes misses (free pages, index growth).
    const int64_t page_size = db.execAndGet("PRAGMA page_size").getInt64();
    const int64_t max_pages =
        (static_cast<int64_t>(limits.max_total_bytes) * 2 + (1 << 20)) /
            std::max<int64_t>(page_size, 512) +
        1;
    db.exec(absl::StrCat("PRAGMA max_page_count = ", max_pages));
    // The write-ahead log is outside that cap: checkpoint it often and
    // give its room back, so it stays small on a small disk too.
    db.exec("PRAGMA wal_autocheckpoint = 100");
    db.exec("PRAGMA journal_size_limit = 1048576");
    Statements statements;
    statements.insert = std::make_unique<SQLite::Statement>(
        db,
        "INSERT OR IGNORE INTO mail (recipient_key, id, kind, sender, "
        "recipient, payload, deposited_at_ms, origin, digest) VALUES (?1, ?2, "
        "?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    // ?3 NULL: any digest.
    statements.find = std::make_unique<SQLite::Statement>(
        db,
        "SELECT seq, kind, sender, recipient, length(payload), origin FROM "
        "mail WHERE recipient_key = ?1 AND id = ?2 AND (?3 IS NULL OR digest "
        "= ?3) ORDER BY seq");
    statements.remove = std::make_unique<SQLite::Statement>(
        db, "DELETE FROM mail WHERE seq = ?1");
    Usages usage = LoadUsages(db);
    return std::unique_ptr<Mailbox>(
        new SqliteMailbox(*std::move(file), std::move(statements),
                          std::move(usage), clock, limits));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open mailbox database ", path, ": ", e.what()));
  }
}

}  // namespace chat::registry
