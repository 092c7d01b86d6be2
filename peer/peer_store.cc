#include "peer/peer_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/private_files.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "peer/contact_store_sqlite.h"
#include "peer/group_book_sqlite.h"
#include "peer/history_store_sqlite.h"
#include "peer/inbox_sqlite.h"
#include "peer/lease_store_sqlite.h"
#include "peer/outbox_sqlite.h"
#include "peer/peer_file_sqlite.h"
#include "peer/pin_store_sqlite.h"
#include "peer/read_note_store_sqlite.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

// Schema migrations, in order; migration i brings user_version from i to i+1.
// Append only: a file in the field may be at any earlier version.
const char* const kMigrations[] = {
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
    // 8: conversations by id, and one row per message. Every message
    // belongs to a conversation (a peer's name key today, a group's id
    // next), and is one row of `messages`, both ways: the history, and for
    // theirs the inbox too (held, released, shown) and the copy check (its
    // key, sender and id). What was shown is one number, the shown mark
    // (meta 'shown_through'), not a write per message. Delivery state is
    // kept per message and recipient (`deliveries`, the outbox), our
    // numbering and each sender's per conversation.
    R"sql(
      CREATE TABLE messages (
        seq            INTEGER PRIMARY KEY,         -- order written
        conversation   TEXT NOT NULL,               -- its id
        id             TEXT NOT NULL,
        sender_key     TEXT NOT NULL,               -- lowercase name
        ours           INTEGER NOT NULL,            -- 1: we sent it
        sender         TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        text           TEXT,               -- NULL: in body (before 8)
        sent_at_ms     INTEGER,            -- as written; NULL: not known
        trusted_ms     INTEGER,            -- theirs: authenticated, replay's
        received_at_ms INTEGER,
        written_ms     INTEGER NOT NULL,   -- our clock; the history trim's
        late           INTEGER NOT NULL DEFAULT 0,
        unverified     INTEGER NOT NULL DEFAULT 0,
        status         INTEGER NOT NULL DEFAULT 0,  -- ours: HistoryRank
        in_history     INTEGER NOT NULL DEFAULT 1,
        -- Theirs only: the inbox.
        epoch          TEXT,
        sequence       INTEGER,            -- NULL: not sequenced
        body           BLOB,               -- the message but its text
        state          INTEGER,            -- 0 held, 1 released, 2 shown
        released       INTEGER,            -- release order
        unread         INTEGER NOT NULL DEFAULT 0   -- its kShown read note
      );
      CREATE UNIQUE INDEX messages_key ON messages (sender_key, id, ours);
      CREATE INDEX messages_history ON messages (conversation, seq)
        WHERE in_history = 1;
      CREATE INDEX messages_ours ON messages (id) WHERE ours = 1;
      CREATE INDEX messages_held
        ON messages (conversation, sender_key, epoch, sequence)
        WHERE state = 0;
      -- Theirs out of the history, kept for their ids: what the inbox's
      -- trim reads, without stepping over the history.
      CREATE INDEX messages_out_of_history ON messages (seq)
        WHERE in_history = 0;
      -- The history, both ways, in its order; theirs with what the inbox
      -- kept of them (shown: under the mark, released 0).
      INSERT OR IGNORE INTO messages (seq, conversation, id, sender_key, ours,
          sender, recipient, text, sent_at_ms, trusted_ms, received_at_ms,
          written_ms, late, unverified, status, in_history, state, released,
          unread)
        SELECT h.seq, h.peer_key, h.id,
               CASE WHEN h.ours = 1 THEN lower(h.sender) ELSE h.peer_key END,
               h.ours, h.sender, h.recipient, h.text, h.sent_at_ms,
               i.sent_at_ms, h.received_at_ms, h.written_ms, h.late,
               h.unverified, CASE WHEN h.ours = 1 THEN h.state ELSE 0 END, 1,
               CASE WHEN h.ours = 1 THEN NULL ELSE 1 END,
               CASE WHEN h.ours = 1 THEN NULL ELSE 0 END,
               coalesce(i.unread, 0)
        FROM history h LEFT JOIN inbox i ON h.ours = 0 AND
             i.sender_key = h.peer_key AND i.id = h.id AND i.state = 2
        ORDER BY h.seq;
      -- The rest of the inbox, after the history: ids kept for copies
      -- (shown, out of the history), and what is held or not shown yet.
      INSERT OR IGNORE INTO messages (seq, conversation, id, sender_key, ours,
          sender, recipient, text, sent_at_ms, trusted_ms, received_at_ms,
          written_ms, late, unverified, in_history, epoch, sequence, body,
          state, released, unread)
        SELECT (SELECT coalesce(max(seq), 0) FROM history) + i.arrival,
               i.sender_key, i.id, i.sender_key, 0, i.sender_key, '', NULL,
               i.sent_at_ms, i.sent_at_ms, i.received_at_ms, i.received_at_ms,
               i.late, i.unverified, CASE WHEN i.state = 2 THEN 0 ELSE 1 END,
               i.epoch, i.sequence, i.body, min(i.state, 1),
               CASE WHEN i.state = 2 THEN 0 ELSE i.released END, i.unread
        FROM inbox i ORDER BY i.arrival;
      DROP TABLE history;
      DROP TABLE inbox;
      DELETE FROM sqlite_sequence WHERE name = 'inbox';
      INSERT INTO meta (key, value) VALUES ('shown_through', '0')
        ON CONFLICT (key) DO UPDATE SET value = '0';
      -- Delivery state: one row per message and recipient.
      CREATE TABLE deliveries (
        id            TEXT NOT NULL,
        recipient_key TEXT NOT NULL,
        conversation  TEXT NOT NULL,
        sequence      INTEGER NOT NULL,
        body          BLOB NOT NULL,              -- serialized chat Message
        stored        INTEGER NOT NULL DEFAULT 0, -- 1: in the mailbox
        PRIMARY KEY (id, recipient_key)
      );
      INSERT INTO deliveries (id, recipient_key, conversation, sequence, body,
                              stored)
        SELECT id, recipient_key, recipient_key, sequence, body, stored
        FROM outbox;
      DROP TABLE outbox;
      -- Each sender's counter, per conversation.
      CREATE TABLE inbound_v8 (
        conversation  TEXT NOT NULL,
        sender_key    TEXT NOT NULL,
        epoch         TEXT NOT NULL,
        next_sequence INTEGER NOT NULL,
        PRIMARY KEY (conversation, sender_key)
      ) WITHOUT ROWID;
      INSERT INTO inbound_v8 (conversation, sender_key, epoch, next_sequence)
        SELECT sender_key, sender_key, epoch, next_sequence FROM inbound;
      DROP TABLE inbound;
      ALTER TABLE inbound_v8 RENAME TO inbound;
      ALTER TABLE conversations RENAME COLUMN peer_key TO conversation;
      ALTER TABLE reads RENAME COLUMN peer_key TO conversation;
    )sql",
    // 9: the inbox's trim finds the ids it may forget by release number, so
    // it reads only those rows, not the newest shown_ids_kept rows of the
    // table (wide ones, with their bodies) every trim_every messages.
    R"sql(
      DROP INDEX messages_out_of_history;
      CREATE INDEX messages_forgettable ON messages (released)
        WHERE in_history = 0;
    )sql",
    // 10: the shown mark rides on the row of the message it reaches (state
    // 3, kShownMark), whose page the next message's row is written to
    // anyway, rather than on a page of `meta` of its own per batch. No
    // table changes: the version keeps older builds, which would take
    // state 3 for "not shown", off the file.
    R"sql(
      SELECT 1;
    )sql",
    // 11: groups: per group known, the latest membership state verified
    // along its hash chain (peer/group_rules.h), and whether we are in it.
    R"sql(
      CREATE TABLE groups (
        group_id     TEXT PRIMARY KEY NOT NULL,  -- 32 lowercase hex
        version      INTEGER NOT NULL,
        state        BLOB NOT NULL,     -- serialized v1::GroupState
        display_name TEXT NOT NULL,     -- shown; need not be unique
        member       INTEGER NOT NULL,  -- 1: we are listed, not ended
        updated_ms   INTEGER NOT NULL   -- our clock
      ) WITHOUT ROWID;
    )sql",
    // 12: group conversations: a message of ours to a group is one row of
    // `messages` (conversation "#" and the group id) that counts its
    // members' copies, each with its own delivery and its own state here,
    // which go with the row; and every membership state verified, so a
    // message is judged by the state its sender saw.
    R"sql(
      ALTER TABLE messages ADD COLUMN copies INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE copy_states (
        id            TEXT NOT NULL,              -- ours, copies > 0
        recipient_key TEXT NOT NULL,
        status        INTEGER NOT NULL DEFAULT 0, -- HistoryRank
        PRIMARY KEY (id, recipient_key)
      ) WITHOUT ROWID;
      CREATE TRIGGER copy_states_follow AFTER DELETE ON messages
        WHEN old.ours = 1 AND old.copies > 0
        BEGIN DELETE FROM copy_states WHERE id = old.id; END;
      CREATE TABLE group_states (
        group_id TEXT NOT NULL,
        version  INTEGER NOT NULL,
        state    BLOB NOT NULL,  -- serialized v1::GroupState
        PRIMARY KEY (group_id, version)
      ) WITHOUT ROWID;
      INSERT INTO group_states (group_id, version, state)
        SELECT group_id, version, state FROM groups;
    )sql",
    // 13: read receipts in groups: a note of ours awaiting its receipt
    // knows the group the copy went to (ReadNote::group_id), and each copy
    // keeps its member's name as written, which "read by" shows.
    R"sql(
      ALTER TABLE reads ADD COLUMN group_id TEXT NOT NULL DEFAULT '';
      ALTER TABLE copy_states ADD COLUMN recipient TEXT;
    )sql",
};
static_assert(std::size(kMigrations) == kPeerSchemaVersion);

class SqlitePeerStore final : public PeerStore {
 public:
  // What memory keeps of the file, read when it is opened.
  struct Loaded {
    SqliteOutbox::Outstanding outstanding;
    SqliteInbox::Loaded inbox;
    SqliteGroupBook::Loaded groups;
  };

  // May throw SQLite::Exception; the factory translates.
  static Loaded Load(SQLite::Database& db) {
    Loaded loaded;
    loaded.outstanding = SqliteOutbox::Load(db);
    loaded.inbox = SqliteInbox::Load(db);
    loaded.groups = SqliteGroupBook::Load(db);
    return loaded;
  }

  SqlitePeerStore(SqliteFile file, Loaded loaded, const Clock& clock,
                  PeerStoreLimits limits)
      : file_(std::move(file), clock, limits),
        history_(&file_),
        outbox_(&file_, &history_, std::move(loaded.outstanding)),
        inbox_(&file_, &history_, std::move(loaded.inbox)),
        pins_(&file_),
        contacts_(&file_),
        read_notes_(&file_),
        lease_(&file_),
        groups_(&file_, std::move(loaded.groups)) {}

  ~SqlitePeerStore() override { file_.Close(); }

  Outbox& outbox() override { return outbox_; }
  Inbox& inbox() override { return inbox_; }
  HistoryStore& history() override { return history_; }
  PinStore& pins() override { return pins_; }
  ContactStore& contacts() override { return contacts_; }
  ReadNoteStore& read_notes() override { return read_notes_; }
  LeaseStore& lease() override { return lease_; }
  GroupBook& groups() override { return groups_; }

 private:
  PeerFile file_;  // First in, last out: the roles write through it.
  SqliteHistory history_;
  SqliteOutbox outbox_;
  SqliteInbox inbox_;
  SqlitePins pins_;
  SqliteContacts contacts_;
  SqliteReadNotes read_notes_;
  SqliteLease lease_;
  SqliteGroupBook groups_;
};

}  // namespace

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
  limits.max_groups = std::max<int64_t>(limits.max_groups, 0);
  SqliteOpenOptions options;
  options.what = "peer database";
  options.program = "chat-peer";
  // FULL: an acknowledged message survives power loss; group commit keeps
  // that cheap. NORMAL (WAL) survives a killed process, not a lost disk
  // cache, and spares one fsync per commit.
  options.sync_full = sync_full;
  options.migrations.assign(std::begin(kMigrations), std::end(kMigrations));
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
