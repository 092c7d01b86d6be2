// The outbox: our messages until their recipient has them, numbered in
// their conversation's order. A role of the peer's store (peer_store.h).

#ifndef CHAT_PEER_OUTBOX_H_
#define CHAT_PEER_OUTBOX_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "peer/message.h"

namespace chat::peer {

// One of our messages not yet known to have arrived.
struct OutboxEntry {
  ChatMessage message;  // With its sequence and epoch.
  // Deposited in the recipient's mailbox; waits there for the recipient.
  bool stored = false;
};

// Every write is committed before it is reported done, except those marked
// "not waited for", which ride along with the next write of the store or
// are committed on their own within 50 ms (PeerStore's durability).
// Numbering follows peer/inbox_rules.h (NextOutbound, SequenceFloor).
// Errors: kUnavailable (storage failed; nothing of the failed write is
// kept). Thread-safe.
class Outbox {
 public:
  virtual ~Outbox() = default;

  // Gives `message` the next sequence number of its conversation (with
  // message.to, case-insensitively) and writes it to the outbox, and to the
  // history as kSent (in the same commit). `done` gets the message as
  // stored, or the error; calls come in call order, on the store's writer
  // thread, and must not wait for the store.
  using AddedCallback = std::function<void(absl::StatusOr<ChatMessage>)>;
  virtual void Add(ChatMessage message, AddedCallback done) = 0;

  // Writes group message `message` (message.group_id set) once, with a copy
  // for each of `recipients`, in one commit: the next sequence number of the
  // group's conversation (GroupConversation), one for every copy; one row
  // in the history (kSent, its recipient the conversation, "#" and the
  // group id), which counts the copies (HistoryEntry::copies); and a
  // delivery per recipient whose message is `message` with `to` that
  // recipient and the floor of that recipient's copies in the group
  // (SequenceFloor). `done` gets the copies as stored, one per recipient in
  // the order given, or the error; called as Add's. kInvalidArgument
  // (nothing written) when message.group_id is empty, `recipients` is
  // empty, or two of them are one name (NameKey).
  using AddedCopiesCallback =
      std::function<void(absl::StatusOr<std::vector<ChatMessage>>)>;
  virtual void AddToGroup(ChatMessage message,
                          std::vector<std::string> recipients,
                          AddedCopiesCallback done) = 0;

  // The lowest sequence number still in the outbox towards `copy`'s
  // recipient (copy.to) in `copy`'s conversation (ConversationOfSent: the
  // peer's, or the group's, where only that recipient's copies count): what
  // the recipient may still have to wait for there. Never above
  // `fallback`; `fallback` when none.
  virtual int64_t Floor(const ChatMessage& copy, int64_t fallback) = 0;

  // Records that message `id` waits in `recipient`'s mailbox (compared
  // case-insensitively; a message to several, a group's, has a delivery
  // each, and each is marked, removed and taken alone). Not
  // waited for: after a crash before it lands, the message is simply sent
  // again.
  virtual void MarkStored(const std::string& id,
                          const std::string& recipient) = 0;

  // Removes message `id` to `recipient` (it arrived, or it can never be
  // sent); its deliveries to others stay. Not waited for: after a crash
  // before it lands, the message is sent again and the recipient drops the
  // copy.
  virtual void Remove(const std::string& id, const std::string& recipient) = 0;

  // Removes message `id` to `recipient` (compared case-insensitively) and
  // returns it; nullopt when no such message is there (also when `id` is
  // one of ours to someone else: a receipt from carol never takes a message
  // to bob). Waited for.
  virtual absl::StatusOr<std::optional<OutboxEntry>> Take(
      const std::string& id, const std::string& recipient) = 0;

  // Everything in the outbox, a group message once per copy still there:
  // grouped by recipient (case-insensitively), so each recipient's entries
  // come together (one run per recipient, as the peer resends them at its
  // start), and within a recipient by conversation, each in sequence order.
  virtual absl::StatusOr<std::vector<OutboxEntry>> Entries() = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_OUTBOX_H_
