#include "greeter/greeter_service.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace chat::greeter {

absl::Status CheckName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name is empty");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("name is ", name.size(),
                                                   " bytes long; the limit is ",
                                                   kMaxNameBytes, " bytes"));
  }
  return absl::OkStatus();
}

void AppendGreeting(const std::string& name, std::string* out) {
  static constexpr char kPrefix[] = "Hello, ";
  out->reserve(out->size() + sizeof(kPrefix) + name.size());
  out->append(kPrefix, sizeof(kPrefix) - 1);
  out->append(name);
  out->push_back('!');
}

grpc::ServerUnaryReactor* GreeterService::Greet(
    grpc::CallbackServerContext* context, const ::GreetRequest* request,
    ::GreetResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) {
    reactor->Finish(ToGrpcStatus(ticket.status()));
    return reactor;
  }
  // An OK absl::Status is a word with no allocation, so checking costs two
  // comparisons on the common path.
  absl::Status status = CheckName(request->name());
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  AppendGreeting(request->name(), response->mutable_message());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace chat::greeter
