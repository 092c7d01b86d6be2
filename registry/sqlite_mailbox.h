// The Mailbox kept in the registry's SQLite file, on its own connection with
// synchronous=FULL: a deposit survives power loss before it is acknowledged.
// Concurrent writes share one transaction (group commit), so durability does
// not cost one fsync per message.

#ifndef CHAT_REGISTRY_SQLITE_MAILBOX_H_
#define CHAT_REGISTRY_SQLITE_MAILBOX_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "registry/mailbox.h"

namespace chat::registry {

// Opens the mailbox in the registry database at `path` (migrating it as
// needed; ":memory:" for a private in-memory one). The caller keeps other
// registries off the file (OpenSqliteStore holds its lock). `clock` is not
// owned and must outlive the mailbox. kUnavailable when the file cannot be
// opened; kFailedPrecondition when its schema is newer than this build.
absl::StatusOr<std::unique_ptr<Mailbox>> OpenSqliteMailbox(
    const std::string& path, const Clock& clock,
    const MailboxLimits& limits = {});

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SQLITE_MAILBOX_H_
