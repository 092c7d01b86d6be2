// The ordered outgoing queue of a peer's messages to one recipient: how they
// go (a window at once, then in order), what is reported, and what happens
// when they cannot go (retry with backoff, the mailbox, the outbox).

#ifndef CHAT_PEER_CONVERSATION_H_
#define CHAT_PEER_CONVERSATION_H_

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "peer/events.h"
#include "peer/listeners.h"
#include "peer/message.h"
#include "peer/outbox.h"
#include "peer/transport.h"

namespace chat::peer {

// Messages to one recipient sent at once on the fast path.
inline constexpr size_t kSendWindow = 64;

// Streams one connection may open on a peer's listener: a sender's window
// puts kSendWindow messages on one connection at once, so that the inbox
// commits them together; twice that leaves room for receipts and a second
// window. The registry's and greeter's 20 would split a window in four.
inline constexpr int kPeerMaxStreamsPerConnection =
    2 * static_cast<int>(kSendWindow);

// What a conversation asks about its recipient, from its own thread, as it
// sends: answered by the peer from what the registry watch lists, or by the
// registry itself (so a call may block on it, up to the RPC deadline).
// Thread-safe: conversations to different recipients ask at once.
class RecipientDirectory {
 public:
  virtual ~RecipientDirectory() = default;
  // How many messages to `to` may be on their way at once; asked before
  // each round (1 for a static entry, which shows messages as they come,
  // else kSendWindow).
  virtual size_t Window(const std::string& to) = 0;
  // Whether `to` is a static entry now (a lab peer, which reads no
  // mailbox); asked when a message cannot be delivered directly.
  virtual bool IsStatic(const std::string& to) = 0;
  // Whether `to` exists, asked when it is not registered now (offline),
  // before its mailbox is tried: kNotFound ("nobody named carol is
  // registered") when the registry knows no such name, which fails the
  // message for good (a name typed while the registry was away, never
  // checked); OK otherwise, also when it cannot tell.
  virtual absl::Status Exists(const std::string& to) = 0;
};

// Drains the outbox messages to one recipient on its own thread, so a slow
// or unreachable peer never holds up messages to others.
//
// Each round takes up to Window() messages from the head of the queue and
// sends them at once (Transport::SendWindow); then, in order, it reports
// those that went through and sends the others one by one
// (Transport::SendOne), falling back to the recipient's mailbox
// (Transport::Deposit) when the recipient is not online or unreachable,
// unless it is a static entry (IsStatic()), which reads no mailbox.
// Every message ends as a state told to `deliveries` (a kSendResult event):
// kDelivered (`unverified` when the recipient has no key to prove it with),
// kStored (`text` says why it is not delivered yet: "bob is offline") or
// kFailed (it can never go; `text` says why: "nobody named carol is
// registered" when the recipient is offline and Exists() says there is no
// such name). A message that can be neither delivered nor stored is told
// once as kSent with the reason ("the registry is unreachable", "it is
// unreachable" for a static entry, "bob is unreachable and so is the
// registry"), then tried again after retry_min, doubling to retry_max, or at
// once after Nudge(); it holds back the ones after it, which are told only
// after it: order comes first. Its final state then says "on a later
// attempt". Every `text` is a short reason a person reads; the gRPC text
// behind it goes to the event's `detail`.
//
// The outbox follows: delivered and failed messages leave it, stored ones
// are marked stored; the rest stay there for the next start.
//
// Waits only on `clock` (and, with nothing to send, on its queue).
// Thread-safe.
class Conversation {
 public:
  struct Options {
    std::string to;  // The recipient, as the first message named it.
    Millis retry_min{250};
    Millis retry_max{5000};
  };

  // Starts the conversation's thread. `transport` carries the messages,
  // `outbox` follows their fate, `recipients` answers what the conversation
  // asks, `deliveries` is told each state right after the outbox changed,
  // `events` (the front end) is told the rest. None is owned; they and
  // `clock` must outlive this.
  Conversation(Options options, Transport* transport, Outbox* outbox,
               RecipientDirectory* recipients, DeliveryListener* deliveries,
               EventSink* events, const Clock& clock);

  // Gives each queued message one more try, then stops: the first one that
  // still cannot go, and all after it, stay in the outbox for the next
  // start, and an info event says how many ("3 messages to bob wait in your
  // outbox; they go out when you start again"). Blocks until then.
  ~Conversation();

  Conversation(const Conversation&) = delete;
  Conversation& operator=(const Conversation&) = delete;

  // Appends messages (in the outbox already, all to this recipient) to the
  // queue, in order, at once: a round taken after this may carry them all.
  // `to_partner` is copied into their events.
  void Enqueue(std::vector<ChatMessage> messages, bool to_partner)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Cuts the pause before the next attempt short (the recipient is back).
  void Nudge() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Item {
    ChatMessage message;
    bool to_partner;
  };

  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers `message` directly, else leaves it in the mailbox when the
  // recipient is absent. Returns kDelivered or kStored (with the reason it
  // was not delivered in `why`), or the error to retry or fail on.
  // A static entry's message is never stored: kUnavailable, tried again.
  // The failure's technical detail goes to `detail` (stored) or rides on
  // the status (Transport's StatusDetail()).
  // `unverified`: delivered to a recipient with no key (Delivery).
  absl::StatusOr<SendStatus> Deliver(const ChatMessage& message,
                                     bool tried_directly, std::string* why,
                                     std::string* detail, bool* unverified);
  // Reports the head's final state (`item` is the head) and lets it go.
  void Finish(Item& item, SendStatus status, std::string text,
              std::string detail = "", bool unverified = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  const Options options_;
  Transport* const transport_;            // Not owned.
  Outbox* const outbox_;                  // Not owned.
  RecipientDirectory* const recipients_;  // Not owned.
  DeliveryListener* const deliveries_;    // Not owned.
  EventSink* const events_;               // Not owned.
  const Clock& clock_;

  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool nudged_ ABSL_GUARDED_BY(mu_) = false;

  // Run()'s thread only: the head has failed before; ids that went through
  // on the fast path but are not reported yet (they wait behind the head),
  // and how.
  bool retried_ = false;
  absl::flat_hash_map<std::string, Delivery> delivered_;

  std::thread thread_;  // Last: it uses everything above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_CONVERSATION_H_
