// The Registry gRPC service: a thin adapter that converts between protos and
// the Store's structs. Rules live in the Store, not here; what the adapter
// checks is who is calling: the signature of a registration's proof (and
// the challenge of an older client's) and the admin token of PutStatic,
// RemoveStatic and Release.

#ifndef CHAT_REGISTRY_SERVER_SERVICE_H_
#define CHAT_REGISTRY_SERVER_SERVICE_H_

#include <string>

#include "common/overload.h"
#include "proto/registry.grpc.pb.h"
#include "registry/server/admission.h"
#include "registry/server/challenges.h"
#include "registry/server/stream_limits.h"
#include "registry/store/store.h"

namespace chat::registry {

inline constexpr char kRegistryServiceName[] = "chat.registry.v1.Registry";

struct RegistryServiceOptions {
  // What admin calls must carry as `authorization: Bearer <token>`. Empty:
  // every admin call is refused.
  std::string admin_token;
  // Whether Register needs a key and its proof (kInvalidArgument "public_key
  // is required: ..." without). false also accepts a Register without a key:
  // an unbound registration, which any key may take over once its lease
  // ends. chat-registry always requires keys; there is no flag for false.
  bool require_key = true;
  // Admits every call first (common/overload.h). Not owned; must outlive
  // the service.
  CallGate* gate = &DefaultCallGate();
  // What one Watch may ask for, and how many one client may hold open.
  StreamLimits streams;
};

// Compares the metadata `authorization: Bearer <token>` of `context` with
// `admin_token`, in constant time. kPermissionDenied naming `method` and the
// credential it needs otherwise.
absl::Status CheckAdminToken(const grpc::CallbackServerContext& context,
                             const std::string& admin_token,
                             const std::string& method);

// Thread-safe: gRPC calls it from many threads at once.
class RegistryService final : public v1::Registry::CallbackService {
 public:
  // `store` and `challenges` are not owned and must outlive this service
  // and the server it is registered with.
  RegistryService(Store* store, ChallengeBook* challenges,
                  RegistryServiceOptions options);

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
  grpc::ServerUnaryReactor* Challenge(grpc::CallbackServerContext* context,
                                      const v1::ChallengeRequest* request,
                                      v1::ChallengeResponse* response) override;
  grpc::ServerUnaryReactor* GetBinding(
      grpc::CallbackServerContext* context,
      const v1::GetBindingRequest* request,
      v1::GetBindingResponse* response) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* context,
                                    const v1::ReleaseRequest* request,
                                    v1::ReleaseResponse* response) override;

 private:
  // OK when `request` may go to the store: valid, and with a key only with
  // a proof made by that key: of its time (chat-register-v2; the store
  // checks that the time is fresh), or of a challenge we issued and nobody
  // used (chat-register-v1).
  absl::Status CheckProof(const RegisterRequest& request);

  Store* const store_;               // Not owned.
  ChallengeBook* const challenges_;  // Not owned.
  const RegistryServiceOptions options_;
  Admission admission_;  // options_.gate, and Watch streams per client host.
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_SERVICE_H_
