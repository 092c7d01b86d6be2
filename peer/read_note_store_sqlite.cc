#include "peer/read_note_store_sqlite.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"

namespace chat::peer {

using registry::NameKey;

absl::StatusOr<std::vector<ReadNote>> SqliteReadNotes::ReadNotes() {
  absl::MutexLock lock(&file_->db_mu);
  std::vector<ReadNote> notes;
  try {
    ScopedStatement select(
        file_->statements,
        "SELECT peer, id, state, at_ms, group_id FROM reads ORDER BY at_ms");
    while (select->executeStep()) {
      const int state = select->getColumn(2).getInt();
      if (state < 0 || state > 2) continue;  // From a newer build.
      ReadNote note;
      note.peer = select->getColumn(0).getString();
      note.id = select->getColumn(1).getString();
      note.state = static_cast<ReadNote::State>(state);
      note.at_unix_ms = select->getColumn(3).getInt64();
      note.group_id = select->getColumn(4).getString();
      notes.push_back(std::move(note));
    }
    // Those kept with their message (MarkShown); the lowercase name
    // reaches the same peer.
    ScopedStatement unread(
        file_->statements,
        "SELECT sender_key, id, received_at_ms, conversation FROM "
        "messages WHERE ours = 0 AND unread = 1 AND " CHAT_SHOWN);
    while (unread->executeStep()) {
      ReadNote note;
      note.peer = unread->getColumn(0).getString();
      note.id = unread->getColumn(1).getString();
      note.state = ReadNote::State::kShown;
      note.at_unix_ms = unread->getColumn(2).getInt64();
      // Its conversation says whether it came in a group.
      const std::string conversation = unread->getColumn(3).getString();
      if (!conversation.empty() && conversation.front() == '#') {
        note.group_id = conversation.substr(1);
      }
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

void SqliteReadNotes::SaveReadNotes(const std::vector<ReadNote>& notes) {
  if (notes.empty()) return;
  file_->batch->PostLazily([this, notes](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    ScopedStatement upsert(
        file_->statements,
        "INSERT INTO reads (conversation, id, peer, state, at_ms, group_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (conversation, id) DO "
        "UPDATE SET peer = ?3, state = ?4, at_ms = ?5, group_id = ?6");
    for (const ReadNote& note : notes) {
      if (note.state == ReadNote::State::kShown) {
        SetUnreadMarkLocked(note, true);
        continue;
      }
      upsert->tryReset();
      upsert->bind(1, ConversationWith(note.peer));
      upsert->bind(2, note.id);
      upsert->bind(3, note.peer);
      upsert->bind(4, static_cast<int>(note.state));
      upsert->bind(5, note.at_unix_ms);
      upsert->bind(6, note.group_id);
      upsert->exec();
      // This note replaces the one kept with the message, if any.
      SetUnreadMarkLocked(note, false);
    }
    return absl::OkStatus();
  });
}

void SqliteReadNotes::ForgetReadNotes(const std::vector<ReadNote>& notes) {
  if (notes.empty()) return;
  file_->batch->PostLazily([this, notes](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    ScopedStatement remove(
        file_->statements,
        "DELETE FROM reads WHERE conversation = ?1 AND id = ?2");
    for (const ReadNote& note : notes) {
      if (note.state == ReadNote::State::kShown) {
        SetUnreadMarkLocked(note, false);
        continue;
      }
      remove->tryReset();
      remove->bind(1, ConversationWith(note.peer));
      remove->bind(2, note.id);
      remove->exec();
    }
    return absl::OkStatus();
  });
}

void SqliteReadNotes::SetUnreadMarkLocked(const ReadNote& note, bool unread) {
  ScopedStatement set(
      file_->statements,
      "UPDATE messages SET unread = ?3 WHERE sender_key = ?1 "
      "AND id = ?2 AND ours = 0 AND unread != ?3 AND " CHAT_SHOWN);
  set->bind(1, NameKey(note.peer));
  set->bind(2, note.id);
  set->bind(3, unread ? 1 : 0);
  set->exec();
}

}  // namespace chat::peer
