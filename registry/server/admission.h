// The door of a registry service: every call passes the process's CallGate,
// and the service's one kind of long-lived stream (Watch, Listen) is also
// counted per client host (and lease) by its own StreamGate. RegistryService
// and MailboxService each hold one.

#ifndef CHAT_REGISTRY_SERVER_ADMISSION_H_
#define CHAT_REGISTRY_SERVER_ADMISSION_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/overload.h"
#include "registry/server/stream_limits.h"

namespace chat::registry {

// Admits the calls of one service. A stream is admitted in two steps, so that
// the service's own checks (a bad request, a lease that is not the caller's)
// run between them and answer first: OpenStream() when it opens, HoldStream()
// once it is known to be valid.
// Thread-safe; must outlive every ticket it hands out.
class Admission {
 public:
  // Which streams a service counts, and the options that name their limits
  // (without "--"). A per-lease limit of 0 counts no lease.
  struct Streams {
    std::string kind;  // "Watch": named in errors.
    size_t per_client = 0;
    std::string per_client_option;
    size_t per_lease = 0;
    std::string per_lease_option;
  };
  // The Watch streams of `limits` (per client host only) and its Listen
  // streams (per client host and per lease).
  static Streams Watch(const StreamLimits& limits);
  static Streams Listen(const StreamLimits& limits);

  // `calls` is not owned and must outlive this.
  Admission(CallGate* calls, const Streams& streams);

  // A unary call: a ticket to hold until it is answered, or the CallGate's
  // refusal (kDeadlineExceeded, kResourceExhausted).
  absl::StatusOr<CallGate::Ticket> AdmitCall(
      const grpc::ServerContextBase& context);

  // A stream as it opens: it passes the CallGate and lets its place go at
  // once (a long-lived stream is not work in progress; the StreamGate bounds
  // it). OK, or the CallGate's refusal.
  absl::Status OpenStream(const grpc::ServerContextBase& context);

  // A place for the stream of `context`'s client host (chat::ClientHost) on
  // `lease` (empty: none), held until the ticket is destroyed; or
  // kResourceExhausted (StreamGate::Admit).
  absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> HoldStream(
      const grpc::ServerContextBase& context, const std::string& lease = "");

 private:
  CallGate* const calls_;  // Not owned.
  StreamGate streams_;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_ADMISSION_H_
