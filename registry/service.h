// The Registry gRPC service: a thin adapter that converts between protos and
// the Store's structs. Rules live in the Store, not here.

#ifndef CHAT_REGISTRY_SERVICE_H_
#define CHAT_REGISTRY_SERVICE_H_

#include <string>

#include "proto/registry.grpc.pb.h"
#include "registry/store.h"

namespace chat::registry {

inline constexpr char kRegistryServiceName[] = "chat.registry.v1.Registry";

// Thread-safe: gRPC calls it from many threads at once.
class RegistryService final : public v1::Registry::CallbackService {
 public:
  // `store` is not owned and must outlive this service and the server it
  // is registered with.
  explicit RegistryService(Store* store);

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override;
  grpc::ServerUnaryReactor* KeepAlive(grpc::CallbackServerContext* context,
                                      const v1::KeepAliveRequest* request,
                                      v1::KeepAliveResponse* response) override;
  grpc::ServerUnaryReactor* Unregister(
      grpc::CallbackServerContext* context,
      const v1::UnregisterRequest* request,
      v1::UnregisterResponse* response) override;
  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* context,
                                    const v1::ResolveRequest* request,
                                    v1::ResolveResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListRequest* request,
                                 v1::ListResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;
  grpc::ServerUnaryReactor* PutStatic(grpc::CallbackServerContext* context,
                                      const v1::PutStaticRequest* request,
                                      v1::PutStaticResponse* response) override;
  grpc::ServerUnaryReactor* RemoveStatic(
      grpc::CallbackServerContext* context,
      const v1::RemoveStaticRequest* request,
      v1::RemoveStaticResponse* response) override;

 private:
  Store* const store_;  // Not owned.
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVICE_H_
