// The registry database's schema and its migrations, shared by the SQLite
// store and the SQLite mailbox (two connections to one file). Internal to
// the SQLite backend: only its .cc files include this.

#ifndef CHAT_REGISTRY_SQLITE_SCHEMA_H_
#define CHAT_REGISTRY_SQLITE_SCHEMA_H_

#include <string>

#include "absl/status/status.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace chat::registry {

// Brings `db` (the file at `path`, for messages) to kSqliteSchemaVersion.
// kFailedPrecondition when it is newer than this build. May throw
// SQLite::Exception; callers translate.
absl::Status MigrateRegistryDatabase(SQLite::Database& db,
                                     const std::string& path);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SQLITE_SCHEMA_H_
