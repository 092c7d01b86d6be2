// The lab's GreetService ("Hello, NAME!"), served the fastest way gRPC C++
// allows: it is the baseline every benchmark of the project is measured
// against, so it must cost nothing beyond gRPC itself.

#ifndef CHAT_GREETER_GREETER_SERVICE_H_
#define CHAT_GREETER_GREETER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "common/overload.h"
#include "proto/greet.grpc.pb.h"

namespace chat::greeter {

// The name the health service reports SERVING: GreetService has no package.
inline constexpr char kGreetServiceName[] = "GreetService";

// Longest name accepted, in bytes. Longer ones get INVALID_ARGUMENT, so a
// greeting stays a line a person can read.
inline constexpr size_t kMaxNameBytes = 256;

// OK for a name the greeter answers; kInvalidArgument for an empty name or
// one longer than kMaxNameBytes, with a message a client can show as is.
// Any bytes are accepted otherwise: the greeting only copies them.
absl::Status CheckName(const std::string& name);

// "Hello, NAME!", appended to `*out`.
void AppendGreeting(const std::string& name, std::string* out);

// Answers inline on the thread that received the call (the default reactor):
// no allocation of its own beyond the reply, no lock, no logging; a call
// past its deadline or beyond the gate's bound is refused first.
// Thread-safe: stateless but for the gate.
class GreeterService final : public ::GreetService::CallbackService {
 public:
  // `gate` is not owned and must outlive the service.
  explicit GreeterService(CallGate* gate = &DefaultCallGate()) : gate_(gate) {}

  grpc::ServerUnaryReactor* Greet(grpc::CallbackServerContext* context,
                                  const ::GreetRequest* request,
                                  ::GreetResponse* response) override;

 private:
  CallGate* const gate_;  // Not owned.
};

}  // namespace chat::greeter

#endif  // CHAT_GREETER_GREETER_SERVICE_H_
