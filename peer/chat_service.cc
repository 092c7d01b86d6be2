#include "peer/chat_service.h"

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/ids.h"
#include "common/limits.h"
#include "common/status.h"
#include "common/utf8.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

constexpr size_t kMaxSenderBytes = 64;

absl::Status Check(const ChatMessage& message, const std::string& own_name) {
  absl::Status text = ValidateMessageText(message.text);
  if (!text.ok()) return text;
  // Lab peers name themselves freely ("Davide De Rosa"), so the sender is
  // only bounded, not held to registry name rules.
  if (message.from.empty() || message.from.size() > kMaxSenderBytes ||
      !IsValidUtf8(message.from)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sender must be 1-", kMaxSenderBytes, " bytes of UTF-8 text"));
  }
  if (!message.id.empty() && !IsPlausibleMessageId(message.id)) {
    return absl::InvalidArgumentError(
        "message id must be 1-64 printable bytes");
  }
  if (!message.to.empty() &&
      registry::NameKey(message.to) != registry::NameKey(own_name)) {
    return absl::FailedPreconditionError(
        absl::StrCat("this is ", own_name, ", not ", PrintableText(message.to),
                     " (stale address?)"));
  }
  return absl::OkStatus();
}

}  // namespace

// Runs jobs one at a time on its own thread, at most `capacity` waiting.
class ChatService::LookupLane {
 public:
  explicit LookupLane(size_t capacity)
      : capacity_(capacity), thread_([this] { Loop(); }) {}

  // Runs what is queued, then ends the thread.
  ~LookupLane() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  // Queues `job`; false when `capacity` jobs wait already.
  bool TryPost(std::function<void()> job) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (stopping_ || jobs_.size() >= capacity_) return false;
    jobs_.push_back(std::move(job));
    return true;
  }

  size_t waiting() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return jobs_.size() + (running_ ? 1 : 0);
  }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      std::function<void()> job;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !jobs_.empty();
        };
        // Not a wait for time: for work, or the end.
        mu_.Await(absl::Condition(&ready));
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        running_ = true;
      }
      job();
      absl::MutexLock lock(&mu_);
      running_ = false;
    }
  }

  const size_t capacity_;
  mutable absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // Last: it uses the above.
};

std::string LabTime(absl::Time t) {
  return absl::FormatTime("%H:%M", t, absl::LocalTimeZone());
}

ChatService::ChatService(std::string own_name, MessageSink* sink,
                         const Clock& clock, Authenticator* authenticator,
                         CallGate* gate, ReadReceiptTaker* read_receipts)
    : own_name_(std::move(own_name)),
      sink_(sink),
      clock_(clock),
      authenticator_(authenticator != nullptr ? authenticator : &plain_),
      gate_(gate),
      read_receipts_(read_receipts),
      lane_(std::make_unique<LookupLane>(kLookupsWaiting)) {}

ChatService::~ChatService() = default;

size_t ChatService::waiting_lookups() const { return lane_->waiting(); }

grpc::ServerUnaryReactor* ChatService::GetInformation(
    grpc::CallbackServerContext* context, const ::NullMsg* /*request*/,
    ::Message* response) {
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  response->set_time(LabTime(clock_.Wall()));
  response->set_sender(own_name_);
  response->set_msg("OK");
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ChatService::SendReceipts(
    grpc::CallbackServerContext* context, const ::ReadReceipts* request,
    ::NullMsg* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (read_receipts_ == nullptr) {
    return Respond(
        context, absl::UnimplementedError("this peer takes no read receipts"));
  }
  if (!registry::NameKey(request->recipient()).empty() &&
      registry::NameKey(request->recipient()) != registry::NameKey(own_name_)) {
    return Respond(context, absl::FailedPreconditionError(absl::StrCat(
                                "this is ", own_name_, ", not ",
                                PrintableText(request->recipient()),
                                " (stale address?)")));
  }
  return Respond(
      context, read_receipts_->TakeReadReceipts(*request, /*may_wait=*/false));
}

grpc::ServerUnaryReactor* ChatService::SendMessage(
    grpc::CallbackServerContext* context, const ::Message* request,
    ::NullMsg* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  auto held = std::make_shared<CallGate::Ticket>(*std::move(ticket));
  // A stale address first: the message is for someone else, whoever sent it.
  if (!request->recipient().empty() &&
      registry::NameKey(request->recipient()) != registry::NameKey(own_name_)) {
    return Respond(context, absl::FailedPreconditionError(absl::StrCat(
                                "this is ", own_name_, ", not ",
                                PrintableText(request->recipient()),
                                " (stale address?)")));
  }
  if (request->sender().empty() || request->sender().size() > kMaxSenderBytes ||
      !IsValidUtf8(request->sender())) {
    return Respond(context, absl::InvalidArgumentError(absl::StrCat(
                                "sender must be 1-", kMaxSenderBytes,
                                " bytes of UTF-8 text")));
  }
  // Whose limits a stranger's message counts against (Peer's StrangerGate).
  const std::string host = ClientHost(context->peer());
  absl::StatusOr<ChatMessage> unwrapped =
      authenticator_->Unwrap(*request, /*may_wait=*/false);
  // Answered once the message is durably ours, without holding a thread.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!unwrapped.ok() &&
      unwrapped.status().code() == absl::StatusCode::kUnavailable &&
      authenticator_->WouldAsk(request->sender())) {
    // A sender met for the first time: only the registry knows its key
    // (we follow only those we talk with). Wait for it off gRPC's threads.
    auto copy = std::make_shared<::Message>(*request);
    if (lane_->TryPost([this, context, reactor, copy, host, held] {
          Take(context, reactor, *copy, host,
               authenticator_->Unwrap(*copy,
                                      /*may_wait=*/true),
               held);
        })) {
      return reactor;
    }
  }
  Take(context, reactor, *request, host, std::move(unwrapped), std::move(held));
  return reactor;
}

void ChatService::Take(grpc::CallbackServerContext* context,
                       grpc::ServerUnaryReactor* reactor,
                       const ::Message& request, const std::string& host,
                       absl::StatusOr<ChatMessage> unwrapped,
                       std::shared_ptr<CallGate::Ticket> held) {
  if (!unwrapped.ok()) {
    reactor->Finish(ToGrpcStatus(unwrapped.status()));
    return;
  }
  ChatMessage message = *std::move(unwrapped);
  const bool sequenced = request.sequence() != 0 ||
                         !request.sequence_epoch().empty() ||
                         request.sequence_floor() != 0;
  if (sequenced && message.sequence == 0) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        "sequence must be positive, with a sequence_epoch of "
        "1-64 bytes and a sequence_floor from 1 to sequence")));
    return;
  }
  if (absl::Status status = Check(message, own_name_); !status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return;
  }
  message.received_at = clock_.Wall();
  if (message.id.empty()) message.id = NewUuidV7(message.received_at);
  if (message.to.empty()) message.to = own_name_;
  // Made now, sent only once the message is kept: the sender counts it
  // delivered on this proof alone (an OK from whoever answers at our
  // address proves nothing).
  std::optional<std::string> proof = authenticator_->DeliveryProof(message);
  message.source_host = host;
  // The gate's ticket is held until the answer (shared: std::function
  // copies).
  sink_->Accept(message, [context, reactor, proof = std::move(proof),
                          held = std::move(held)](const absl::Status& status) {
    if (status.ok() && proof.has_value()) {
      context->AddTrailingMetadata(kDeliveredMetadata, *proof);
    }
    reactor->Finish(ToGrpcStatus(status));
  });
}

}  // namespace chat::peer
