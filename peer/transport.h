// How a peer's messages leave it: straight to the recipient's peer, or into
// the recipient's mailbox in the registry. Conversation decides which and
// when; a Transport only carries, so Conversation is tested with a fake one.

#ifndef CHAT_PEER_TRANSPORT_H_
#define CHAT_PEER_TRANSPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "peer/message.h"
#include "proto/chat.pb.h"

namespace chat::peer {

// Carries messages to other peers by name.
//
// Every outcome is an absl::Status whose message is meant for the user as
// is ("bob is not online", "bob is unreachable (...)"). Common codes:
// kNotFound (the recipient is not registered), kUnavailable (it or the
// registry cannot be reached), kFailedPrecondition / kInvalidArgument /
// kPermissionDenied (the recipient's peer refused the message), and for
// Deposit kUnimplemented (the registry has no mailbox) and
// kResourceExhausted (the mailbox is full).
// Thread-safe: every conversation calls it from its own thread.
class Transport {
 public:
  virtual ~Transport() = default;

  // Sends `messages`, all to one recipient (messages.front().to), at once
  // over the channel already known for it (resolving one if none is), so
  // the recipient's inbox can commit them together. No retry. Returns one
  // outcome per message, in order; empty for no messages.
  virtual std::vector<absl::Status> SendWindow(
      const std::vector<ChatMessage>& messages) = 0;

  // Sends one message straight to its recipient. When the channel turns
  // out stale (the peer moved, went away or is another program now), the
  // recipient is resolved afresh and the message sent once more. `fresh`:
  // a send over the known channel has just failed, so resolve afresh
  // first. kUnavailable reads "<to> is unreachable (<why>)".
  virtual absl::Status SendOne(const ChatMessage& message, bool fresh) = 0;

  // Leaves `message` in its recipient's mailbox; its receipt comes later
  // through the sender's own mailbox. kUnimplemented reads "this registry
  // has no mailbox".
  virtual absl::Status Deposit(const ChatMessage& message) = 0;

  // Drops the channel known for `name` (it left, or moved), so the next
  // send resolves it afresh.
  virtual void Forget(const std::string& name) = 0;

  // Sends read receipts (sealed, peer/read_tracker.h) straight to `to`'s
  // peer over the channel known for it (ChattingService/SendReceipts). No
  // retry. kUnimplemented from a peer without that method (a lab peer, an
  // older one; also this default).
  virtual absl::Status SendReadReceipts(const std::string& to,
                                        const ::ReadReceipts& receipts) {
    (void)to;
    (void)receipts;
    return absl::UnimplementedError("no read receipts over this transport");
  }
};

}  // namespace chat::peer

#endif  // CHAT_PEER_TRANSPORT_H_
