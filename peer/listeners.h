// What the peer's parts tell the parts above them: a state of one of our
// messages, messages the inbox released, who came or went, what the
// registry lists for a name, read receipts that arrived. Each is a small
// interface handed to the part in its constructor (or Options), so a header
// shows who calls whom; what a part tells the front end goes through
// EventSink (peer/events.h), which only shows.

#ifndef CHAT_PEER_LISTENERS_H_
#define CHAT_PEER_LISTENERS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "peer/events.h"
#include "peer/message.h"
#include "proto/chat.pb.h"
#include "registry/types.h"

namespace chat::peer {

// Told each time one of our messages reaches a state (kSent ... kFailed, as
// a kSendResult event), by the part that has just changed it in the outbox
// (Peer::Send, Conversation, MailListener, ReadTracker). This, not the
// front end, is where the state is written down (the history, the read
// tracker's notes); what is shown is handed on to an EventSink last.
//
// Called from the thread that changed the state: a conversation's, the mail
// listener's, a gRPC thread taking read receipts, the store's writer thread
// (kSent once the outbox holds the message). Never blocks on the network;
// writes it makes are not waited for. Must not call back into the caller.
// Thread-safe.
class DeliveryListener {
 public:
  virtual ~DeliveryListener() = default;
  // `event.kind` is kSendResult; `event.message.id` names the message.
  virtual void OnSendState(const PeerEvent& event) = 0;
};

// Told the messages the inbox released (Inbox::Receive, ReleaseOverdue), in
// the order they are to be shown, so they are shown and noted shown.
//
// Called from the mail listener's thread or the store's writer thread (in
// Receive's callback): it must not wait for the store. May block briefly on
// the peer's own locks. Thread-safe.
class ReleaseListener {
 public:
  virtual ~ReleaseListener() = default;
  virtual void OnReleased(const std::vector<ChatMessage>& messages) = 0;
};

// Told, by the registry follower, of changes of the names followed.
// Called from the follower's thread, which waits for the call: quick, and it
// must not call RegistryFollower::Stop(). Thread-safe.
class PresenceListener {
 public:
  virtual ~PresenceListener() = default;
  // `name` came online, moved or left: a channel to it is stale.
  virtual void OnMoved(const std::string& name) = 0;
  // `name` came online (told after OnMoved): what waits for it need not
  // wait out its pause.
  virtual void OnArrived(const std::string& name) = 0;
};

// Told, by Contacts, that the set of names followed changed (a name added
// or removed), so whoever watches those names watches the new set. Called
// with the contacts' lock held: it must be quick and must not call back
// into Contacts. Thread-safe.
class FollowedListener {
 public:
  virtual ~FollowedListener() = default;
  virtual void OnFollowedChanged() = 0;
};

// Told every entry the registry lists for a name (the follower's watch,
// the transport's resolves), before anything is sent with it or it is shown,
// so its key is compared with the one pinned (KeyBook). Called from the
// follower's thread or a conversation's; quick, never blocks on the
// network. Thread-safe.
class ListingListener {
 public:
  virtual ~ListingListener() = default;
  virtual void OnListed(const registry::Entry& entry) = 0;
};

// Takes the read receipts that arrived for our messages (ReadTracker):
// straight from the reader (ChatService, a gRPC thread: `may_wait` false, a
// key not known yet is not looked up) or from our mailbox (MailListener's
// thread: `may_wait` true). OK when taken (also when they name ids that are
// not ours, or read receipts are off); kUnavailable when the reader's key
// cannot be known now (try again later); kUnauthenticated or
// kInvalidArgument when refused for good. Must not be called with the
// store's writer thread waiting on it. Thread-safe.
class ReadReceiptTaker {
 public:
  virtual ~ReadReceiptTaker() = default;
  virtual absl::Status TakeReadReceipts(const ::ReadReceipts& receipts,
                                        bool may_wait) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_LISTENERS_H_
