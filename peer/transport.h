// How a peer's messages leave it: straight to the recipient's peer, or into
// the recipient's mailbox in the registry. Conversation decides which and
// when; a Transport only carries, so Conversation is tested with a fake one.

#ifndef CHAT_PEER_TRANSPORT_H_
#define CHAT_PEER_TRANSPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "peer/message.h"
#include "proto/chat.pb.h"

namespace chat::peer {

// What a failed status of a Transport carries, in two parts:
//
//  - its message: a short reason a person reads as it is, with no gRPC text
//    in it: "bob is unreachable", "bob is offline", "the registry is
//    unreachable", "the registry has no mailbox", "bob's mailbox is full",
//    or the refusal of the recipient's peer;
//  - its detail (StatusDetail()): the technical text behind it, the gRPC
//    status of the call that failed ("UNAVAILABLE: failed to connect to all
//    addresses; ..."), for --verbose and the JSON event's `detail`. Carried
//    as a payload of the status, so it never reaches the one-line notice.
//
// WithDetail() attaches it; StatusDetail() reads it ("" when there is none).
absl::Status WithDetail(absl::Status status, const std::string& detail);
std::string StatusDetail(const absl::Status& status);

// The reason of every status that failed because the registry did not
// answer (a resolve or a deposit): kUnavailable with this message.
inline constexpr char kRegistryUnreachable[] = "the registry is unreachable";
// Whether `status` failed because the registry did not answer.
bool IsRegistryUnreachable(const absl::Status& status);

// How a direct send went through.
enum class Delivery {
  // The recipient's peer proved with its key that it keeps the message (a
  // proof of delivery, peer/sealing.h, came with the answer).
  kProven,
  // A recipient bound to no key (a lab peer, a static entry) answered OK:
  // nothing but its word says it has it.
  kUnverified,
};

// Carries messages to other peers by name.
//
// Addresses: a message goes to the last address known for its recipient:
// the channel it has (learnt by an earlier send), else the address the
// registry watch lists (kept fresh while the registry is up), else one
// resolved now. So a registry outage stops only what needs the registry:
// new names (never resolved, never listed) and the mailbox.
//
// A direct send counts only when the answer proves it (Delivery): an OK
// without a valid proof of delivery from a recipient with a key (whoever
// else answers at its address, or an older peer of ours that makes none) is
// a failure, kUnavailable ("bob did not confirm it with its key"), like any
// other failed direct attempt, so the message goes to the mailbox.
//
// Every outcome is an absl::Status in the two parts above. Codes:
// kNotFound (the recipient is not registered: "bob is offline"),
// kUnavailable (it, or the registry, cannot be reached), kFailedPrecondition
// / kInvalidArgument / kPermissionDenied (the recipient's peer refused the
// message), and for Deposit kUnimplemented (the registry has no mailbox)
// and kResourceExhausted (the mailbox is full).
// Thread-safe: every conversation calls it from its own thread.
class Transport {
 public:
  virtual ~Transport() = default;

  // Sends `messages`, all to one recipient (messages.front().to), at once
  // to the last address known for it (resolving one if none is known), so
  // the recipient's inbox can commit them together. No retry. Returns one
  // outcome per message, in order; empty for no messages.
  virtual std::vector<absl::StatusOr<Delivery>> SendWindow(
      const std::vector<ChatMessage>& messages) = 0;

  // Sends one message straight to its recipient. When the channel turns
  // out stale (the peer moved, went away or is another program now), the
  // recipient is resolved afresh and the message sent once more; when the
  // registry does not answer that resolve, the last known address stands
  // and its failure is the outcome ("bob is unreachable"). `fresh`: a send
  // to the known address has just failed, so resolve afresh first.
  virtual absl::StatusOr<Delivery> SendOne(const ChatMessage& message,
                                           bool fresh) = 0;

  // Leaves `message` in its recipient's mailbox; its receipt comes later
  // through the sender's own mailbox.
  virtual absl::Status Deposit(const ChatMessage& message) = 0;

  // Drops the channel and address known for `name` (it left, or moved), so
  // the next send looks it up afresh.
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
