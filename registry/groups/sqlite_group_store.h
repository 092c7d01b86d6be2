// The GroupStore kept in its own SQLite file beside the registry's, with
// synchronous=FULL: an accepted version survives power loss before it is
// answered, so no other state can take it after a restart. Concurrent Puts
// share one transaction (the group commit of common/sqlite_batch.h).

#ifndef CHAT_REGISTRY_GROUPS_SQLITE_GROUP_STORE_H_
#define CHAT_REGISTRY_GROUPS_SQLITE_GROUP_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "registry/groups/group_store.h"

namespace chat::registry {

// Where the group store of the registry database `registry_path` lives: its
// own file beside it ("registry.db" -> "registry.groups.db"; ":memory:"
// stays ":memory:"), as the mailbox has (sqlite_mailbox.h), so groups never
// take the room the names need and the file has a schema of its own.
std::string GroupStorePath(const std::string& registry_path);

// Opens the group store of the registry database at `registry_path`, in the
// file GroupStorePath(registry_path) (created and migrated; ":memory:" for a
// private in-memory one), and holds its lock (+ ".lock").
// kInvalidArgument for limits ValidateGroupStoreLimits refuses; kUnavailable
// when the file cannot be opened (or another registry has it);
// kFailedPrecondition when its schema is newer than this build. Beyond the
// contract, a Put refused because the disk is full is kResourceExhausted.
absl::StatusOr<std::unique_ptr<GroupStore>> OpenSqliteGroupStore(
    const std::string& registry_path, const GroupStoreLimits& limits = {});

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_GROUPS_SQLITE_GROUP_STORE_H_
