// The Mailbox gRPC service: a thin adapter over Mailbox, with the name's
// lease (from the Store) as the proof of who may read and acknowledge.

#ifndef CHAT_REGISTRY_SERVER_MAILBOX_SERVICE_H_
#define CHAT_REGISTRY_SERVER_MAILBOX_SERVICE_H_

#include "common/overload.h"
#include "proto/registry.grpc.pb.h"
#include "registry/mailbox/mailbox.h"
#include "registry/server/admission.h"
#include "registry/server/stream_limits.h"
#include "registry/store/store.h"

namespace chat::registry {

inline constexpr char kMailboxServiceName[] = "chat.registry.v1.Mailbox";

// Thread-safe.
class MailboxService final : public v1::Mailbox::CallbackService {
 public:
  // None is owned; all must outlive the service and its server. Every call
  // passes `gate` first (common/overload.h). At most
  // limits.max_listen_streams_per_client Listen streams per client host and
  // max_listen_streams_per_lease per lease (kResourceExhausted).
  MailboxService(Store* store, Mailbox* mailbox,
                 CallGate* gate = &DefaultCallGate(), StreamLimits limits = {});

  grpc::ServerUnaryReactor* Deposit(grpc::CallbackServerContext* context,
                                    const v1::DepositRequest* request,
                                    v1::DepositResponse* response) override;
  grpc::ServerWriteReactor<v1::MailItem>* Listen(
      grpc::CallbackServerContext* context,
      const v1::ListenRequest* request) override;
  grpc::ServerUnaryReactor* Ack(grpc::CallbackServerContext* context,
                                const v1::AckRequest* request,
                                v1::AckResponse* response) override;
  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* context,
                                 const v1::StatRequest* request,
                                 v1::StatResponse* response) override;

 private:
  Store* const store_;      // Not owned.
  Mailbox* const mailbox_;  // Not owned.
  Admission admission_;     // `gate`, and Listen streams per host and lease.
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_MAILBOX_SERVICE_H_
