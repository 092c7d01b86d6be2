// What the peer remembers for read receipts, both ways. A role of the
// peer's store (peer_store.h), ReadTracker's.

#ifndef CHAT_PEER_READ_NOTE_STORE_H_
#define CHAT_PEER_READ_NOTE_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chat::peer {

// One note (table `reads`, or a kShown one kept with its message's shown
// mark in the inbox).
struct ReadNote {
  enum class State {
    kAwaiting = 0,  // Ours to `peer`, delivered; its read receipt may come.
    kShown = 1,     // From `peer`, shown, not read yet.
    kOwed = 2,      // From `peer`, read: our receipt is still to be sent.
  };
  std::string peer;  // The other side, as met.
  std::string id;    // The message's id.
  // The group the message belongs to; empty for a direct one. kAwaiting:
  // ours to the group, one note per member's copy (`peer`, `id`); kShown:
  // it came in that group, so only being active in the group's
  // conversation reads it. kOwed: kept, not needed (the receipt goes to
  // `peer`, the sender, either way).
  std::string group_id;
  State state = State::kAwaiting;
  int64_t at_unix_ms = 0;  // When noted.
};

// Bounded by ReadTracker. Errors: kUnavailable (storage failed).
// Thread-safe.
class ReadNoteStore {
 public:
  virtual ~ReadNoteStore() = default;

  // Every note, oldest first.
  virtual absl::StatusOr<std::vector<ReadNote>> ReadNotes() = 0;
  // Records `notes` (by peer, case-insensitively, and id; replacing, also
  // a note kept by Inbox::MarkShown). A kShown note is kept with its
  // message's shown mark, as MarkShown does, so it is dropped when that
  // message is not in the inbox as shown. Not waited for: after a crash
  // before they land, a message is not reported read, or a receipt is not
  // sent (never sent twice).
  virtual void SaveReadNotes(const std::vector<ReadNote>& notes) = 0;
  // Forgets the notes (peer, id, and whether kShown: those live with the
  // shown mark) of `notes`. Not waited for.
  virtual void ForgetReadNotes(const std::vector<ReadNote>& notes) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_READ_NOTE_STORE_H_
