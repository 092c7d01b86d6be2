#include "common/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace chat {

absl::StatusOr<RunningServer> StartServer(const ServerConfig& config) {
  // Both are process-wide switches that take effect for servers built later.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  RunningServer running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address,
                           config.credentials != nullptr
                               ? config.credentials
                               : grpc::InsecureServerCredentials(),
                           &running.port);
  builder.SetMaxReceiveMessageSize(config.max_request_bytes);
  // gRPC turns SO_REUSEPORT on by default, which would let a second server
  // silently share a port already in use instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // What waits inside gRPC, per connection, before a handler can shed it
  // (common/overload.h); 0 keeps gRPC's default (no bound).
  if (config.max_streams_per_connection > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               config.max_streams_per_connection);
  }
  for (grpc::Service* service : config.services) {
    builder.RegisterService(service);
  }
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || running.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen_address,
                     config.credentials != nullptr
                         ? " (is the address valid and the port free, and do "
                           "the TLS certificate and key match?)"
                         : " (is the address valid and the port free?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      running.server->GetHealthCheckService();
  for (const std::string& name : config.health_names) {
    health->SetServingStatus(name, true);
  }
  return running;
}

grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context,
                                  const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void StopServer(grpc::Server& server, std::chrono::milliseconds grace) {
  if (grpc::HealthCheckServiceInterface* health =
          server.GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  server.Shutdown(std::chrono::system_clock::now() + grace);
}

}  // namespace chat
