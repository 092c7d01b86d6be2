// What a valid peer name and a valid address look like. One definition, used
// by every store, the service and the clients, so all of them agree.

#ifndef CHAT_REGISTRY_NAMES_H_
#define CHAT_REGISTRY_NAMES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chat::registry {

inline constexpr size_t kMaxNameLength = 64;

// OK for 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit;
// otherwise kInvalidArgument saying what is wrong.
absl::Status ValidateName(const std::string& name);

// OK for the empty prefix and for a name that may be cut short (List and
// Watch take one); otherwise kInvalidArgument ("bad prefix: ...").
absl::Status ValidatePrefix(const std::string& prefix);

// The key under which a name is unique: the name in ASCII lowercase.
std::string NameKey(const std::string& name);

// OK for "host:port" with port 1-65535 and host a DNS name, an IPv4 literal
// or a bracketed IPv6 literal ("[::1]:50050"); otherwise kInvalidArgument
// saying what is wrong.
absl::Status ValidateAddress(const std::string& address);

// What an entry offers (Entry::services): "chat" for chat-peer, "greet" for
// chat-greeter, any later ones. A token is 1-32 characters of [a-z0-9-]
// starting with a letter; an entry offers at most 8.
inline constexpr size_t kMaxServices = 8;
inline constexpr size_t kMaxServiceLength = 32;
inline constexpr const char* kChatService = "chat";

// OK for a valid service token; otherwise kInvalidArgument saying what is
// wrong (the token quoted).
absl::Status ValidateService(const std::string& service);

// `services` checked (each token, at most kMaxServices) with duplicates
// dropped, first spelling first; kInvalidArgument naming `services[i]` or
// the count.
absl::StatusOr<std::vector<std::string>> CanonicalServices(
    const std::vector<std::string>& services);

// Whether an entry with `services` offers `service`. An entry with no
// services offers "chat": every client older than services was a chat peer
// (chat-peer or a lab peer's static entry), and their entries must not drop
// out of /peers, completion or the send path while they are upgraded.
bool OffersService(const std::vector<std::string>& services,
                   const std::string& service);
inline bool OffersChat(const std::vector<std::string>& services) {
  return OffersService(services, kChatService);
}

// The services as one line for people and the store: "chat,greet" (empty
// for none); SplitServices() is its inverse (empty pieces dropped).
std::string JoinServices(const std::vector<std::string>& services);
std::vector<std::string> SplitServices(const std::string& joined);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_NAMES_H_
