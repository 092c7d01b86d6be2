// The registry database's schema and its migrations: names, bindings and the
// store's own facts (mail has its own file and schema, sqlite_mailbox.cc).
// Internal to the SQLite store: only its .cc files and their tests include
// this.

#ifndef CHAT_REGISTRY_STORE_SQLITE_SCHEMA_H_
#define CHAT_REGISTRY_STORE_SQLITE_SCHEMA_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/sqlite_util.h"

namespace chat::registry {

// The schema version this build writes; older files are migrated on open.
inline constexpr int kSqliteSchemaVersion = 6;

// Opens the registry database at `path` (see OpenSqlite), migrated to
// kSqliteSchemaVersion. `what` names the connection in messages ("registry
// database"). With `lock`, holds `path`.lock against other registries; the
// second connection of the same registry opens without it.
absl::StatusOr<SqliteFile> OpenRegistryDatabase(const std::string& path,
                                                const std::string& what,
                                                bool sync_full, bool lock);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_SQLITE_SCHEMA_H_
