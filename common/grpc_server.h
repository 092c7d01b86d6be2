// How every server in the project is built: the health service, server
// reflection and a bound on request size, the same way everywhere.

#ifndef CHAT_COMMON_GRPC_SERVER_H_
#define CHAT_COMMON_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/overload.h"

namespace chat {

// Requests bigger than this are refused with RESOURCE_EXHAUSTED.
inline constexpr int kDefaultMaxRequestBytes = 64 * 1024;

struct ServerConfig {
  std::string listen_address;  // "0.0.0.0:50050"; port 0 picks a free port.
  std::vector<grpc::Service*> services;  // Not owned; must outlive the server.
  // Fully qualified service names reported SERVING by the health service.
  std::vector<std::string> health_names;
  int max_request_bytes = kDefaultMaxRequestBytes;
  // OverloadOptions::max_streams_per_connection.
  int max_streams_per_connection = kDefaultMaxStreamsPerConnection;
  // TLS (common/tls.h MakeServerCredentials); null: plaintext. Shared
  // because gRPC's API hands credentials out as shared_ptr.
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // The port actually bound.
};

// Builds and starts a server with the health service and reflection on.
// kUnavailable (naming the address) when it cannot listen.
absl::StatusOr<RunningServer> StartServer(const ServerConfig& config);

// Finishes a unary callback-API call with `status` (OK: the response as
// filled in) and returns its reactor, for `return Respond(context, ...)`.
grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context,
                                  const absl::Status& status);

// Marks every service NOT_SERVING, then shuts down: new calls are refused,
// calls in flight get `grace` to finish before they are cancelled.
void StopServer(grpc::Server& server, std::chrono::milliseconds grace);

}  // namespace chat

#endif  // CHAT_COMMON_GRPC_SERVER_H_
