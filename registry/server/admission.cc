#include "registry/server/admission.h"

#include "common/limits.h"

namespace chat::registry {

Admission::Streams Admission::Watch(const StreamLimits& limits) {
  return {"Watch", limits.max_watch_streams_per_client,
          "max-watch-streams-per-client", 0, ""};
}

Admission::Streams Admission::Listen(const StreamLimits& limits) {
  return {"Listen", limits.max_listen_streams_per_client,
          "max-listen-streams-per-client", limits.max_listen_streams_per_lease,
          "max-listen-streams-per-lease"};
}

Admission::Admission(CallGate* calls, const Streams& streams)
    : calls_(calls),
      streams_(streams.kind, streams.per_client, streams.per_client_option,
               streams.per_lease, streams.per_lease_option) {}

absl::StatusOr<CallGate::Ticket> Admission::AdmitCall(
    const grpc::ServerContextBase& context) {
  return calls_->Admit(context);
}

absl::Status Admission::OpenStream(const grpc::ServerContextBase& context) {
  return calls_->Admit(context).status();
}

absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> Admission::HoldStream(
    const grpc::ServerContextBase& context, const std::string& lease) {
  return streams_.Admit(ClientHost(context.peer()), lease);
}

}  // namespace chat::registry
