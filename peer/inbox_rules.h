// The rules of a conversation's order, of replay, of hold-back and of the
// shown mark, apart from how the peer stores its messages: pure functions
// over the facts a store reads for them (a sender's sequence counter, its
// replay watermarks, the sequence numbers still in the outbox, the release
// numbers not shown yet). Written once, so a second
// backend applies the same rules; tests/peer/inbox_rules_test.cc judges them
// without SQLite, tests/peer/peer_store_test.cc through the SQLite store.

#ifndef CHAT_PEER_INBOX_RULES_H_
#define CHAT_PEER_INBOX_RULES_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "peer/message.h"

namespace chat::peer {

// ---- Conversations.

// Every message belongs to one conversation, known by its id: the one with
// a peer is that peer's name key (lowercase), so "Bob" and "bob" are one;
// a group's is "#" and the group's id. The two never meet: a name starts
// with a letter or a digit (registry::ValidateName), never with '#'.
// Order, hold-back, history and read state are kept per conversation;
// delivery state per message and recipient.
std::string ConversationWith(const std::string& name);
// The conversation of group `group_id`: "#" + group_id.
std::string GroupConversation(const std::string& group_id);
// The conversation a user names: "#" and a group id names that group's
// (taken as it is), anything else a peer's name (ConversationWith).
std::string ConversationNamed(const std::string& name_or_group);
// The conversation of a message we received: its group's when it carries
// a group id, else its sender's.
std::string ConversationOfReceived(const ChatMessage& message);
// The conversation of a message we send: its group's when it carries a
// group id (every member's copy is in it), else its recipient's.
std::string ConversationOfSent(const ChatMessage& message);

// ---- The sending side of a conversation.

// Our counter in one conversation (table `conversations`): the epoch of our
// numbering and the number the next message gets. In a group's, one number
// is given to all the copies of a message, one per member.
struct OutboundCounter {
  std::string epoch;
  int64_t next_sequence = 1;
};

// Where our next message to a peer goes: its epoch and sequence number.
struct Numbered {
  std::string epoch;
  int64_t sequence = 1;
};

// The place of our next message: the counter's next number, or number 1 in
// `fresh_epoch` when we never wrote to that peer (or forgot the counter).
Numbered NextOutbound(const std::optional<OutboundCounter>& counter,
                      const std::string& fresh_epoch);

// The floor our messages to a peer carry in a conversation: the lowest
// number still in the outbox towards that peer in it (`outstanding`, its
// numbers there; in a group, that member's copies only), never above
// `fallback` (the message's own number). The recipient may give up waiting
// for anything below it: we hold an acknowledgement for each of those.
int64_t SequenceFloor(const std::set<int64_t>& outstanding, int64_t fallback);

// ---- The receiving side.

// What the inbox keeps of one sender (table `inbound`): the epoch it numbers
// in and the number awaited next from it.
struct InboundCounter {
  std::string epoch;
  int64_t next_sequence = 1;
};

// Whether `message` takes part in ordering at all; one that does not (a lab
// peer's) is shown as it comes.
bool IsSequenced(const ChatMessage& message);

// What the inbox does with a sequenced message not seen before, in this
// order: release what it held under an abandoned epoch, release what it
// held below the sender's floor, keep the message (held or released), then
// release from `next` on what is held in order (ReleaseInOrder()).
struct Admission {
  // The sender started a new epoch: every message held under this one is
  // released now (its gaps can never be filled). Nullopt: none abandoned.
  std::optional<std::string> abandoned_epoch;
  // Messages held in the message's epoch numbered below this are released,
  // in order: the sender holds acknowledgements for each of them, so the
  // missing ones will not come. Zero: none.
  int64_t release_below = 0;
  // Kept held until its predecessors come (or ReleaseOverdue gives up on
  // them); else released now.
  bool hold = false;
  // The number awaited after the message is kept, before the held messages
  // that now follow in order are released.
  int64_t next = 1;
};

// The decision for sequenced `message` given the sender's counter
// (`inbound`, nullopt when the sender is new). A message numbered below the
// one awaited is late (its gap was given up on): released, shown out of
// order rather than never.
Admission Admit(const ChatMessage& message,
                const std::optional<InboundCounter>& inbound);

// Whether admitting a message changes others before it is kept (releases
// what an abandoned epoch or the sender's floor let go): then its copy
// check must come first. Else the check is the keeping itself (a row keyed
// by sender and id that is there already).
bool ReleasesOthersFirst(const Admission& admission);

// Releases held messages from `next` on, one number at a time, while
// `release_if_held(number)` finds one held there (and releases it); returns
// the first number missing, the one to wait for next.
int64_t ReleaseInOrder(int64_t next,
                       absl::FunctionRef<bool(int64_t)> release_if_held);

// A held message received before this (unix ms, by the receiver's clock) is
// overdue: its gaps are given up on after `limit`.
int64_t OverdueBeforeMs(absl::Time now, absl::Duration limit);

// ---- The shown mark.

// Released messages are numbered in release order, which is the order they
// are shown in. Rather than a mark per message, the store keeps one number:
// every message released up to it is shown. The mark after some messages
// were shown: `through` (the mark so far) raised to just below the lowest
// number still unshown (`unshown`: released by committed writes, not shown
// yet), or to `released` (the highest number a committed write released)
// when none is. A message shown beyond it (out of order) is marked alone.
int64_t ShownThrough(int64_t through, const std::set<int64_t>& unshown,
                     int64_t released);

// Whether a received message starts with a kShown read note kept with it
// (Inbox::MarkShown keeps or drops it when the message is shown): an
// authenticated one, whose sender may get a read receipt. Right for most,
// so most messages shown write no note of their own.
bool UnreadOnArrival(const ChatMessage& message);

// ---- Duplicates and replay.

// The sending time of `message` the replay defence may trust, unix ms:
// only an authenticated message's (not `unverified`, sent_at set). Nullopt
// when anyone could have written it.
std::optional<int64_t> TrustedSentMs(const ChatMessage& message);

// The replay watermarks that bear on one sender: its own (the newest
// trusted sending time among its messages whose ids were forgotten) and the
// one for every sender folded away. Nullopt: none.
struct Watermarks {
  std::optional<int64_t> sender_ms;
  std::optional<int64_t> everyone_ms;
};

// Whether `message`, whose id is not in the inbox, may be one whose id was
// forgotten, sent again: trusted and sent no later than a watermark.
bool IsReplay(const ChatMessage& message, const Watermarks& watermarks);

// Whether `message` is to be shown nothing of: its id is known from the
// same sender (`seen_from_sender`; another sender's message under that id is
// not a copy of it: ids are chosen by their senders), or it is a replay.
bool IsDuplicate(bool seen_from_sender, const ChatMessage& message,
                 const Watermarks& watermarks);

// How many of `senders` per-sender watermarks are folded into the one for
// everyone to keep at most `kept` (the oldest go; the one for everyone
// becomes the newest of them, so what they covered stays covered).
int64_t WatermarksToFold(int64_t senders, int64_t kept);

}  // namespace chat::peer

#endif  // CHAT_PEER_INBOX_RULES_H_
