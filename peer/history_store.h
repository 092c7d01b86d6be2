// The history: what was said, both ways, bounded. A role of the peer's
// store (peer_store.h).

#ifndef CHAT_PEER_HISTORY_STORE_H_
#define CHAT_PEER_HISTORY_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "peer/events.h"

namespace chat::peer {

// The last messages of one conversation (HistoryStore::Page()).
struct HistoryPage {
  std::vector<HistoryEntry> entries;  // Oldest first.
  int64_t total = 0;  // Messages kept in the conversation in all.
};

// Every message of a conversation, both ways, in the order written, bounded
// by PeerStoreLimits' history_kept and history_rows_kept. Our messages join
// it when the outbox takes them (Outbox::Add), theirs when they are shown
// (Inbox::MarkShown). Delivery state lives elsewhere (outbox, inbox,
// watermarks): nothing here changes what is sent or shown. Durability as
// PeerStore says; errors: kUnavailable. Thread-safe.
class HistoryStore {
 public:
  virtual ~HistoryStore() = default;

  // Records that our message `id` reached `status` (every kSendResult the
  // peer emits, whatever its status); for a group message (Outbox::
  // AddToGroup), that its copy to `recipient` (case-insensitively) did,
  // and `recipient` is ignored for any other. A state never goes back:
  // kSent < kStored < kExpired, kFailed < kDelivered < kRead; a lower one
  // is ignored. A group message's own state is the lowest of its copies'
  // in that order: kDelivered once every copy is delivered (or read),
  // kRead once every copy is read, kStored while some copy waits in a
  // mailbox and none is merely sent, kExpired or kFailed once some copy
  // ended so and every other is there or ended too; it counts its copies
  // delivered (HistoryEntry::delivered_copies: kDelivered or kRead, each
  // copy once however often told) and names the members whose copy was
  // read (HistoryEntry::read_by). Not waited for; updates that come
  // together share one write.
  virtual void RecordSendState(const std::string& id,
                               const std::string& recipient,
                               SendStatus status) = 0;

  // The last `limit` (at least 1) messages of the conversation `name`
  // names (ConversationNamed: a peer's name, case-insensitively, or "#" and
  // a group's id), oldest first, and how many it keeps in all.
  virtual absl::StatusOr<HistoryPage> Page(const std::string& name,
                                           int limit) = 0;

  // Erases the history of the conversation `name` names (as Page()) and
  // returns how many messages it held. The outbox, the inbox and the
  // sequence counters stay. Waited for.
  virtual absl::StatusOr<int64_t> Forget(const std::string& name) = 0;

  // Erases messages written longer than history_kept ago (by the store's
  // clock), and the oldest beyond history_rows_kept. Not waited for. The
  // row cap is also kept on its own, every history_trim_every messages.
  virtual void Trim() = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_HISTORY_STORE_H_
