#include "peer/peer_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/private_files.h"
#include "common/random.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

// Append only: a file in the field may be at any earlier version.
const std::vector<const char*> kMigrations = {
    // 1: outbox, inbox, sequence counters, our lease.
    R"sql(
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
      -- Our side of each conversation: the next sequence number to give.
      CREATE TABLE conversations (
        peer_key      TEXT PRIMARY KEY NOT NULL,  -- lowercase name
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE outbox (
        id            TEXT PRIMARY KEY NOT NULL,
        recipient_key TEXT NOT NULL,
        sequence      INTEGER NOT NULL,
        body          BLOB NOT NULL,              -- serialized chat Message
        stored        INTEGER NOT NULL DEFAULT 0  -- 1: in the mailbox
      );
      CREATE INDEX outbox_order ON outbox (recipient_key, sequence);
      -- Their side: the next sequence number we wait for from each sender.
      CREATE TABLE inbound (
        sender_key    TEXT PRIMARY KEY NOT NULL,
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE inbox (
        arrival        INTEGER PRIMARY KEY AUTOINCREMENT,
        id             TEXT NOT NULL UNIQUE,
        sender_key     TEXT NOT NULL,
        epoch          TEXT,
        sequence       INTEGER,            -- NULL: not sequenced
        body           BLOB,               -- NULL once shown
        received_at_ms INTEGER NOT NULL,
        state          INTEGER NOT NULL,   -- 0 held, 1 released, 2 shown
        released       INTEGER,            -- release order
        late           INTEGER NOT NULL    -- 1: came from our mailbox
      );
      CREATE INDEX inbox_held ON inbox (sender_key, sequence) WHERE state = 0;
      CREATE INDEX inbox_released ON inbox (released) WHERE state = 1;
    )sql",
    // 2: keys: pins, unverified messages, replay watermarks.
    R"sql(
      CREATE TABLE pins (
        name_key     TEXT PRIMARY KEY NOT NULL,
        name         TEXT NOT NULL,
        public_key   BLOB NOT NULL,
        pinned_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
      ALTER TABLE inbox ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
      -- The authenticated sending time; NULL when unverified or unknown.
      ALTER TABLE inbox ADD COLUMN sent_at_ms INTEGER;
      -- Per sender, the newest sending time among its messages whose ids
      -- were trimmed: anything sent no later is a replay. Sender '' holds
      -- the watermark of every sender folded away.
      CREATE TABLE watermarks (
        sender_key TEXT PRIMARY KEY NOT NULL,
        sent_ms    INTEGER NOT NULL
      ) WITHOUT ROWID;
    )sql",
    // 3: contacts: whom the peer follows, bounded by the peer.
    // Everyone it has a conversation with to start with; those it wrote to
    // rank before those it only heard from.
    R"sql(
      CREATE TABLE contacts (
        name_key     TEXT PRIMARY KEY NOT NULL,
        name         TEXT NOT NULL,
        state        INTEGER NOT NULL,  -- Contact::State
        last_ms      INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO contacts (name_key, name, state, last_ms)
        SELECT peer_key, peer_key, 0, 1 FROM conversations;
      INSERT OR IGNORE INTO contacts (name_key, name, state, last_ms)
        SELECT sender_key, sender_key, 0, 0 FROM inbound;
    )sql",
    // 4: history: what was said, both ways, bounded by age and
    // rows; read by conversation, newest first. Apart from delivery state.
    R"sql(
      CREATE TABLE history (
        seq            INTEGER PRIMARY KEY,  -- order written
        id             TEXT NOT NULL,
        peer_key       TEXT NOT NULL,        -- lowercase name of the other
        ours           INTEGER NOT NULL,     -- 1: we sent it
        sender         TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        text           TEXT NOT NULL,
        sent_at_ms     INTEGER,              -- NULL: not known
        received_at_ms INTEGER,              -- theirs: when it came
        written_ms     INTEGER NOT NULL,     -- our clock; the trim's
        state          INTEGER NOT NULL,     -- ours: HistoryRank; theirs 0
        late           INTEGER NOT NULL,
        unverified     INTEGER NOT NULL
      );
      CREATE INDEX history_conversation ON history (peer_key, seq);
      CREATE INDEX history_ours ON history (id) WHERE ours = 1;
    )sql",
    // 5: read receipts, both ways (ReadNote), bounded by the
    // peer (peer/read_tracker.h). IF NOT EXISTS: a test makes an older
    // file by lowering user_version under the tables it keeps.
    R"sql(
      CREATE TABLE IF NOT EXISTS reads (
        peer_key  TEXT NOT NULL,
        id        TEXT NOT NULL,
        peer      TEXT NOT NULL,
        state     INTEGER NOT NULL,  -- ReadNote::State
        at_ms     INTEGER NOT NULL,
        PRIMARY KEY (peer_key, id)
      ) WITHOUT ROWID;
    )sql",
    // 6: a kShown read note rides on its message's shown mark (MarkShown),
    // not in a row of `reads` of its own: one write per message shown, not
    // three (chat-bench send, docs/benchmarks.md). The release-order index
    // goes too: only Unshown() and the start read it, once per run.
    R"sql(
      ALTER TABLE inbox ADD COLUMN unread INTEGER NOT NULL DEFAULT 0;
      UPDATE inbox SET unread = 1 WHERE state = 2 AND id IN
        (SELECT id FROM reads WHERE state = 1);
      DELETE FROM reads WHERE state = 1;
      DROP INDEX IF EXISTS inbox_released;
    )sql",
    // 7: a message is known by its sender and id, not its id alone: another
    // sender's message (validly sealed by its own key) under the same id
    // must not pass for the one already kept, nor take its place. SQLite
    // cannot drop a UNIQUE constraint: the table is made again, its rows
    // and its AUTOINCREMENT counter (arrival orders the trim) carried over.
    R"sql(
      CREATE TABLE inbox_v7 (
        arrival        INTEGER PRIMARY KEY AUTOINCREMENT,
        id             TEXT NOT NULL,
        sender_key     TEXT NOT NULL,
        epoch          TEXT,
        sequence       INTEGER,            -- NULL: not sequenced
        body           BLOB,               -- NULL once shown
        received_at_ms INTEGER NOT NULL,
        state          INTEGER NOT NULL,   -- 0 held, 1 released, 2 shown
        released       INTEGER,            -- release order
        late           INTEGER NOT NULL,   -- 1: came from our mailbox
        unverified     INTEGER NOT NULL DEFAULT 0,
        sent_at_ms     INTEGER,
        unread         INTEGER NOT NULL DEFAULT 0,
        UNIQUE (sender_key, id)
      );
      INSERT INTO inbox_v7 (arrival, id, sender_key, epoch, sequence, body,
                            received_at_ms, state, released, late,
                            unverified, sent_at_ms, unread)
        SELECT arrival, id, sender_key, epoch, sequence, body,
               received_at_ms, state, released, late, unverified,
               sent_at_ms, unread FROM inbox ORDER BY arrival;
      DELETE FROM sqlite_sequence WHERE name = 'inbox_v7';
      INSERT INTO sqlite_sequence (name, seq)
        SELECT 'inbox_v7', seq FROM sqlite_sequence WHERE name = 'inbox';
      DROP TABLE inbox;
      ALTER TABLE inbox_v7 RENAME TO inbox;
      CREATE INDEX inbox_held ON inbox (sender_key, sequence) WHERE state = 0;
    )sql",
};

// A state of ours in the history, ranked so that it never goes back: the
// file keeps the rank, not SendStatus's number.
int HistoryRank(SendStatus status) {
  switch (status) {
    case SendStatus::kSent:
      return 0;
    case SendStatus::kStored:
      return 1;
    case SendStatus::kExpired:
      return 2;
    case SendStatus::kFailed:
      return 3;
    case SendStatus::kDelivered:
      return 4;
    case SendStatus::kRead:
      return 5;
  }
  return 0;
}

SendStatus FromHistoryRank(int rank) {
  switch (rank) {
    case 1:
      return SendStatus::kStored;
    case 2:
      return SendStatus::kExpired;
    case 3:
      return SendStatus::kFailed;
    case 4:
      return SendStatus::kDelivered;
    case 5:
      return SendStatus::kRead;
    default:
      return SendStatus::kSent;
  }
}

constexpr int kHeld = 0;
constexpr int kReleased = 1;
// 2 is "shown", written only by the SQL of MarkShown() and read by its trim.

std::string Serialize(const ChatMessage& message) {
  std::string body;
  ToProto(message).SerializeToString(&body);
  return body;
}

ChatMessage Parse(const SQLite::Column& column) {
  ::Message proto;
  proto.ParseFromArray(column.getBlob(), column.getBytes());
  return FromProto(proto);
}

// What every inbox read selects, for FromInboxRow.
#define CHAT_INBOX_ROW "id, body, received_at_ms, late, unverified"

// An inbox row selected as CHAT_INBOX_ROW.
ChatMessage FromInboxRow(SQLite::Statement& row) {
  ChatMessage message = Parse(row.getColumn(1));
  message.id = row.getColumn(0).getString();
  message.received_at = absl::FromUnixMillis(row.getColumn(2).getInt64());
  message.late = row.getColumn(3).getInt() != 0;
  message.unverified = row.getColumn(4).getInt() != 0;
  return message;
}

// The sender key of the watermark that holds for every sender.
constexpr char kEveryone[] = "";

// The connection every role writes through, and the one group commit they
// share (a write that spans roles is one job of it).
struct PeerFile {
  PeerFile(SqliteFile file, const Clock& file_clock,
           PeerStoreLimits file_limits)
      : clock(file_clock),
        limits(file_limits),
        lock(std::move(file.lock)),
        db(std::move(file.db)),
        statements(db.get()) {
    batch = std::make_unique<SqliteBatch>(db.get(), &db_mu);
  }

  // Finishes the queued writes and closes the file; before the roles go,
  // since their jobs and hooks use them.
  void Close() {
    batch->Stop();
    absl::MutexLock hold(&db_mu);
    statements.Clear();
    db.reset();  // Closes the file before the lock goes.
  }

  const Clock& clock;
  const PeerStoreLimits limits;
  // Keeps other peers off the file; none for ":memory:". Declared before
  // db so the file closes before the lock goes.
  std::optional<FileLock> lock;
  absl::Mutex db_mu;  // One thread at a time on the connection.
  std::unique_ptr<SQLite::Database> db ABSL_GUARDED_BY(db_mu);
  SqliteStatements statements ABSL_GUARDED_BY(db_mu);
  std::unique_ptr<SqliteBatch> batch;
};

// The watermarks table. May throw SQLite::Exception.
absl::flat_hash_map<std::string, int64_t> ReadWatermarks(SQLite::Database& db) {
  absl::flat_hash_map<std::string, int64_t> watermarks;
  SQLite::Statement select(db, "SELECT sender_key, sent_ms FROM watermarks");
  while (select.executeStep()) {
    watermarks[select.getColumn(0).getString()] =
        select.getColumn(1).getInt64();
  }
  return watermarks;
}

// Table `history`. The outbox and the inbox write their messages into it
// inside their own jobs (InsertHistory), so a message and its history row
// land together.
class SqliteHistory final : public HistoryStore {
 public:
  explicit SqliteHistory(PeerFile* file) : file_(file) {}

  void RecordSendState(const std::string& id, SendStatus status) override {
    const int rank = HistoryRank(status);
    if (!KeepsHistory() || rank == 0 || id.empty()) return;  // kSent: added.
    {
      absl::MutexLock lock(&mu_);
      pending_states_.emplace_back(id, rank);
      // One job takes every update queued until it runs: receipts come in
      // bursts (a window of 64 at once), and a job per update would cost
      // the writer a savepoint each.
      if (pending_states_.size() > 1) return;
    }
    file_->batch->PostLazily([this](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      std::vector<std::pair<std::string, int>> states;
      {
        absl::MutexLock lock(&mu_);
        states.swap(pending_states_);
      }
      ScopedStatement update(file_->statements,
                             "UPDATE history SET state = ?2 WHERE id = ?1 AND "
                             "ours = 1 AND state < ?2");
      for (const auto& [state_id, state_rank] : states) {
        update->reset();
        update->bind(1, state_id);
        update->bind(2, state_rank);
        update->exec();
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<HistoryPage> Page(const std::string& name,
                                   int limit) override {
    absl::MutexLock lock(&file_->db_mu);
    HistoryPage page;
    try {
      ScopedStatement select(
          file_->statements,
          "SELECT id, ours, sender, recipient, text, sent_at_ms, "
          "received_at_ms, state, late, unverified FROM (SELECT * FROM "
          "history WHERE peer_key = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY "
          "seq");
      select->bind(1, NameKey(name));
      select->bind(2, std::max(limit, 1));
      while (select->executeStep()) {
        HistoryEntry entry;
        ChatMessage& message = entry.message;
        message.id = select->getColumn(0).getString();
        entry.ours = select->getColumn(1).getInt() != 0;
        message.from = select->getColumn(2).getString();
        message.to = select->getColumn(3).getString();
        message.text = select->getColumn(4).getString();
        if (!select->getColumn(5).isNull()) {
          message.sent_at =
              absl::FromUnixMillis(select->getColumn(5).getInt64());
        }
        if (!select->getColumn(6).isNull()) {
          message.received_at =
              absl::FromUnixMillis(select->getColumn(6).getInt64());
        }
        if (entry.ours) {
          entry.status = FromHistoryRank(select->getColumn(7).getInt());
        }
        message.late = select->getColumn(8).getInt() != 0;
        message.unverified = select->getColumn(9).getInt() != 0;
        page.entries.push_back(std::move(entry));
      }
      ScopedStatement count(file_->statements,
                            "SELECT count(*) FROM history WHERE peer_key = ?1");
      count->bind(1, NameKey(name));
      count->executeStep();
      page.total = count->getColumn(0).getInt64();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the history: ", e.what()));
    }
    return page;
  }

  absl::StatusOr<int64_t> Forget(const std::string& name) override {
    int64_t erased = 0;
    CHAT_RETURN_IF_ERROR(file_->batch->Run(
        [&](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          ScopedStatement remove(file_->statements,
                                 "DELETE FROM history WHERE peer_key = ?1");
          remove->bind(1, NameKey(name));
          erased = remove->exec();
          if (history_rows_ >= 0) history_rows_ -= erased;
          return absl::OkStatus();
        },
        RecountHistoryOnFailure()));
    return erased;
  }

  void Trim() override {
    const int64_t cutoff = KeepsHistory()
                               ? absl::ToUnixMillis(file_->clock.Wall() -
                                                    file_->limits.history_kept)
                               : std::numeric_limits<int64_t>::max();
    file_->batch->PostLazily(
        [this, cutoff](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          TrimHistoryLocked(cutoff);
          return absl::OkStatus();
        },
        RecountHistoryOnFailure());
  }

  // ---- For the outbox and the inbox.

  // For every job that writes the history: its rows' count is not known
  // after a rollback, so the next trim counts them again.
  SqliteBatch::OnFailure RecountHistoryOnFailure() {
    return [this](const absl::Status&) {
      file_->db_mu.AssertHeld();
      history_rows_ = -1;
    };
  }

  // Inside the writer's transaction: `message` (ours as sent, kSent; or
  // theirs as shown) joins the history.
  void InsertHistory(const ChatMessage& message, bool ours) {
    file_->db_mu.AssertHeld();
    if (!KeepsHistory()) return;
    ScopedStatement insert(
        file_->statements,
        "INSERT INTO history (id, peer_key, ours, sender, recipient, text, "
        "sent_at_ms, received_at_ms, written_ms, state, late, unverified) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11)");
    insert->bind(1, message.id);
    insert->bind(2, NameKey(ours ? message.to : message.from));
    insert->bind(3, ours ? 1 : 0);
    insert->bind(4, message.from);
    insert->bind(5, message.to);
    insert->bind(6, message.text);
    if (message.sent_at != absl::InfinitePast()) {
      insert->bind(7, absl::ToUnixMillis(message.sent_at));
    }
    if (!ours && message.received_at != absl::InfinitePast()) {
      insert->bind(8, absl::ToUnixMillis(message.received_at));
    }
    // Our clock, so a sender's wrong clock cannot keep its messages for
    // ever or erase them at once.
    insert->bind(9, absl::ToUnixMillis(file_->clock.Wall()));
    insert->bind(10, message.late ? 1 : 0);
    insert->bind(11, message.unverified ? 1 : 0);
    insert->exec();
    if (history_rows_ >= 0) ++history_rows_;
  }

  // Counts `written` messages towards the row cap and queues a trim when
  // history_trim_every are reached.
  void CountHistory(size_t written) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!KeepsHistory()) return;
    {
      absl::MutexLock lock(&mu_);
      history_since_trim_ += static_cast<int64_t>(written);
      if (history_since_trim_ < file_->limits.history_trim_every) return;
      history_since_trim_ = 0;
    }
    file_->batch->PostLazily(
        [this](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          TrimHistoryLocked(std::numeric_limits<int64_t>::min());
          return absl::OkStatus();
        },
        RecountHistoryOnFailure());
  }

 private:
  bool KeepsHistory() const {
    return file_->limits.history_kept > absl::ZeroDuration();
  }

  // Inside the writer's transaction: erases the messages written before
  // `cutoff_ms` (unix ms, by writing order: the first row written at or
  // after it and every later one stay, so a clock that stepped back erases
  // less, never more), then the oldest beyond history_rows_kept.
  void TrimHistoryLocked(int64_t cutoff_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    // Stops at the first row it keeps: as costly as what it erases.
    ScopedStatement first_kept(file_->statements,
                               "SELECT seq FROM history WHERE written_ms >= ?1 "
                               "ORDER BY seq LIMIT 1");
    first_kept->bind(1, cutoff_ms);
    if (first_kept->executeStep()) {
      const int64_t seq = first_kept->getColumn(0).getInt64();
      first_kept->reset();
      ScopedStatement old(file_->statements,
                          "DELETE FROM history WHERE seq < ?1");
      old->bind(1, seq);
      const int erased = old->exec();
      if (history_rows_ >= 0) history_rows_ -= erased;
    } else {
      first_kept->reset();
      ScopedStatement all(file_->statements, "DELETE FROM history");
      all->exec();
      history_rows_ = 0;
      return;
    }
    // Counted once per run (or after a rollback), then kept up to date:
    // finding the cut by counting rows from the end stepped over every row
    // kept, ~5% of the writer thread's time at 50,000 rows.
    if (history_rows_ < 0) {
      ScopedStatement count(file_->statements, "SELECT count(*) FROM history");
      count->executeStep();
      history_rows_ = count->getColumn(0).getInt64();
      count->reset();
    }
    const int64_t over_cap = history_rows_ - file_->limits.history_rows_kept;
    if (over_cap <= 0) return;
    ScopedStatement over(file_->statements,
                         "DELETE FROM history WHERE seq IN (SELECT seq FROM "
                         "history ORDER BY seq LIMIT ?1)");
    over->bind(1, over_cap);
    history_rows_ -= over->exec();
  }

  PeerFile* const file_;
  absl::Mutex mu_;
  int64_t history_since_trim_ ABSL_GUARDED_BY(mu_) = 0;
  // RecordSendState()'s updates, for the one job that writes them all:
  // (message id, HistoryRank).
  std::vector<std::pair<std::string, int>> pending_states_ ABSL_GUARDED_BY(mu_);
  // Rows in the history table; -1 until counted (TrimHistoryLocked).
  int64_t history_rows_ ABSL_GUARDED_BY(file_->db_mu) = -1;
};

// Tables `outbox` and `conversations` (our sequence counters).
class SqliteOutbox final : public Outbox {
 public:
  // `outstanding`: the sequence numbers in the outbox, by recipient key, as
  // the file holds them.
  SqliteOutbox(PeerFile* file, SqliteHistory* history,
               absl::flat_hash_map<std::string, std::set<int64_t>> outstanding)
      : file_(file), history_(history), outstanding_(std::move(outstanding)) {}

  void Add(ChatMessage message, AddedCallback done) override {
    auto added = std::make_shared<ChatMessage>(std::move(message));
    file_->batch->Post(
        [this, added](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          const std::string key = NameKey(added->to);
          ScopedStatement select(
              file_->statements,
              "SELECT epoch, next_sequence FROM conversations WHERE "
              "peer_key = ?1");
          select->bind(1, key);
          std::optional<OutboundCounter> counter;
          if (select->executeStep()) {
            counter = OutboundCounter{select->getColumn(0).getString(),
                                      select->getColumn(1).getInt64()};
          }
          Numbered numbered = NextOutbound(
              counter, counter.has_value() ? std::string() : RandomHex(8));
          added->sequence_epoch = std::move(numbered.epoch);
          added->sequence = numbered.sequence;
          added->sequence_floor = added->sequence;
          ScopedStatement upsert(
              file_->statements,
              "INSERT INTO conversations (peer_key, epoch, next_sequence) "
              "VALUES (?1, ?2, ?3) ON CONFLICT (peer_key) DO UPDATE SET "
              "next_sequence = ?3");
          upsert->bind(1, key);
          upsert->bind(2, added->sequence_epoch);
          upsert->bind(3, added->sequence + 1);
          upsert->exec();
          ScopedStatement insert(
              file_->statements,
              "INSERT INTO outbox (id, recipient_key, sequence, body) VALUES "
              "(?1, ?2, ?3, ?4)");
          insert->bind(1, added->id);
          insert->bind(2, key);
          insert->bind(3, added->sequence);
          const std::string body = Serialize(*added);
          insert->bind(4, body.data(), static_cast<int>(body.size()));
          insert->exec();
          history_->InsertHistory(*added, /*ours=*/true);
          return absl::OkStatus();
        },
        [this, added, done = std::move(done)](const absl::Status& status) {
          if (!status.ok()) {
            done(status);
            return;
          }
          {
            absl::MutexLock lock(&mu_);
            outstanding_[NameKey(added->to)].insert(added->sequence);
          }
          done(*added);
        },
        history_->RecountHistoryOnFailure());
    history_->CountHistory(1);
  }

  int64_t Floor(const std::string& recipient, int64_t fallback) override {
    absl::MutexLock lock(&mu_);
    auto it = outstanding_.find(NameKey(recipient));
    if (it == outstanding_.end()) return fallback;
    return SequenceFloor(it->second, fallback);
  }

  void MarkStored(const std::string& id) override {
    file_->batch->PostLazily([this, id](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      ScopedStatement update(file_->statements,
                             "UPDATE outbox SET stored = 1 WHERE id = ?1");
      update->bind(1, id);
      update->exec();
      return absl::OkStatus();
    });
  }

  void Remove(const std::string& id) override {
    auto removal = std::make_shared<Removal>();
    file_->batch->PostLazily(
        [this, id, removal](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          return DeleteOutboxRow(id, *removal);
        },
        [this, removal](const absl::Status&) { Restore(*removal); });
  }

  absl::StatusOr<std::optional<OutboxEntry>> Take(
      const std::string& id, const std::string& recipient) override {
    std::optional<OutboxEntry> taken;
    Removal removal;
    CHAT_RETURN_IF_ERROR(file_->batch->Run(
        [&](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          ScopedStatement select(
              file_->statements,
              "SELECT body, stored FROM outbox WHERE id = ?1 AND "
              "recipient_key = ?2");
          select->bind(1, id);
          select->bind(2, NameKey(recipient));
          if (!select->executeStep()) return absl::OkStatus();
          taken.emplace();
          taken->message = Parse(select->getColumn(0));
          taken->stored = select->getColumn(1).getInt() != 0;
          return DeleteOutboxRow(id, removal);
        },
        [&](const absl::Status&) { Restore(removal); }));
    return taken;
  }

  absl::StatusOr<std::vector<OutboxEntry>> Entries() override {
    absl::MutexLock lock(&file_->db_mu);
    std::vector<OutboxEntry> entries;
    try {
      ScopedStatement select(file_->statements,
                             "SELECT body, stored FROM outbox ORDER BY "
                             "recipient_key, sequence");
      while (select->executeStep()) {
        OutboxEntry entry;
        entry.message = Parse(select->getColumn(0));
        entry.stored = select->getColumn(1).getInt() != 0;
        entries.push_back(std::move(entry));
      }
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the outbox: ", e.what()));
    }
    return entries;
  }

 private
     :  // What a removal from the outbox took from outstanding_, to put back if
  // the removal fails.
  struct Removal {
    bool removed = false;
    std::string key;
    int64_t sequence = 0;
  };

  // Inside the writer's transaction.
  absl::Status DeleteOutboxRow(const std::string& id, Removal& removal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement remove(
        file_->statements,
        "DELETE FROM outbox WHERE id = ?1 RETURNING recipient_key, sequence");
    remove->bind(1, id);
    if (remove->executeStep()) {
      removal.key = remove->getColumn(0).getString();
      removal.sequence = remove->getColumn(1).getInt64();
      // Drain the statement so the delete completes.
      while (remove->executeStep()) {
      }
      absl::MutexLock lock(&mu_);
      auto it = outstanding_.find(removal.key);
      if (it != outstanding_.end()) {
        removal.removed = it->second.erase(removal.sequence) > 0;
        if (it->second.empty()) outstanding_.erase(it);
      }
    }
    return absl::OkStatus();
  }

  // The removal's row is still there: so is its sequence number.
  void Restore(const Removal& removal) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!removal.removed) return;
    absl::MutexLock lock(&mu_);
    outstanding_[removal.key].insert(removal.sequence);
  }

  PeerFile* const file_;
  SqliteHistory* const history_;
  absl::Mutex mu_;
  // Sequence numbers in the outbox, by recipient key.
  absl::flat_hash_map<std::string, std::set<int64_t>> outstanding_
      ABSL_GUARDED_BY(mu_);
};

// Tables `inbox`, `inbound` (each sender's counter) and `watermarks`; the
// decisions are inbox_rules'.
class SqliteInbox final : public Inbox {
 public:
  SqliteInbox(PeerFile* file, SqliteHistory* history, int64_t next_release,
              absl::flat_hash_map<std::string, int64_t> watermarks)
      : file_(file),
        history_(history),
        next_release_(next_release),
        watermarks_(std::move(watermarks)) {}

  void Receive(ChatMessage message, ReceivedCallback done) override {
    if (message.received_at == absl::InfinitePast()) {
      message.received_at = file_->clock.Wall();
    }
    auto received = std::make_shared<Received>();
    file_->batch->Post(
        [this, message = std::move(message), received](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          // Per sender: another sender's id is no copy of this one.
          ScopedStatement seen(
              file_->statements,
              "SELECT 1 FROM inbox WHERE sender_key = ?2 AND id = ?1");
          seen->bind(1, message.id);
          seen->bind(2, NameKey(message.from));
          const bool seen_from_sender = seen->executeStep();
          seen->reset();
          if (IsDuplicate(seen_from_sender, message,
                          WatermarksOf(message.from))) {
            received->duplicate = true;
            return absl::OkStatus();
          }
          ReceiveLocked(message, *received);
          return absl::OkStatus();
        },
        [received, done = std::move(done)](const absl::Status& status) {
          if (!status.ok()) {
            done(status);
          } else {
            done(std::move(*received));
          }
        });
  }

  void MarkShown(const std::vector<ChatMessage>& messages,
                 const std::vector<ReadNote>& unread) override {
    if (messages.empty()) return;
    const size_t shown = messages.size();
    absl::flat_hash_set<std::string> unread_ids;
    for (const ReadNote& note : unread) unread_ids.insert(note.id);
    file_->batch->PostLazily(
        [this, messages,
         unread_ids = std::move(unread_ids)](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          ScopedStatement update(
              file_->statements,
              "UPDATE inbox SET state = 2, body = NULL, unread = ?2 WHERE id "
              "= ?1 AND sender_key = ?3 AND state != 2");
          for (const ChatMessage& message : messages) {
            update->reset();
            update->bind(1, message.id);
            update->bind(2, unread_ids.contains(message.id) ? 1 : 0);
            update->bind(3, NameKey(message.from));
            // The mark, its read note and the history row are one write, so
            // a message shown again after a restart (its mark lost) is
            // written once; one marked already, or never in the inbox, not
            // at all.
            if (update->exec() > 0)
              history_->InsertHistory(message, /*ours=*/false);
          }
          return absl::OkStatus();
        },
        history_->RecountHistoryOnFailure());
    history_->CountHistory(shown);
    bool trim = false;
    {
      absl::MutexLock lock(&mu_);
      shown_since_trim_ += static_cast<int>(shown);
      if (shown_since_trim_ >= file_->limits.trim_every) {
        shown_since_trim_ = 0;
        trim = true;
      }
    }
    if (trim) {
      file_->batch->PostLazily(
          [this](SQLite::Database& db) {
            file_->db_mu.AssertHeld();
            TrimShown();
            // Rare (every trim_every messages shown) and small (at most
            // watermark_senders_kept + 1 rows).
            watermarks_ = ReadWatermarks(db);
            return absl::OkStatus();
          },
          [this](const absl::Status&) {
            file_->db_mu.AssertHeld();
            // Rolled back: memory follows the file again. Should the read
            // fail too, keeping the raised watermarks only refuses more.
            try {
              watermarks_ = ReadWatermarks(*file_->db);
            } catch (const std::exception&) {
            }
          });
    }
  }

  void ReleaseOverdue(absl::Duration limit, ReceivedCallback done) override {
    auto received = std::make_shared<Received>();
    const int64_t cutoff = OverdueBeforeMs(file_->clock.Wall(), limit);
    file_->batch->Post(
        [this, cutoff, received](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          ScopedStatement overdue(
              file_->statements,
              "SELECT sender_key, epoch FROM inbox WHERE state = 0 AND "
              "received_at_ms < ?1 LIMIT 1");
          ScopedStatement lowest(
              file_->statements,
              "SELECT min(sequence) FROM inbox WHERE state = 0 AND "
              "sender_key = ?1 AND epoch = ?2");
          // Each pass releases at least the lowest held message of one
          // sender, so this ends.
          while (true) {
            overdue->reset();
            overdue->bind(1, cutoff);
            if (!overdue->executeStep()) break;
            const std::string sender_key = overdue->getColumn(0).getString();
            const std::string epoch = overdue->getColumn(1).getString();
            lowest->reset();
            lowest->bind(1, sender_key);
            lowest->bind(2, epoch);
            lowest->executeStep();
            ReleaseInOrder(sender_key, epoch, lowest->getColumn(0).getInt64(),
                           *received);
          }
          return absl::OkStatus();
        },
        [received, done = std::move(done)](const absl::Status& status) {
          if (!status.ok()) {
            done(status);
          } else {
            done(std::move(*received));
          }
        });
  }

  absl::StatusOr<std::vector<ChatMessage>> Unshown() override {
    absl::MutexLock lock(&file_->db_mu);
    std::vector<ChatMessage> messages;
    try {
      ScopedStatement select(file_->statements,
                             "SELECT " CHAT_INBOX_ROW
                             " FROM inbox WHERE state = 1 ORDER BY released");
      while (select->executeStep()) {
        messages.push_back(FromInboxRow(*select));
      }
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the inbox: ", e.what()));
    }
    return messages;
  }

 private:
  // Inside the writer's transaction: the replay watermarks that bear on
  // `sender`. From memory: a query here cost every message ~20% of the
  // writer thread's time (chat-bench send, c=64), which is what limits
  // throughput.
  Watermarks WatermarksOf(const std::string& sender)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    Watermarks marks;
    if (auto it = watermarks_.find(NameKey(sender)); it != watermarks_.end()) {
      marks.sender_ms = it->second;
    }
    if (auto it = watermarks_.find(kEveryone); it != watermarks_.end()) {
      marks.everyone_ms = it->second;
    }
    return marks;
  }

  // Inside the writer's transaction: forgets the ids of shown messages
  // beyond the newest file_->limits.shown_ids_kept, raising each sender's
  // watermark to the newest sending time forgotten, and folds the oldest
  // watermarks into the one for everyone when there are too many.
  void TrimShown() ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement cut(file_->statements,
                        "SELECT arrival FROM inbox WHERE state = 2 ORDER BY "
                        "arrival DESC LIMIT 1 OFFSET ?1");
    cut->bind(1, file_->limits.shown_ids_kept);
    if (!cut->executeStep()) return;
    const int64_t below = cut->getColumn(0).getInt64();
    cut->reset();
    ScopedStatement raise(
        file_->statements,
        "INSERT INTO watermarks (sender_key, sent_ms) SELECT sender_key, "
        "max(sent_at_ms) FROM inbox WHERE state = 2 AND arrival < ?1 AND "
        "sent_at_ms IS NOT NULL GROUP BY sender_key ON CONFLICT (sender_key) "
        "DO UPDATE SET sent_ms = max(sent_ms, excluded.sent_ms)");
    raise->bind(1, below);
    raise->exec();
    ScopedStatement trim_old(
        file_->statements,
        "DELETE FROM inbox WHERE state = 2 AND arrival < ?1");
    trim_old->bind(1, below);
    trim_old->exec();
    ScopedStatement count(
        file_->statements,
        "SELECT count(*) FROM watermarks WHERE sender_key != ''");
    count->executeStep();
    const int64_t over = WatermarksToFold(count->getColumn(0).getInt64(),
                                          file_->limits.watermark_senders_kept);
    count->reset();
    if (over <= 0) return;
    // The oldest ones go: the watermark for everyone becomes the newest of
    // them, so what they covered stays covered.
    ScopedStatement fold(
        file_->statements,
        "INSERT INTO watermarks (sender_key, sent_ms) SELECT '', max(sent_ms) "
        "FROM (SELECT sent_ms FROM watermarks WHERE sender_key != '' ORDER BY "
        "sent_ms LIMIT ?1) WHERE true ON CONFLICT (sender_key) DO UPDATE SET "
        "sent_ms = max(sent_ms, excluded.sent_ms)");
    fold->bind(1, over);
    fold->exec();
    ScopedStatement drop(
        file_->statements,
        "DELETE FROM watermarks WHERE sender_key IN (SELECT sender_key FROM "
        "watermarks WHERE sender_key != '' ORDER BY sent_ms LIMIT ?1)");
    drop->bind(1, over);
    drop->exec();
  }

  // Inside the writer's transaction: records a message not seen before and
  // releases what Admit() decides.
  void ReceiveLocked(const ChatMessage& message, Received& received)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    const std::string sender_key = NameKey(message.from);
    if (!IsSequenced(message)) {
      Insert(message, sender_key, kReleased);
      received.ready.push_back(message);
      return;
    }
    ScopedStatement select(
        file_->statements,
        "SELECT epoch, next_sequence FROM inbound WHERE sender_key = ?1");
    select->bind(1, sender_key);
    std::optional<InboundCounter> inbound;
    if (select->executeStep()) {
      inbound = InboundCounter{select->getColumn(0).getString(),
                               select->getColumn(1).getInt64()};
    }
    select->reset();
    const Admission admission = Admit(message, inbound);
    if (admission.abandoned_epoch.has_value()) {
      ReleaseHeldBelow(sender_key, *admission.abandoned_epoch,
                       std::numeric_limits<int64_t>::max(), received);
    }
    if (admission.release_below > 0) {
      ReleaseHeldBelow(sender_key, message.sequence_epoch,
                       admission.release_below, received);
    }
    if (admission.hold) {
      Insert(message, sender_key, kHeld);
    } else {
      // Most messages: written once, as released, not held and read back.
      Insert(message, sender_key, kReleased);
      received.ready.push_back(message);
    }
    ReleaseInOrder(sender_key, message.sequence_epoch, admission.next,
                   received);
  }

  void Insert(const ChatMessage& message, const std::string& sender_key,
              int state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement insert(
        file_->statements,
        "INSERT INTO inbox (id, sender_key, epoch, sequence, body, "
        "received_at_ms, state, released, late, unverified, sent_at_ms) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    insert->bind(1, message.id);
    insert->bind(2, sender_key);
    const std::string body = Serialize(message);
    if (message.sequence > 0) {
      insert->bind(3, message.sequence_epoch);
      insert->bind(4, message.sequence);
    }
    insert->bind(5, body.data(), static_cast<int>(body.size()));
    insert->bind(6, absl::ToUnixMillis(message.received_at));
    insert->bind(7, state);
    if (state == kReleased) insert->bind(8, NextRelease());
    insert->bind(9, message.late ? 1 : 0);
    insert->bind(10, message.unverified ? 1 : 0);
    if (const std::optional<int64_t> sent_ms = TrustedSentMs(message)) {
      insert->bind(11, *sent_ms);
    }
    insert->exec();
  }

  // Releases the held messages of `sender_key` in `epoch` from `next` on
  // while they are in order (the rule's ReleaseInOrder), and records the
  // first number still missing as the one to wait for.
  void ReleaseInOrder(const std::string& sender_key, const std::string& epoch,
                      int64_t next, Received& received)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement find(file_->statements,
                         "SELECT " CHAT_INBOX_ROW
                         " FROM inbox WHERE state = 0 AND "
                         "sender_key = ?1 AND epoch = ?2 AND sequence = ?3");
    const int64_t awaited = peer::ReleaseInOrder(next, [&](int64_t sequence) {
      file_->db_mu.AssertHeld();
      find->reset();
      find->bind(1, sender_key);
      find->bind(2, epoch);
      find->bind(3, sequence);
      if (!find->executeStep()) return false;
      Release(*find, received);
      return true;
    });
    find->reset();
    ScopedStatement upsert(
        file_->statements,
        "INSERT INTO inbound (sender_key, epoch, next_sequence) VALUES (?1, "
        "?2, ?3) ON CONFLICT (sender_key) DO UPDATE SET epoch = ?2, "
        "next_sequence = ?3");
    upsert->bind(1, sender_key);
    upsert->bind(2, epoch);
    upsert->bind(3, awaited);
    upsert->exec();
  }

  // Releases, in sequence order, every held message of `sender_key` in
  // `epoch` numbered below `below`.
  void ReleaseHeldBelow(const std::string& sender_key, const std::string& epoch,
                        int64_t below, Received& received)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement find(
        file_->statements,
        "SELECT " CHAT_INBOX_ROW
        " FROM inbox WHERE state = 0 AND "
        "sender_key = ?1 AND epoch = ?2 AND sequence < ?3 ORDER BY sequence");
    find->bind(1, sender_key);
    find->bind(2, epoch);
    find->bind(3, below);
    // Collected first: updating rows while stepping over them is unsafe.
    std::vector<ChatMessage> found;
    while (find->executeStep()) found.push_back(FromInboxRow(*find));
    for (ChatMessage& message : found) {
      MarkReleased(sender_key, message.id);
      received.ready.push_back(std::move(message));
    }
  }

  // `row` is positioned on a held message (see FromInboxRow).
  void Release(SQLite::Statement& row, Received& received)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ChatMessage message = FromInboxRow(row);
    row.reset();
    MarkReleased(NameKey(message.from), message.id);
    received.ready.push_back(std::move(message));
  }

  void MarkReleased(const std::string& sender_key, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement update(file_->statements,
                           "UPDATE inbox SET state = 1, released = ?2 WHERE "
                           "id = ?1 AND sender_key = ?3");
    update->bind(1, id);
    update->bind(3, sender_key);
    update->bind(2, NextRelease());
    update->exec();
  }

  int64_t NextRelease() {
    absl::MutexLock lock(&mu_);
    return next_release_++;
  }

  PeerFile* const file_;
  SqliteHistory* const history_;
  absl::Mutex mu_;
  int64_t next_release_ ABSL_GUARDED_BY(mu_) = 1;
  int shown_since_trim_ ABSL_GUARDED_BY(mu_) = 0;
  // The watermarks table as it is in the file (every message's replay
  // check reads it; only the trim changes it).
  absl::flat_hash_map<std::string, int64_t> watermarks_
      ABSL_GUARDED_BY(file_->db_mu);
};

// Table `pins`.
class SqlitePins final : public PinStore {
 public:
  explicit SqlitePins(PeerFile* file) : file_(file) {}

  absl::StatusOr<std::vector<Pin>> Pins() override {
    absl::MutexLock lock(&file_->db_mu);
    std::vector<Pin> pins;
    try {
      ScopedStatement select(file_->statements,
                             "SELECT name, public_key FROM pins");
      while (select->executeStep()) {
        const SQLite::Column key = select->getColumn(1);
        absl::StatusOr<PublicKey> parsed = PublicKey::FromBytes(
            absl::string_view(static_cast<const char*>(key.getBlob()),
                              static_cast<size_t>(key.getBytes())));
        if (!parsed.ok()) continue;  // Damaged: met again on first use.
        pins.push_back(Pin{select->getColumn(0).getString(), *parsed});
      }
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the pinned keys: ", e.what()));
    }
    return pins;
  }

  absl::Status SavePin(const std::string& name,
                       const std::optional<PublicKey>& key) override {
    const int64_t now = absl::ToUnixMillis(file_->clock.Wall());
    return file_->batch->Run([this, name, key, now](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      if (!key.has_value()) {
        ScopedStatement remove(file_->statements,
                               "DELETE FROM pins WHERE name_key = ?1");
        remove->bind(1, NameKey(name));
        remove->exec();
        return absl::OkStatus();
      }
      ScopedStatement upsert(
          file_->statements,
          "INSERT INTO pins (name_key, name, public_key, pinned_at_ms) VALUES "
          "(?1, ?2, ?3, ?4) ON CONFLICT (name_key) DO UPDATE SET name = ?2, "
          "public_key = ?3, pinned_at_ms = ?4");
      const std::string bytes = key->Bytes();
      upsert->bind(1, NameKey(name));
      upsert->bind(2, name);
      upsert->bind(3, bytes.data(), static_cast<int>(bytes.size()));
      upsert->bind(4, now);
      upsert->exec();
      return absl::OkStatus();
    });
  }

 private:
  PeerFile* const file_;
};

// Table `contacts`.
class SqliteContacts final : public ContactStore {
 public:
  explicit SqliteContacts(PeerFile* file) : file_(file) {}

  absl::StatusOr<std::vector<Contact>> Contacts() override {
    absl::MutexLock lock(&file_->db_mu);
    std::vector<Contact> contacts;
    try {
      ScopedStatement select(file_->statements,
                             "SELECT name, state, last_ms FROM contacts ORDER "
                             "BY last_ms DESC");
      while (select->executeStep()) {
        Contact contact;
        contact.name = select->getColumn(0).getString();
        const int state = select->getColumn(1).getInt();
        if (state < 0 || state > 2) continue;  // From a newer build.
        contact.state = static_cast<Contact::State>(state);
        contact.last_unix_ms = select->getColumn(2).getInt64();
        contacts.push_back(std::move(contact));
      }
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the contacts: ", e.what()));
    }
    return contacts;
  }

  void SaveContact(const Contact& contact) override {
    file_->batch->PostLazily([this, contact](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      ScopedStatement upsert(
          file_->statements,
          "INSERT INTO contacts (name_key, name, state, last_ms) VALUES (?1, "
          "?2, ?3, ?4) ON CONFLICT (name_key) DO UPDATE SET name = ?2, state "
          "= ?3, last_ms = ?4");
      upsert->bind(1, NameKey(contact.name));
      upsert->bind(2, contact.name);
      upsert->bind(3, static_cast<int>(contact.state));
      upsert->bind(4, contact.last_unix_ms);
      upsert->exec();
      return absl::OkStatus();
    });
  }

  void ForgetContact(const std::string& name) override {
    file_->batch->PostLazily([this, name](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      ScopedStatement remove(file_->statements,
                             "DELETE FROM contacts WHERE name_key = ?1");
      remove->bind(1, NameKey(name));
      remove->exec();
      return absl::OkStatus();
    });
  }

 private:
  PeerFile* const file_;
};

// Table `reads`, and the kShown notes kept with their message's shown mark
// in the inbox (column `unread`: one write per message shown, not three).
class SqliteReadNotes final : public ReadNoteStore {
 public:
  explicit SqliteReadNotes(PeerFile* file) : file_(file) {}

  absl::StatusOr<std::vector<ReadNote>> ReadNotes() override {
    absl::MutexLock lock(&file_->db_mu);
    std::vector<ReadNote> notes;
    try {
      ScopedStatement select(
          file_->statements,
          "SELECT peer, id, state, at_ms FROM reads ORDER BY at_ms");
      while (select->executeStep()) {
        const int state = select->getColumn(2).getInt();
        if (state < 0 || state > 2) continue;  // From a newer build.
        ReadNote note;
        note.peer = select->getColumn(0).getString();
        note.id = select->getColumn(1).getString();
        note.state = static_cast<ReadNote::State>(state);
        note.at_unix_ms = select->getColumn(3).getInt64();
        notes.push_back(std::move(note));
      }
      // Those kept with their shown mark (MarkShown); the lowercase name
      // reaches the same peer.
      ScopedStatement unread(file_->statements,
                             "SELECT sender_key, id, received_at_ms FROM "
                             "inbox WHERE unread = 1 AND state = 2");
      while (unread->executeStep()) {
        ReadNote note;
        note.peer = unread->getColumn(0).getString();
        note.id = unread->getColumn(1).getString();
        note.state = ReadNote::State::kShown;
        note.at_unix_ms = unread->getColumn(2).getInt64();
        notes.push_back(std::move(note));
      }
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the read receipts: ", e.what()));
    }
    std::stable_sort(notes.begin(), notes.end(),
                     [](const ReadNote& a, const ReadNote& b) {
                       return a.at_unix_ms < b.at_unix_ms;
                     });
    return notes;
  }

  void SaveReadNotes(const std::vector<ReadNote>& notes) override {
    if (notes.empty()) return;
    file_->batch->PostLazily([this, notes](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      ScopedStatement upsert(
          file_->statements,
          "INSERT INTO reads (peer_key, id, peer, state, at_ms) VALUES (?1, "
          "?2, ?3, ?4, ?5) ON CONFLICT (peer_key, id) DO UPDATE SET peer = "
          "?3, state = ?4, at_ms = ?5");
      for (const ReadNote& note : notes) {
        if (note.state == ReadNote::State::kShown) {
          SetUnreadMark(note, true);
          continue;
        }
        upsert->tryReset();
        upsert->bind(1, NameKey(note.peer));
        upsert->bind(2, note.id);
        upsert->bind(3, note.peer);
        upsert->bind(4, static_cast<int>(note.state));
        upsert->bind(5, note.at_unix_ms);
        upsert->exec();
        // This note replaces the one kept with the shown mark, if any.
        SetUnreadMark(note, false);
      }
      return absl::OkStatus();
    });
  }

  void ForgetReadNotes(const std::vector<ReadNote>& notes) override {
    if (notes.empty()) return;
    file_->batch->PostLazily([this, notes](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      ScopedStatement remove(
          file_->statements,
          "DELETE FROM reads WHERE peer_key = ?1 AND id = ?2");
      for (const ReadNote& note : notes) {
        if (note.state == ReadNote::State::kShown) {
          SetUnreadMark(note, false);
          continue;
        }
        remove->tryReset();
        remove->bind(1, NameKey(note.peer));
        remove->bind(2, note.id);
        remove->exec();
      }
      return absl::OkStatus();
    });
  }

 private:
  // Inside the writer's transaction: keeps (or forgets) a kShown note of
  // `note`'s message with its shown mark (MarkShown), the one place such
  // notes live; nothing when the message is not in the inbox as shown.
  void SetUnreadMark(const ReadNote& note, bool unread)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu) {
    ScopedStatement set(file_->statements,
                        "UPDATE inbox SET unread = ?3 WHERE id = ?1 AND "
                        "sender_key = ?2 AND state = 2 AND unread != ?3");
    set->bind(1, note.id);
    set->bind(2, NameKey(note.peer));
    set->bind(3, unread ? 1 : 0);
    set->exec();
  }

  PeerFile* const file_;
};

// Table `meta`, key lease_id.
class SqliteLease final : public LeaseStore {
 public:
  explicit SqliteLease(PeerFile* file) : file_(file) {}

  std::string SavedLeaseId() override {
    absl::MutexLock lock(&file_->db_mu);
    try {
      ScopedStatement select(file_->statements,
                             "SELECT value FROM meta WHERE key = 'lease_id'");
      if (select->executeStep()) return select->getColumn(0).getString();
    } catch (const std::exception&) {
      // No saved lease: the peer registers afresh.
    }
    return "";
  }

  absl::Status SaveLeaseId(const std::string& lease_id) override {
    return file_->batch->Run([this, lease_id](SQLite::Database&) {
      file_->db_mu.AssertHeld();
      ScopedStatement upsert(
          file_->statements,
          "INSERT INTO meta (key, value) VALUES ('lease_id', ?1) ON CONFLICT "
          "(key) DO UPDATE SET value = ?1");
      upsert->bind(1, lease_id);
      upsert->exec();
      return absl::OkStatus();
    });
  }

 private:
  PeerFile* const file_;
};

class SqlitePeerStore final : public PeerStore {
 public:
  // What memory keeps of the file, read when it is opened.
  struct Loaded {
    // Sequence numbers in the outbox, by recipient key.
    absl::flat_hash_map<std::string, std::set<int64_t>> outstanding;
    int64_t next_release = 1;
    // Sender key ("" for everyone) -> watermark, unix ms.
    absl::flat_hash_map<std::string, int64_t> watermarks;
  };

  // May throw SQLite::Exception; the factory translates.
  static Loaded Load(SQLite::Database& db) {
    Loaded loaded;
    SQLite::Statement outstanding(db,
                                  "SELECT recipient_key, sequence FROM outbox");
    while (outstanding.executeStep()) {
      loaded.outstanding[outstanding.getColumn(0).getString()].insert(
          outstanding.getColumn(1).getInt64());
    }
    loaded.next_release =
        db.execAndGet("SELECT coalesce(max(released), 0) + 1 FROM inbox")
            .getInt64();
    loaded.watermarks = ReadWatermarks(db);
    return loaded;
  }

  SqlitePeerStore(SqliteFile file, Loaded loaded, const Clock& clock,
                  PeerStoreLimits limits)
      : file_(std::move(file), clock, limits),
        history_(&file_),
        outbox_(&file_, &history_, std::move(loaded.outstanding)),
        inbox_(&file_, &history_, loaded.next_release,
               std::move(loaded.watermarks)),
        pins_(&file_),
        contacts_(&file_),
        read_notes_(&file_),
        lease_(&file_) {}

  ~SqlitePeerStore() override { file_.Close(); }

  Outbox& outbox() override { return outbox_; }
  Inbox& inbox() override { return inbox_; }
  HistoryStore& history() override { return history_; }
  PinStore& pins() override { return pins_; }
  ContactStore& contacts() override { return contacts_; }
  ReadNoteStore& read_notes() override { return read_notes_; }
  LeaseStore& lease() override { return lease_; }

 private:
  PeerFile file_;  // First in, last out: the roles write through it.
  SqliteHistory history_;
  SqliteOutbox outbox_;
  SqliteInbox inbox_;
  SqlitePins pins_;
  SqliteContacts contacts_;
  SqliteReadNotes read_notes_;
  SqliteLease lease_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PeerStore>> OpenPeerStore(
    const std::string& path, const Clock& clock, bool sync_full,
    PeerStoreLimits limits) {
  limits.shown_ids_kept = std::max<int64_t>(limits.shown_ids_kept, 1);
  limits.trim_every = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(limits.trim_every, limits.shown_ids_kept)));
  limits.watermark_senders_kept =
      std::max<int64_t>(limits.watermark_senders_kept, 1);
  limits.history_rows_kept = std::max<int64_t>(limits.history_rows_kept, 1);
  limits.history_trim_every = std::max(limits.history_trim_every, 1);
  SqliteOpenOptions options;
  options.what = "peer database";
  options.program = "chat-peer";
  // FULL: an acknowledged message survives power loss; group commit keeps
  // that cheap. NORMAL (WAL) survives a killed process, not a lost disk
  // cache, and spares one fsync per commit.
  options.sync_full = sync_full;
  options.migrations = kMigrations;
  absl::StatusOr<SqliteFile> file = OpenSqlite(path, options);
  if (!file.ok()) return file.status();
  try {
    SqlitePeerStore::Loaded loaded = SqlitePeerStore::Load(*file->db);
    return std::unique_ptr<PeerStore>(new SqlitePeerStore(
        *std::move(file), std::move(loaded), clock, limits));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot read peer database ", path, ": ", e.what()));
  }
}

absl::StatusOr<std::string> PeerStorePath(const std::string& data_dir,
                                          const std::string& name) {
  if (data_dir.empty()) {
    return absl::InvalidArgumentError(
        "no data directory: set --data-dir, XDG_STATE_HOME or HOME");
  }
  // Every missing level (like mkdir -p), and the directory itself made
  // private (0700) even when it was there before: it holds the key.
  CHAT_RETURN_IF_ERROR(EnsurePrivateDir(data_dir));
  return absl::StrCat(data_dir, "/", NameKey(name), ".db");
}

std::string DefaultDataDir() {
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state != nullptr && state[0] == '/') {
    return absl::StrCat(state, "/chat-peer");
  }
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') {
    return absl::StrCat(home, "/.local/state/chat-peer");
  }
  return "";
}

}  // namespace chat::peer
