#include "peer/inbox_sqlite.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

// The sender key of the watermark that holds for every sender.
constexpr char kEveryone[] = "";

static_assert(kShownMark == 3, "the SQL below spells kShownMark");

// What every inbox read selects, for FromInboxRow.
#define CHAT_INBOX_ROW "id, body, received_at_ms, late, unverified, text"

// SQL: a row of theirs out of the history whose id may be forgotten:
// released at least ?1 releases before the shown mark (so shown), or shown
// beyond the mark (state kShown) as long ago. Named with the index that
// reaches it (INDEXED BY): left to itself, SQLite groups by walking the
// whole table's key index instead.
#define CHAT_FORGETTABLE                                     \
  "ours = 0 AND in_history = 0 AND state >= 1 AND released " \
  "<= " CHAT_SHOWN_THROUGH " - ?1"

// A row of theirs selected as CHAT_INBOX_ROW.
ChatMessage FromInboxRow(SQLite::Statement& row) {
  ChatMessage message = Parse(row.getColumn(1));
  message.id = row.getColumn(0).getString();
  message.received_at = absl::FromUnixMillis(row.getColumn(2).getInt64());
  message.late = row.getColumn(3).getInt() != 0;
  message.unverified = row.getColumn(4).getInt() != 0;
  // Its own column since schema 8; in the body before.
  if (!row.getColumn(5).isNull()) message.text = row.getColumn(5).getString();
  return message;
}

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

SqliteInbox::MessageKey KeyOf(const ChatMessage& message) {
  return {NameKey(message.from), message.id};
}

}  // namespace

SqliteInbox::Loaded SqliteInbox::Load(SQLite::Database& db) {
  Loaded loaded;
  {
    // One pass over the table (no index has every release number).
    SQLite::Statement numbers(
        db,
        "SELECT coalesce(max(released), 0) + 1, coalesce(max(CASE WHEN state "
        "= 3 THEN released END), 0) FROM messages");
    numbers.executeStep();
    loaded.next_release = numbers.getColumn(0).getInt64();
    loaded.shown_through = std::max(
        numbers.getColumn(1).getInt64(),
        db.execAndGet("SELECT CAST(value AS INTEGER) FROM meta WHERE key = "
                      "'shown_through'")
            .getInt64());
  }
  SQLite::Statement unshown(db,
                            "SELECT sender_key, id, released FROM messages "
                            "WHERE ours = 0 AND state = 1 AND released > ?1");
  unshown.bind(1, loaded.shown_through);
  while (unshown.executeStep()) {
    loaded.unshown[{unshown.getColumn(0).getString(),
                    unshown.getColumn(1).getString()}] =
        unshown.getColumn(2).getInt64();
  }
  loaded.watermarks = ReadWatermarks(db);
  return loaded;
}

SqliteInbox::SqliteInbox(PeerFile* file, SqliteHistory* history, Loaded loaded)
    : file_(file),
      history_(history),
      next_release_(loaded.next_release),
      shown_through_(loaded.shown_through),
      released_through_(loaded.next_release - 1),
      unshown_(std::move(loaded.unshown)),
      watermarks_(std::move(loaded.watermarks)) {
  for (const auto& [key, number] : unshown_) unshown_numbers_.insert(number);
  absl::MutexLock hold(&file_->db_mu);
  file_->shown_through = shown_through_;
}

void SqliteInbox::Receive(ChatMessage message, ReceivedCallback done) {
  if (message.received_at == absl::InfinitePast()) {
    message.received_at = file_->clock.Wall();
  }
  auto releasing = std::make_shared<Releasing>();
  file_->batch->Post(
      [this, message = std::move(message), releasing](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        ReceiveLocked(message, *releasing);
        return absl::OkStatus();
      },
      ReleasedHook(releasing, std::move(done)), history_->RecountOnFailure());
  history_->CountWritten(1);
}

SqliteBatch::AfterCommit SqliteInbox::ReleasedHook(
    std::shared_ptr<Releasing> releasing, ReceivedCallback done) {
  return [this, releasing = std::move(releasing),
          done = std::move(done)](const absl::Status& status) {
    if (!status.ok()) {
      done(status);
      return;
    }
    Released(*releasing);
    done(std::move(releasing->received));
  };
}

void SqliteInbox::Released(const Releasing& releasing) {
  if (releasing.numbers.empty()) return;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, number] : releasing.numbers) {
    unshown_[key] = number;
    unshown_numbers_.insert(number);
    released_through_ = std::max(released_through_, number);
  }
}

void SqliteInbox::MarkShown(const std::vector<ChatMessage>& messages,
                            const std::vector<ReadNote>& unread) {
  if (messages.empty()) return;
  absl::flat_hash_set<std::string> unread_ids;
  for (const ReadNote& note : unread) unread_ids.insert(note.id);
  // Shown beyond the mark (out of release order, or not known here as
  // released): marked one by one.
  std::vector<MessageKey> beyond;
  // Read notes other than the one a row starts with (UnreadOnArrival).
  std::vector<std::pair<MessageKey, bool>> notes;
  bool write_mark = false;
  bool trim = false;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::pair<MessageKey, int64_t>> marked;
    for (const ChatMessage& message : messages) {
      MessageKey key = KeyOf(message);
      auto it = unshown_.find(key);
      if (it == unshown_.end()) {
        beyond.push_back(std::move(key));
        continue;
      }
      unshown_numbers_.erase(it->second);
      marked.emplace_back(std::move(key), it->second);
      unshown_.erase(it);
    }
    const int64_t through =
        ShownThrough(shown_through_, unshown_numbers_, released_through_);
    for (auto& [key, number] : marked) {
      if (number > through) {
        beyond.push_back(std::move(key));
      } else if (!mark_row_ || number > mark_row_->second) {
        mark_row_.emplace(std::move(key), number);
      }
    }
    // One job writes the latest mark for every MarkShown() until it runs.
    write_mark = mark_row_.has_value() && !mark_queued_;
    if (write_mark) mark_queued_ = true;
    shown_through_ = through;
    shown_since_trim_ += static_cast<int>(messages.size());
    if (shown_since_trim_ >= file_->limits.trim_every) {
      shown_since_trim_ = 0;
      trim = true;
    }
  }
  for (const ChatMessage& message : messages) {
    const bool noted = unread_ids.contains(message.id);
    if (noted != UnreadOnArrival(message)) {
      notes.emplace_back(KeyOf(message), noted);
    }
  }
  if (write_mark || !beyond.empty() || !notes.empty()) {
    // One write for the messages shown in release order (most): the mark.
    auto mark_before = std::make_shared<std::optional<int64_t>>();
    file_->batch->PostLazily(
        [this, write_mark, beyond = std::move(beyond), notes = std::move(notes),
         mark_before](SQLite::Database&) {
          file_->db_mu.AssertHeld();
          // Before the rows shown beyond it: those the mark now covers would
          // be marked one by one for nothing.
          if (write_mark) {
            std::optional<std::pair<MessageKey, int64_t>> row;
            {
              absl::MutexLock lock(&mu_);
              row.swap(mark_row_);  // The latest: every mark waiting too.
              mark_queued_ = false;
            }
            if (row && row->second > file_->shown_through) {
              *mark_before = file_->shown_through;
              WriteShownMarkLocked(row->first, row->second);
            }
          }
          ScopedStatement shown(
              file_->statements,
              "UPDATE messages SET state = 2 WHERE sender_key = "
              "?1 AND id = ?2 AND ours = 0 AND state = 1");
          for (const MessageKey& key : beyond) {
            shown->reset();
            shown->bind(1, key.first);
            shown->bind(2, key.second);
            shown->exec();
          }
          ScopedStatement note(
              file_->statements,
              "UPDATE messages SET unread = ?3 WHERE sender_key = "
              "?1 AND id = ?2 AND ours = 0");
          for (const auto& [key, noted] : notes) {
            note->reset();
            note->bind(1, key.first);
            note->bind(2, key.second);
            note->bind(3, noted ? 1 : 0);
            note->exec();
          }
          return absl::OkStatus();
        },
        [this, mark_before](const absl::Status&) {
          file_->db_mu.AssertHeld();
          // Rolled back: the file's mark is what it was.
          if (*mark_before) {
            file_->shown_through =
                std::min(file_->shown_through, **mark_before);
          }
        });
  }
  if (trim) {
    file_->batch->PostLazily(
        [this](SQLite::Database& db) {
          file_->db_mu.AssertHeld();
          TrimShownLocked();
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

void SqliteInbox::ReleaseOverdue(absl::Duration limit, ReceivedCallback done) {
  auto releasing = std::make_shared<Releasing>();
  const int64_t cutoff = OverdueBeforeMs(file_->clock.Wall(), limit);
  file_->batch->Post(
      [this, cutoff, releasing](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        ScopedStatement overdue(
            file_->statements,
            "SELECT conversation, sender_key, epoch FROM messages WHERE state "
            "= 0 AND received_at_ms < ?1 LIMIT 1");
        ScopedStatement lowest(
            file_->statements,
            "SELECT min(sequence) FROM messages WHERE state = 0 AND "
            "conversation = ?1 AND sender_key = ?2 AND epoch = ?3");
        // Each pass releases at least the lowest held message of one
        // sender, so this ends.
        while (true) {
          overdue->reset();
          overdue->bind(1, cutoff);
          if (!overdue->executeStep()) break;
          const std::string conversation = overdue->getColumn(0).getString();
          const std::string sender_key = overdue->getColumn(1).getString();
          const std::string epoch = overdue->getColumn(2).getString();
          overdue->reset();
          lowest->reset();
          lowest->bind(1, conversation);
          lowest->bind(2, sender_key);
          lowest->bind(3, epoch);
          lowest->executeStep();
          const int64_t from = lowest->getColumn(0).getInt64();
          lowest->reset();
          ReleaseInOrderLocked(conversation, sender_key, epoch, from,
                               *releasing);
        }
        return absl::OkStatus();
      },
      ReleasedHook(releasing, std::move(done)));
}

absl::StatusOr<std::vector<ChatMessage>> SqliteInbox::Unshown() {
  absl::MutexLock lock(&file_->db_mu);
  std::vector<ChatMessage> messages;
  try {
    ScopedStatement select(file_->statements,
                           "SELECT " CHAT_INBOX_ROW
                           " FROM messages WHERE ours = 0 AND state = 1 AND "
                           "released > " CHAT_SHOWN_THROUGH
                           " ORDER BY released");
    while (select->executeStep()) {
      messages.push_back(FromInboxRow(*select));
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the inbox: ", e.what()));
  }
  return messages;
}

// The replay watermarks that bear on `sender`. From memory: a query here
// cost every message ~20% of the writer thread's time (chat-bench send,
// c=64), which is what limits throughput.
Watermarks SqliteInbox::WatermarksOf(const std::string& sender) {
  Watermarks marks;
  if (auto it = watermarks_.find(NameKey(sender)); it != watermarks_.end()) {
    marks.sender_ms = it->second;
  }
  if (auto it = watermarks_.find(kEveryone); it != watermarks_.end()) {
    marks.everyone_ms = it->second;
  }
  return marks;
}

void SqliteInbox::WriteShownMarkLocked(const MessageKey& key, int64_t number) {
  file_->shown_through = number;
  ScopedStatement mark(file_->statements,
                       "UPDATE messages SET state = 3 WHERE sender_key = ?1 "
                       "AND id = ?2 AND ours = 0 AND state >= 1");
  mark->bind(1, key.first);
  mark->bind(2, key.second);
  // No row to carry it (none is deleted above the mark, so this is a file
  // changed by hand): the mark goes where no row is needed.
  if (mark->exec() == 0) FoldShownMarkLocked();
}

void SqliteInbox::FoldShownMarkLocked() {
  ScopedStatement fold(file_->statements,
                       "UPDATE meta SET value = CAST(?1 AS TEXT) WHERE key = "
                       "'shown_through' AND CAST(value AS INTEGER) < ?1");
  fold->bind(1, file_->shown_through);
  fold->exec();
}

// Forgets the ids of shown messages released before the newest
// shown_ids_kept (those still in the history stay: they are kept as long as
// it keeps them), raising each sender's watermark to the newest sending
// time forgotten, and folds the oldest watermarks into the one for everyone
// when there are too many. Release numbers, not row order, say which are
// older: the index on them (out of the history) reaches exactly the rows to
// forget, where counting shown rows back from the newest read
// shown_ids_kept wide rows every trim.
void SqliteInbox::TrimShownLocked() {
  // The mark in meta too, so rows that carried it may go.
  FoldShownMarkLocked();
  ScopedStatement raise(
      file_->statements,
      "INSERT INTO watermarks (sender_key, sent_ms) SELECT sender_key, "
      "max(trusted_ms) FROM messages INDEXED BY messages_forgettable "
      "WHERE " CHAT_FORGETTABLE
      " AND trusted_ms IS NOT NULL GROUP BY sender_key ON CONFLICT "
      "(sender_key) DO UPDATE SET sent_ms = max(sent_ms, excluded.sent_ms)");
  raise->bind(1, file_->limits.shown_ids_kept);
  raise->exec();
  ScopedStatement trim_old(file_->statements,
                           "DELETE FROM messages INDEXED BY "
                           "messages_forgettable WHERE " CHAT_FORGETTABLE);
  trim_old->bind(1, file_->limits.shown_ids_kept);
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

// Records a message not seen before and releases what Admit() decides. The
// copy check is the row's key: the insert that finds the row there already
// writes nothing. Only when admitting it would release others first is the
// key looked up before.
void SqliteInbox::ReceiveLocked(const ChatMessage& message,
                                Releasing& releasing) {
  Received& received = releasing.received;
  if (IsReplay(message, WatermarksOf(message.from))) {
    received.duplicate = true;
    return;
  }
  const std::string conversation = ConversationOfReceived(message);
  if (!IsSequenced(message)) {
    if (!InsertLocked(message, conversation, kReleased, releasing)) {
      received.duplicate = true;
      return;
    }
    received.ready.push_back(message);
    return;
  }
  const std::string sender_key = NameKey(message.from);
  ScopedStatement select(file_->statements,
                         "SELECT epoch, next_sequence FROM inbound WHERE "
                         "conversation = ?1 AND sender_key = ?2");
  select->bind(1, conversation);
  select->bind(2, sender_key);
  std::optional<InboundCounter> inbound;
  if (select->executeStep()) {
    inbound = InboundCounter{select->getColumn(0).getString(),
                             select->getColumn(1).getInt64()};
  }
  select->reset();
  const Admission admission = Admit(message, inbound);
  if (ReleasesOthersFirst(admission)) {
    if (SeenLocked(message)) {
      received.duplicate = true;
      return;
    }
    if (admission.abandoned_epoch.has_value()) {
      ReleaseHeldBelowLocked(conversation, sender_key,
                             *admission.abandoned_epoch,
                             std::numeric_limits<int64_t>::max(), releasing);
    }
    if (admission.release_below > 0) {
      ReleaseHeldBelowLocked(conversation, sender_key, message.sequence_epoch,
                             admission.release_below, releasing);
    }
  }
  // Most messages: written once, as released, not held and read back.
  if (!InsertLocked(message, conversation, admission.hold ? kHeld : kReleased,
                    releasing)) {
    received.duplicate = true;
    return;
  }
  if (!admission.hold) received.ready.push_back(message);
  ReleaseInOrderLocked(conversation, sender_key, message.sequence_epoch,
                       admission.next, releasing);
}

bool SqliteInbox::SeenLocked(const ChatMessage& message) {
  // Per sender: another sender's id is no copy of this one.
  ScopedStatement seen(file_->statements,
                       "SELECT 1 FROM messages WHERE sender_key = ?1 AND id = "
                       "?2 AND ours = 0");
  seen->bind(1, NameKey(message.from));
  seen->bind(2, message.id);
  const bool found = seen->executeStep();
  seen->reset();
  return found;
}

bool SqliteInbox::InsertLocked(const ChatMessage& message,
                               const std::string& conversation, int state,
                               Releasing& releasing) {
  ScopedStatement insert(
      file_->statements,
      "INSERT INTO messages (conversation, id, sender_key, ours, sender, "
      "recipient, text, sent_at_ms, trusted_ms, received_at_ms, written_ms, "
      "late, unverified, in_history, epoch, sequence, body, state, released, "
      "unread) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
      "?13, ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT (sender_key, id, ours) "
      "DO NOTHING");
  const std::string sender_key = NameKey(message.from);
  insert->bind(1, conversation);
  insert->bind(2, message.id);
  insert->bind(3, sender_key);
  insert->bind(4, message.from);
  insert->bind(5, message.to);
  insert->bind(6, message.text);
  if (message.sent_at != absl::InfinitePast()) {
    insert->bind(7, absl::ToUnixMillis(message.sent_at));
  }
  if (const std::optional<int64_t> sent_ms = TrustedSentMs(message)) {
    insert->bind(8, *sent_ms);
  }
  insert->bind(9, absl::ToUnixMillis(message.received_at));
  // Our clock, so a sender's wrong clock cannot keep its messages in the
  // history for ever or erase them at once.
  insert->bind(10, absl::ToUnixMillis(file_->clock.Wall()));
  insert->bind(11, message.late ? 1 : 0);
  insert->bind(12, message.unverified ? 1 : 0);
  // A group's change notice is told as the change it announced, never as
  // a line of the conversation: kept for its id only.
  const bool in_history = file_->KeepsHistory() && !IsGroupControl(message);
  insert->bind(13, in_history ? 1 : 0);
  if (message.sequence > 0) {
    insert->bind(14, message.sequence_epoch);
    insert->bind(15, message.sequence);
  }
  // The rest of the message (its text has its column).
  ChatMessage rest = message;
  rest.text.clear();
  const std::string body = Serialize(rest);
  insert->bind(16, body.data(), static_cast<int>(body.size()));
  insert->bind(17, state);
  int64_t number = 0;
  if (state == kReleased) {
    number = NextRelease();
    insert->bind(18, number);
  }
  insert->bind(19, UnreadOnArrival(message) ? 1 : 0);
  if (insert->exec() == 0) return false;
  if (in_history) history_->CountRowLocked();
  if (state == kReleased) {
    releasing.numbers.emplace_back(MessageKey{sender_key, message.id}, number);
  }
  return true;
}

// Releases the held messages of `sender_key` in `epoch` from `next` on
// while they are in order (the rule's ReleaseInOrder), and records the
// first number still missing as the one to wait for.
void SqliteInbox::ReleaseInOrderLocked(const std::string& conversation,
                                       const std::string& sender_key,
                                       const std::string& epoch, int64_t next,
                                       Releasing& releasing) {
  ScopedStatement find(file_->statements,
                       "SELECT " CHAT_INBOX_ROW
                       " FROM messages WHERE state = 0 AND conversation = ?1 "
                       "AND sender_key = ?2 AND epoch = ?3 AND sequence = ?4");
  const int64_t awaited = peer::ReleaseInOrder(next, [&](int64_t sequence) {
    file_->db_mu.AssertHeld();
    find->reset();
    find->bind(1, conversation);
    find->bind(2, sender_key);
    find->bind(3, epoch);
    find->bind(4, sequence);
    if (!find->executeStep()) return false;
    ChatMessage message = FromInboxRow(*find);
    find->reset();
    MarkReleasedLocked(std::move(message), releasing);
    return true;
  });
  find->reset();
  ScopedStatement upsert(
      file_->statements,
      "INSERT INTO inbound (conversation, sender_key, epoch, next_sequence) "
      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (conversation, sender_key) DO "
      "UPDATE SET epoch = ?3, next_sequence = ?4");
  upsert->bind(1, conversation);
  upsert->bind(2, sender_key);
  upsert->bind(3, epoch);
  upsert->bind(4, awaited);
  upsert->exec();
}

// Releases, in sequence order, every held message of `sender_key` in
// `epoch` numbered below `below`.
void SqliteInbox::ReleaseHeldBelowLocked(const std::string& conversation,
                                         const std::string& sender_key,
                                         const std::string& epoch,
                                         int64_t below, Releasing& releasing) {
  ScopedStatement find(
      file_->statements,
      "SELECT " CHAT_INBOX_ROW
      " FROM messages WHERE state = 0 AND conversation = ?1 AND sender_key = "
      "?2 AND epoch = ?3 AND sequence < ?4 ORDER BY sequence");
  find->bind(1, conversation);
  find->bind(2, sender_key);
  find->bind(3, epoch);
  find->bind(4, below);
  // Collected first: updating rows while stepping over them is unsafe.
  std::vector<ChatMessage> found;
  while (find->executeStep()) found.push_back(FromInboxRow(*find));
  find->reset();
  for (ChatMessage& message : found) {
    MarkReleasedLocked(std::move(message), releasing);
  }
}

void SqliteInbox::MarkReleasedLocked(ChatMessage message,
                                     Releasing& releasing) {
  const int64_t number = NextRelease();
  // Moved to the end of the history too, where it is shown (it waited
  // since it came).
  ScopedStatement update(
      file_->statements,
      "UPDATE messages SET state = 1, released = ?3, seq = (SELECT max(seq) "
      "FROM messages) + 1 WHERE sender_key = ?1 AND id = ?2 AND ours = 0");
  MessageKey key = KeyOf(message);
  update->bind(1, key.first);
  update->bind(2, key.second);
  update->bind(3, number);
  update->exec();
  releasing.numbers.emplace_back(std::move(key), number);
  releasing.received.ready.push_back(std::move(message));
}

int64_t SqliteInbox::NextRelease() {
  absl::MutexLock lock(&mu_);
  return next_release_++;
}

}  // namespace chat::peer
