// The registry's admin credential: a random token in a private file, which
// PutStatic, RemoveStatic and Release must present (chatctl reads the same
// file).

#ifndef CHAT_REGISTRY_ADMIN_TOKEN_H_
#define CHAT_REGISTRY_ADMIN_TOKEN_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chat::registry {

// "admin.token" in the directory of the database at `db_path` (the current
// directory for a bare file name or ":memory:").
std::string DefaultAdminTokenPath(const std::string& db_path);

// The token kept in the file at `path`: its content without surrounding
// white space. A missing file is created first (mode 0600, never replacing
// one another process made meanwhile) holding 32 random bytes as hex and a
// newline. kFailedPrecondition naming `path` when the file is empty (or
// white space only); whatever ReadPrivateFile / CreatePrivateFile say when
// it cannot be read or made (kPermissionDenied, kNotFound for a missing
// directory, ...). Thread-safe.
absl::StatusOr<std::string> LoadOrCreateAdminToken(const std::string& path);

// The token in the file at `path`, for clients (chatctl): as above, but a
// missing file is kNotFound, never created.
absl::StatusOr<std::string> ReadAdminToken(const std::string& path);

// Shorter tokens draw a warning: the registry's own are 64 hex characters,
// and 32 random characters are well beyond guessing over the network.
inline constexpr size_t kMinAdminTokenChars = 32;

// What is weak about `token`, read from the file at `path`, one sentence
// each: shorter than kMinAdminTokenChars, or a file that group or others
// may read (a symlink is judged by its target). Empty when nothing is. Only
// warnings: an operator's own token keeps working. Thread-safe; a file that
// cannot be stat'ed is not judged.
std::vector<std::string> AdminTokenWarnings(const std::string& path,
                                            const std::string& token);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_ADMIN_TOKEN_H_
