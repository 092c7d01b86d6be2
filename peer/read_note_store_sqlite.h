// The read notes' SQLite side: table `reads`, and the kShown notes kept
// with their message's row in `messages` (column `unread`). For
// peer/*_sqlite.cc only.

#ifndef CHAT_PEER_READ_NOTE_STORE_SQLITE_H_
#define CHAT_PEER_READ_NOTE_STORE_SQLITE_H_

#include "peer/peer_file_sqlite.h"
#include "peer/read_note_store.h"

namespace chat::peer {

class SqliteReadNotes final : public ReadNoteStore {
 public:
  explicit SqliteReadNotes(PeerFile* file) : file_(file) {}

  absl::StatusOr<std::vector<ReadNote>> ReadNotes() override;
  void SaveReadNotes(const std::vector<ReadNote>& notes) override;
  void ForgetReadNotes(const std::vector<ReadNote>& notes) override;

 private:
  // Inside the writer's transaction: keeps (or forgets) a kShown note of
  // `note`'s message with its row, the one place such notes live; nothing
  // when the message is not in the inbox as shown.
  void SetUnreadMarkLocked(const ReadNote& note, bool unread)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);

  PeerFile* const file_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_READ_NOTE_STORE_SQLITE_H_
