// The Transport of a running peer: ChattingService over gRPC to the
// recipient's registered address, and the registry's mailbox.

#ifndef CHAT_PEER_GRPC_TRANSPORT_H_
#define CHAT_PEER_GRPC_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/tls.h"
#include "peer/envelope.h"
#include "peer/listeners.h"
#include "peer/online_set.h"
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
  // The peer name another peer's certificate must carry (as
  // PeerCertificateName() of it): empty, the recipient's name key, which
  // `make-certs --peer NAME` puts in NAME's certificate; set, that one name
  // for every recipient (a certificate all peers share).
  std::string peer_name;
};

// How the transport dials other peers.
struct PeerDialing {
  // From MakeChannelCredentials(); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  bool tls = false;       // Check each certificate against a name (PeerTls).
  std::string peer_name;  // PeerTls::peer_name.
};

// How many channels to other peers a transport keeps by default (PeerOptions
// max_channels; docs/limits.md).
inline constexpr size_t kDefaultMaxChannels = 256;

struct GrpcTransportOptions {
  // The deadline of every call to another peer.
  Millis rpc_timeout{5000};
  PeerDialing dialing;
  // At most this many channels (one per recipient) are kept; beyond it the
  // least recently used one is closed (a send in flight on it finishes).
  size_t max_channels = kDefaultMaxChannels;
  // Optional: who the registry watch lists online now; the address it
  // lists for a name is used before asking the registry. Asked without the
  // transport's lock held. Not owned; must outlive the transport.
  const OnlineSet* online = nullptr;
  // Optional: told each entry resolved, before anything is sent with it (so
  // a key it lists is compared with the pinned one first: KeyBook). Told
  // without the transport's lock held. Not owned; must outlive the
  // transport.
  ListingListener* listings = nullptr;
};

// A Transport over gRPC. A message goes to the last address known for its
// recipient (Transport): its channel, else the one `online` lists, else
// `registry`'s Resolve; a stale send resolves afresh, and with the registry
// away keeps the address it knew. Channels are kept by name key, at most
// max_channels, least recently used out first, until Forget(). Deposits go
// through the registry's Mailbox service. Each message goes as `envelope`
// wraps it (sealed to a recipient with a key); a message it cannot wrap now
// fails with its status (kUnavailable: tried again later). Peers are
// dialled as `options.dialing` says, and a channel gives up waiting between
// reconnects after at most a second, so a peer that is back is reached at
// the next attempt. `registry` and `envelope` are not owned and must
// outlive the transport.
std::unique_ptr<Transport> NewGrpcTransport(registry::RegistryClient* registry,
                                            Envelope* envelope,
                                            GrpcTransportOptions options);

}  // namespace chat::peer

#endif  // CHAT_PEER_GRPC_TRANSPORT_H_
