// The Transport of a running peer: ChattingService over gRPC to the
// recipient's registered address, and the registry's mailbox.

#ifndef CHAT_PEER_GRPC_TRANSPORT_H_
#define CHAT_PEER_GRPC_TRANSPORT_H_

#include <functional>
#include <memory>

#include "common/clock.h"
#include "common/tls.h"
#include "peer/envelope.h"
#include "peer/transport.h"
#include "registry/client/registry_client.h"

namespace chat::peer {

// A peer's TLS (docs/security.md). With `client.ca_file`, the registry and
// every other peer are called over TLS only, never plaintext: a lab peer
// without a certificate is then out of reach (its messages wait in the
// mailbox). Without it, plaintext everywhere, as before.
struct PeerTls {
  TlsServerFiles serve;   // ChattingService over TLS when enabled().
  TlsClientFiles client;  // Its cert/key also answer a registry's mutual TLS.
  // The name another peer's certificate must carry; empty: the recipient's
  // chat name (lower case), which scripts/make-certs puts in its cert.
  std::string peer_name;
};

// How the transport dials other peers.
struct PeerDialing {
  // From MakeChannelCredentials(); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  bool tls = false;       // Check each certificate against a name (PeerTls).
  std::string peer_name;  // PeerTls::peer_name.
};

// A Transport that resolves recipients through `registry`, keeps one
// channel per recipient (by name key) until Forget() or a stale send, and
// deposits through the registry's Mailbox service. Every call to another
// peer has `rpc_timeout` as its deadline. Each message goes as `envelope`
// wraps it (sealed to a recipient with a key); a message it cannot wrap now
// fails with its status (kUnavailable: tried again later). `on_resolved` is
// told each entry resolved, before anything is sent with it (so a key it
// lists is compared with the pinned one first). Peers are dialled as
// `dialing` says. `registry` and `envelope` are not owned and must outlive
// the transport.
std::unique_ptr<Transport> NewGrpcTransport(
    registry::RegistryClient* registry, Millis rpc_timeout, Envelope* envelope,
    std::function<void(const registry::Entry&)> on_resolved,
    PeerDialing dialing = {});

}  // namespace chat::peer

#endif  // CHAT_PEER_GRPC_TRANSPORT_H_
