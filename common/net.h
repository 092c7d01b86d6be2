// Finding the address other machines can reach us at.

#ifndef CHAT_COMMON_NET_H_
#define CHAT_COMMON_NET_H_

#include <string>

#include "absl/status/statusor.h"

namespace chat {

// The local IP address this machine uses to reach `remote` ("host:port"):
// the host part a peer should advertise so that whoever reaches `remote` can
// reach it too. IPv6 results come in brackets. Sends no packet (a UDP
// connect only picks a route). kUnavailable when `remote` does not resolve
// or no route leads there.
absl::StatusOr<std::string> LocalAddressToward(const std::string& remote);

// The address to advertise for a server bound to `listen_address` on `port`
// when the operator gave none: "HOST:PORT" when the listen host names one
// interface (only that one answers), or "" for a wildcard host (0.0.0.0,
// [::], empty), meaning "use LocalAddressToward(registry)".
std::string DefaultAdvertisedAddress(const std::string& listen_address,
                                     int port);

// Splits "host:port" or "[v6]:port" into host (brackets kept) and port.
// kInvalidArgument when there is no ":port".
absl::StatusOr<std::pair<std::string, std::string>> SplitHostPort(
    const std::string& address);

}  // namespace chat

#endif  // CHAT_COMMON_NET_H_
