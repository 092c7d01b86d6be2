// The inbox: messages received, kept in their conversation's order, each
// shown once. A role of the peer's store (peer_store.h).

#ifndef CHAT_PEER_INBOX_H_
#define CHAT_PEER_INBOX_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peer/message.h"
#include "peer/read_note_store.h"

namespace chat::peer {

// What the inbox made of an arriving message.
struct Received {
  // Seen before (a retry, or a direct copy and a mailbox copy): show nothing.
  bool duplicate = false;
  // To show now, in order: the message itself, and any held back before
  // that it completes; empty while it waits for earlier ones.
  std::vector<ChatMessage> ready;
};

// Order, hold-back and replay are decided by peer/inbox_rules.h; the inbox
// keeps what those rules read (each sender's counter, the held messages,
// the ids shown lately, the replay watermarks) in bounded space
// (PeerStoreLimits). Durability as PeerStore says; errors: kUnavailable
// (storage failed; nothing of the failed write is kept). Thread-safe.
class Inbox {
 public:
  virtual ~Inbox() = default;

  // Records an arriving message (message.id set) durably, then tells `done`
  // what to show. A message whose id is known from the same sender (by
  // name key) is a duplicate (another sender's message under that id is
  // not); so is a replay (IsReplay(): authenticated and sent no later than
  // the newest message of its sender whose id was forgotten): the same
  // sealed bytes are never shown twice, however late they come again.
  // Messages of a conversation are released in sequence order (Admit()); a
  // message whose predecessors have not come is held back, and kept, until
  // they do or until ReleaseOverdue(). `done` calls come in commit order on
  // the store's writer thread, so what they show keeps the order; they must
  // not wait for the store.
  using ReceivedCallback = std::function<void(absl::StatusOr<Received>)>;
  virtual void Receive(ChatMessage message, ReceivedCallback done) = 0;

  // Records that released messages (as Receive() or Unshown() gave them)
  // were shown, so a restart does not show them again and the history
  // lists them, and keeps `unread` (kShown notes of some of them, by id)
  // with them for ReadNoteStore::ReadNotes(): one write, all of it lands or
  // none. Messages shown in the order they were released (as the peer shows
  // them) cost one number for all of them (the shown mark, ShownThrough()
  // in peer/inbox_rules.h). Not waited for.
  virtual void MarkShown(const std::vector<ChatMessage>& messages,
                         const std::vector<ReadNote>& unread) = 0;

  // Gives up waiting for the gaps before messages held back longer than
  // `limit`, and releases them (with the held messages after them that are
  // now in order) like Receive(). The gaps are skipped: a message that
  // fills one later is shown when it comes, out of order.
  virtual void ReleaseOverdue(absl::Duration limit, ReceivedCallback done) = 0;

  // Messages released but perhaps not shown, because the process died in
  // between; oldest first. Show them again, marked as repeated.
  virtual absl::StatusOr<std::vector<ChatMessage>> Unshown() = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_INBOX_H_
