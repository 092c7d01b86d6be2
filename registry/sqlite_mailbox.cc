#include "registry/sqlite_mailbox.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/sqlite_batch.h"
#include "common/status.h"
#include "registry/names.h"
#include "registry/sqlite_schema.h"

namespace chat::registry {
namespace {

constexpr int kKindMessage = 1;
constexpr int kKindReceipt = 2;

absl::Status StorageError(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(
      absl::StrCat("mailbox storage failed to ", what, ": ", e.what()));
}

// The statements every deposit and acknowledgement uses, prepared once: a
// write parses no SQL.
struct Statements {
  std::unique_ptr<SQLite::Statement> insert;
  std::unique_ptr<SQLite::Statement> find;
  std::unique_ptr<SQLite::Statement> remove;
};

// Items (messages and receipts) waiting for one recipient.
struct Usage {
  size_t count = 0;
  size_t bytes = 0;
};
using UsageMap = absl::flat_hash_map<std::string, Usage>;

// Reads back, from the file, what waits for each recipient. May throw.
UsageMap LoadUsage(SQLite::Database& db) {
  UsageMap usage;
  SQLite::Statement select(
      db,
      "SELECT recipient_key, count(*), coalesce(sum(length(payload)), 0) "
      "FROM mail GROUP BY recipient_key");
  while (select.executeStep()) {
    Usage& entry = usage[select.getColumn(0).getString()];
    entry.count = static_cast<size_t>(select.getColumn(1).getInt64());
    entry.bytes = static_cast<size_t>(select.getColumn(2).getInt64());
  }
  return usage;
}

// What one write did, told to its caller once committed.
struct WriteResult {
  size_t count = 0;                           // Ack, ExpireOld: rows removed.
  absl::flat_hash_set<std::string> arrivals;  // Keys that got items.
  bool usage_changed = false;                 // The counts in memory moved.
};

// Callbacks waiting for mail, by recipient key.
class ArrivalHub {
 public:
  class Entry final : public ArrivalSubscription {
   public:
    Entry(ArrivalHub* hub, std::string key, std::function<void()> callback)
        : hub_(hub), key_(std::move(key)), callback_(std::move(callback)) {
      absl::MutexLock lock(&hub_->mu_);
      hub_->entries_.insert(this);
    }
    ~Entry() override {
      absl::MutexLock lock(&hub_->mu_);
      hub_->entries_.erase(this);
    }

   private:
    friend class ArrivalHub;
    ArrivalHub* const hub_;  // Not owned; outlives this.
    const std::string key_;
    const std::function<void()> callback_;
  };

  void Notify(const absl::flat_hash_set<std::string>& keys) {
    if (keys.empty()) return;
    absl::MutexLock lock(&mu_);
    for (Entry* entry : entries_) {
      if (keys.contains(entry->key_)) entry->callback_();
    }
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<Entry*> entries_ ABSL_GUARDED_BY(mu_);
};

class SqliteMailbox final : public Mailbox {
 public:
  SqliteMailbox(std::unique_ptr<SQLite::Database> db, Statements statements,
                UsageMap usage, const Clock& clock, const MailboxLimits& limits)
      : clock_(clock),
        limits_(limits),
        db_(std::move(db)),
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
    CHAT_RETURN_IF_ERROR(ValidateName(item.recipient));
    if (item.id.empty() || item.id.size() > 64) {
      return absl::InvalidArgumentError("mail id must be 1-64 bytes");
    }
    if (item.sender.empty() || item.sender.size() > 64) {
      return absl::InvalidArgumentError("mail sender must be 1-64 bytes");
    }
    if (item.payload.size() > limits_.max_payload_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("mail payload is ", item.payload.size(),
                       " bytes; the limit is ", limits_.max_payload_bytes));
    }
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
          "SELECT seq, kind, id, sender, recipient, payload, deposited_at_ms "
          "FROM mail WHERE recipient_key = ?1 AND seq > ?2 ORDER BY seq "
          "LIMIT ?3");
      select.bind(1, NameKey(recipient));
      select.bind(2, static_cast<int64_t>(after_seq));
      select.bind(3, static_cast<int64_t>(max));
      while (select.executeStep()) {
        MailItem item;
        item.seq = select.getColumn(0).getInt64();
        item.kind = select.getColumn(1).getInt() == kKindReceipt
                        ? MailItem::Kind::kReceipt
                        : MailItem::Kind::kMessage;
        item.id = select.getColumn(2).getString();
        item.sender = select.getColumn(3).getString();
        item.recipient = select.getColumn(4).getString();
        SQLite::Column payload = select.getColumn(5);
        item.payload.assign(static_cast<const char*>(payload.getBlob()),
                            static_cast<size_t>(payload.getBytes()));
        item.deposited_at =
            absl::FromUnixMillis(select.getColumn(6).getInt64());
        items.push_back(std::move(item));
      }
    } catch (const std::exception& e) {
      return StorageError("read", e);
    }
    return items;
  }

  absl::StatusOr<size_t> Ack(const std::string& recipient,
                             const std::vector<std::string>& ids,
                             const std::vector<MailItem>& receipts) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    const std::string key = NameKey(recipient);
    absl::StatusOr<WriteResult> result =
        Write([this, &key, &ids, &receipts](WriteResult& written) {
          db_mu_.AssertHeld();
          AckLocked(key, ids, receipts, written);
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
      SQLite::Statement remove(*db_,
                               "DELETE FROM mail WHERE deposited_at_ms < ?1");
      remove.bind(1, absl::ToUnixMillis(clock_.Wall() - limits_.max_age));
      written.count = static_cast<size_t>(remove.exec());
      if (written.count > 0) {
        usage_ = LoadUsage(*db_);
        written.usage_changed = true;
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
    batch_->Post(
        [&write, &result](SQLite::Database&) { return write(result); },
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
            usage_ = LoadUsage(*db_);
          } catch (const std::exception&) {
            usage_.clear();  // Unreadable now: the next load will tell.
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
    if (limited && !FitsLocked(key, item.payload.size()) &&
        HoldsLocked(key, item.id)) {
      return absl::OkStatus();  // A copy of one waiting: no room needed.
    }
    if (limited) {
      const Usage& usage = usage_[key];
      if (usage.count >= limits_.max_items) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the mailbox of ", item.recipient, " is full (", usage.count,
            " messages waiting; the limit is ", limits_.max_items, ")"));
      }
      if (usage.bytes + item.payload.size() > limits_.max_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the mailbox of ", item.recipient, " is full (", usage.bytes,
            " bytes waiting; the limit is ", limits_.max_bytes, ")"));
      }
    }
    SQLite::Statement& insert = *insert_;
    insert.tryReset();  // An earlier failed step is no error now.
    insert.bind(1, key);
    insert.bind(2, item.id);
    insert.bind(
        3, item.kind == MailItem::Kind::kReceipt ? kKindReceipt : kKindMessage);
    insert.bind(4, item.sender);
    insert.bind(5, item.recipient);
    insert.bind(6, item.payload.data(), static_cast<int>(item.payload.size()));
    insert.bind(7, absl::ToUnixMillis(clock_.Wall()));
    if (insert.exec() > 0) {
      write.arrivals.insert(key);
      write.usage_changed = true;
      Usage& usage = usage_[key];
      ++usage.count;
      usage.bytes += item.payload.size();
    }
    return absl::OkStatus();
  }

  void AckLocked(const std::string& recipient_key,
                 const std::vector<std::string>& ids,
                 const std::vector<MailItem>& receipts, WriteResult& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    // The senders of the messages this call removed, by id.
    absl::flat_hash_map<std::string, std::string> removed_messages;
    SQLite::Statement& find = *find_;
    SQLite::Statement& remove = *remove_;
    for (const std::string& id : ids) {
      find.tryReset();
      find.bind(1, recipient_key);
      find.bind(2, id);
      if (!find.executeStep()) continue;
      const int kind = find.getColumn(0).getInt();
      const std::string sender = find.getColumn(1).getString();
      const std::string recipient = find.getColumn(2).getString();
      const size_t bytes = static_cast<size_t>(find.getColumn(3).getInt64());
      find.reset();
      remove.tryReset();
      remove.bind(1, recipient_key);
      remove.bind(2, id);
      const size_t removed = static_cast<size_t>(remove.exec());
      write.count += removed;
      if (removed > 0) {
        write.usage_changed = true;
        Usage& usage = usage_[recipient_key];
        usage.count -= std::min(usage.count, removed);
        usage.bytes -= std::min(usage.bytes, bytes);
        if (usage.count == 0) usage_.erase(recipient_key);
        if (kind == kKindMessage) removed_messages[id] = sender;
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
          receipt.kind != MailItem::Kind::kReceipt ||
          NameKey(receipt.sender) != recipient_key ||
          !ValidateName(receipt.recipient).ok() ||
          NameKey(receipt.recipient) != NameKey(it->second) ||
          receipt.payload.size() > kMaxReceiptPayloadBytes) {
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

  bool FitsLocked(const std::string& key, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    auto it = usage_.find(key);
    if (it == usage_.end()) return true;
    return it->second.count < limits_.max_items &&
           it->second.bytes + bytes <= limits_.max_bytes;
  }

  bool HoldsLocked(const std::string& key, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_) {
    find_->tryReset();
    find_->bind(1, key);
    find_->bind(2, id);
    const bool found = find_->executeStep();
    find_->reset();
    return found;
  }

  absl::Mutex db_mu_;  // One thread at a time on the connection.
  std::unique_ptr<SQLite::Database> db_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SQLite::Statement> insert_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SQLite::Statement> find_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SQLite::Statement> remove_ ABSL_GUARDED_BY(db_mu_);
  // Items waiting, by recipient key, kept in step with the file, so the
  // limits cost no query per deposit.
  UsageMap usage_ ABSL_GUARDED_BY(db_mu_);
  // Declared last: stopped (its queue finished) before the rest goes.
  std::unique_ptr<SqliteBatch> batch_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Mailbox>> OpenSqliteMailbox(
    const std::string& path, const Clock& clock, const MailboxLimits& limits) {
  // Mail must survive power loss: FULL, made cheap by group commit. The
  // store holds the file's lock.
  absl::StatusOr<SqliteFile> file =
      OpenRegistryDatabase(path, "mailbox database", /*sync_full=*/true,
                           /*lock=*/false);
  if (!file.ok()) return file.status();
  std::unique_ptr<SQLite::Database> db = std::move(file->db);
  try {
    Statements statements;
    statements.insert = std::make_unique<SQLite::Statement>(
        *db,
        "INSERT OR IGNORE INTO mail (recipient_key, id, kind, sender, "
        "recipient, payload, deposited_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7)");
    statements.find = std::make_unique<SQLite::Statement>(
        *db,
        "SELECT kind, sender, recipient, length(payload) FROM mail WHERE "
        "recipient_key = ?1 AND id = ?2");
    statements.remove = std::make_unique<SQLite::Statement>(
        *db, "DELETE FROM mail WHERE recipient_key = ?1 AND id = ?2");
    UsageMap usage = LoadUsage(*db);
    return std::unique_ptr<Mailbox>(new SqliteMailbox(
        std::move(db), std::move(statements), std::move(usage), clock, limits));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open mailbox database ", path, ": ", e.what()));
  }
}

}  // namespace chat::registry
