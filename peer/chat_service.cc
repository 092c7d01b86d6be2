#include "peer/chat_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/ids.h"
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

std::string LabTime(absl::Time t) {
  return absl::FormatTime("%H:%M", t, absl::LocalTimeZone());
}

ChatService::ChatService(std::string own_name, MessageSink* sink,
                         const Clock& clock, Authenticator* authenticator,
                         CallGate* gate)
    : own_name_(std::move(own_name)),
      sink_(sink),
      clock_(clock),
      authenticator_(authenticator != nullptr ? authenticator : &plain_),
      gate_(gate) {}

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

grpc::ServerUnaryReactor* ChatService::SendMessage(
    grpc::CallbackServerContext* context, const ::Message* request,
    ::NullMsg* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
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
  absl::StatusOr<ChatMessage> unwrapped =
      authenticator_->Unwrap(*request, /*may_wait=*/false);
  if (!unwrapped.ok()) return Respond(context, unwrapped.status());
  ChatMessage message = *std::move(unwrapped);
  const bool sequenced = request->sequence() != 0 ||
                         !request->sequence_epoch().empty() ||
                         request->sequence_floor() != 0;
  if (sequenced && message.sequence == 0) {
    return Respond(context,
                   absl::InvalidArgumentError(
                       "sequence must be positive, with a sequence_epoch of "
                       "1-64 bytes and a sequence_floor from 1 to sequence"));
  }
  if (absl::Status status = Check(message, own_name_); !status.ok()) {
    return Respond(context, status);
  }
  message.received_at = clock_.Wall();
  if (message.id.empty()) message.id = NewUuidV7(message.received_at);
  if (message.to.empty()) message.to = own_name_;
  // Answered once the message is durably ours, without holding a thread.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The ticket is held until the answer (shared: std::function copies).
  sink_->Accept(message,
                [reactor, held = std::make_shared<CallGate::Ticket>(
                              *std::move(ticket))](const absl::Status& status) {
                  reactor->Finish(ToGrpcStatus(status));
                });
  return reactor;
}

}  // namespace chat::peer
