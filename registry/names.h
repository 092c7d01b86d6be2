// What a valid peer name and a valid address look like. One definition, used
// by every store, the service and the clients, so all of them agree.

#ifndef CHAT_REGISTRY_NAMES_H_
#define CHAT_REGISTRY_NAMES_H_

#include <string>

#include "absl/status/status.h"

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

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_NAMES_H_
