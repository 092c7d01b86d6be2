// What every server says when a client reaches one of its limits, and who a
// limit "per client" counts: the same words and the same key everywhere, so
// docs/limits.md can list them once.

#ifndef CHAT_COMMON_LIMITS_H_
#define CHAT_COMMON_LIMITS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace chat {

// kResourceExhausted: "<what> (limit <limit>, --<option>)", e.g.
// LimitError("too many Watch streams from 10.0.0.7", 16,
//            "max-streams-per-client").
absl::Status LimitError(const std::string& what, int64_t limit,
                        const std::string& option);

// The host part of a gRPC peer string (ServerContext::peer()), which is the
// key of every per-client limit: "ipv4:10.0.0.7:5123" -> "10.0.0.7",
// "ipv6:[::1]:5123" -> "::1", "unix:/tmp/s" -> "unix:/tmp/s" (one client),
// anything else unchanged. The port is dropped: one machine is one client.
std::string ClientHost(const std::string& grpc_peer);

}  // namespace chat

#endif  // CHAT_COMMON_LIMITS_H_
