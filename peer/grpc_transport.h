// The Transport of a running peer: ChattingService over gRPC to the
// recipient's registered address, and the registry's mailbox.

#ifndef CHAT_PEER_GRPC_TRANSPORT_H_
#define CHAT_PEER_GRPC_TRANSPORT_H_

#include <memory>

#include "common/clock.h"
#include "peer/transport.h"
#include "registry/client/registry_client.h"

namespace chat::peer {

// A Transport that resolves recipients through `registry`, keeps one
// channel per recipient (by name key) until Forget() or a stale send, and
// deposits through the registry's Mailbox service. Every call to another
// peer has `rpc_timeout` as its deadline. `registry` is not owned and must
// outlive the transport.
std::unique_ptr<Transport> NewGrpcTransport(registry::RegistryClient* registry,
                                            Millis rpc_timeout);

}  // namespace chat::peer

#endif  // CHAT_PEER_GRPC_TRANSPORT_H_
