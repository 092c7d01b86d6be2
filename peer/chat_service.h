// The lab's ChattingService, served by every peer: it checks what arrives and
// hands good messages to the peer. Wire-compatible with the lab's peers.

#ifndef CHAT_PEER_CHAT_SERVICE_H_
#define CHAT_PEER_CHAT_SERVICE_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/overload.h"
#include "peer/envelope.h"
#include "peer/listeners.h"
#include "peer/message.h"
#include "peer/sealing.h"
#include "proto/chat.grpc.pb.h"

namespace chat::peer {

// Where accepted messages go. Thread-safe: called from gRPC threads.
class MessageSink {
 public:
  using AcceptCallback = std::function<void(const absl::Status&)>;
  virtual ~MessageSink() = default;
  // Takes a checked message and calls `done` once, from any thread, when it
  // is safely kept (or not): the outcome goes back to the sender as is.
  virtual void Accept(const ChatMessage& message, AcceptCallback done) = 0;
};

// Thread-safe.
class ChatService final : public ::ChattingService::CallbackService {
 public:
  // `sink`, `authenticator`, `clock` and `gate` are not owned and must
  // outlive the service. Without an authenticator every message is taken as
  // plain and unverified (PlainAuthenticator). Every call passes `gate`
  // first (common/overload.h).
  // `read_receipts` (ReadTracker; not owned, must outlive the service)
  // takes what SendReceipts brings, without waiting (a gRPC thread: the
  // reader wrote to us before, so its key is known; else it uses our
  // mailbox); without it SendReceipts answers UNIMPLEMENTED, as a lab peer
  // does.
  ChatService(std::string own_name, MessageSink* sink, const Clock& clock,
              Authenticator* authenticator = nullptr,
              CallGate* gate = &DefaultCallGate(),
              ReadReceiptTaker* read_receipts = nullptr);
  // Finishes what waits for a key lookup first. Stop the server before.
  ~ChatService() override;

  // Answers with our name, as the lab's peer did, so a lab peer can find out
  // whom it is talking to.
  grpc::ServerUnaryReactor* GetInformation(grpc::CallbackServerContext* context,
                                           const ::NullMsg* request,
                                           ::Message* response) override;

  // INVALID_ARGUMENT for empty, oversized or non-UTF-8 text, a bad sender or
  // malformed sealed bytes; FAILED_PRECONDITION when the message names
  // another recipient; UNAUTHENTICATED when it is not from the holder of
  // the sender's key (never shown); UNAVAILABLE when the sender's key cannot
  // be known now (try again later). OK once the message is kept, with the
  // proof of delivery in kDeliveredMetadata when it was sealed by its
  // sender's key. A first message from a sender whose key
  // must be looked up in the registry waits for it on one thread of the
  // service's own (gRPC's threads never wait), at most kLookupsWaiting of
  // them; beyond, UNAVAILABLE at once (the sender's peer leaves it in our
  // mailbox).
  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const ::Message* request,
                                        ::NullMsg* response) override;

  // Read receipts for our messages (peer/read_tracker.h), answered with
  // what `read_receipts` says: OK (also for ids that are not ours),
  // INVALID_ARGUMENT, UNAUTHENTICATED (not from the holder of the reader's
  // key), UNAVAILABLE (its key is not known now: the reader's peer uses
  // our mailbox instead).
  grpc::ServerUnaryReactor* SendReceipts(grpc::CallbackServerContext* context,
                                         const ::ReadReceipts* request,
                                         ::NullMsg* response) override;

  static constexpr size_t kLookupsWaiting = 64;
  // Messages waiting for their sender's key now (tests).
  size_t waiting_lookups() const;

 private:
  class LookupLane;
  // Checks what Unwrap() made of `request` (sent from `host`) and hands it
  // to the sink; finishes `reactor` with the outcome.
  void Take(grpc::CallbackServerContext* context,
            grpc::ServerUnaryReactor* reactor, const ::Message& request,
            const std::string& host, absl::StatusOr<ChatMessage> unwrapped,
            std::shared_ptr<CallGate::Ticket> held);

  const std::string own_name_;
  MessageSink* const sink_;  // Not owned.
  const Clock& clock_;
  PlainAuthenticator plain_;
  Authenticator* const authenticator_;     // Not owned; or &plain_.
  CallGate* const gate_;                   // Not owned.
  ReadReceiptTaker* const read_receipts_;  // Not owned; may be null.
  std::unique_ptr<LookupLane> lane_;       // Last: its thread uses the above.
};

// "HH:MM" in the local time zone, the lab's format.
std::string LabTime(absl::Time t);

}  // namespace chat::peer

#endif  // CHAT_PEER_CHAT_SERVICE_H_
