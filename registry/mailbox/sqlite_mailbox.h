// The Mailbox kept in its own SQLite file beside the registry's, with
// synchronous=FULL: a deposit survives power loss before it is acknowledged.
// Concurrent writes share one transaction (group commit), so durability does
// not cost one fsync per message.

#ifndef CHAT_REGISTRY_MAILBOX_SQLITE_MAILBOX_H_
#define CHAT_REGISTRY_MAILBOX_SQLITE_MAILBOX_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "registry/mailbox/mailbox.h"
#include "registry/mailbox/mailbox_rules.h"  // kMailItemOverheadBytes

namespace chat::registry {

// Where the mailbox of the registry database `registry_path` lives: its own
// file beside it ("registry.db" -> "registry.mail.db"; ":memory:" stays
// ":memory:"), so mail can never take the room the names need.
std::string MailboxPath(const std::string& registry_path);

// chat-registry's default for MailboxLimits::max_total_bytes: a quarter of
// the space free (now) on the file system of `registry_path`, at most 1 GiB
// and at least 1 MiB; 1 GiB for ":memory:" or when that cannot be read.
size_t DefaultMailboxTotalBytes(const std::string& registry_path);

// Opens the mailbox of the registry database at `registry_path`, in the
// file MailboxPath(registry_path) (creating and migrating it; ":memory:"
// for a private in-memory one), and holds its lock (+ ".lock"). Mail an
// older registry kept inside `registry_path` itself is moved into it. The
// file never grows past about twice limits.max_total_bytes (PRAGMA
// max_page_count); a deposit refused by that cap, or by a full disk, is
// kResourceExhausted. `clock` is not owned and must outlive the mailbox.
// kUnavailable when the file cannot be opened (or another registry has it);
// kFailedPrecondition when its schema is newer than this build.
absl::StatusOr<std::unique_ptr<Mailbox>> OpenSqliteMailbox(
    const std::string& registry_path, const Clock& clock,
    const MailboxLimits& limits = {});

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_MAILBOX_SQLITE_MAILBOX_H_
