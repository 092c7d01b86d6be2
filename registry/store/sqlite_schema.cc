#include "registry/store/sqlite_schema.h"

#include <iterator>
#include <vector>

#include "common/sqlite_util.h"

namespace chat::registry {
namespace {

// Schema migrations, in order; migration i brings user_version from i to i+1.
// Append only: a file in the field may be at any earlier version.
const char* const kMigrations[] = {
    // 1: names and their leases.
    R"sql(
      CREATE TABLE names (
        name_key      TEXT PRIMARY KEY NOT NULL,  -- lowercase, for uniqueness
        name          TEXT NOT NULL,              -- as first registered
        address       TEXT NOT NULL,
        lease_id      TEXT,                       -- NULL for static entries
        ttl_ms        INTEGER NOT NULL DEFAULT 0,
        updated_at_ms INTEGER NOT NULL            -- wall clock, for people
      ) WITHOUT ROWID;
    )sql",
    // 2: mailboxes for store-and-forward.
    R"sql(
      CREATE TABLE mail (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
        recipient_key   TEXT NOT NULL,                      -- lowercase
        id              TEXT NOT NULL,
        kind            INTEGER NOT NULL,  -- 1 message, 2 receipt
        sender          TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        payload         BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL,
        UNIQUE (recipient_key, id)
      );
      CREATE INDEX mail_by_recipient ON mail (recipient_key, seq);
      CREATE INDEX mail_by_age ON mail (deposited_at_ms);
    )sql",
    // 3: names bound to keys. Existing names keep no key.
    R"sql(
      ALTER TABLE names ADD COLUMN public_key BLOB;  -- NULL: none
      CREATE TABLE bindings (
        name_key          TEXT PRIMARY KEY NOT NULL,  -- lowercase
        name              TEXT NOT NULL,              -- as first bound
        public_key        BLOB NOT NULL,              -- Ed25519, 32 bytes
        reserved_until_ms INTEGER,  -- wall clock; NULL while a lease holds it
        updated_at_ms     INTEGER NOT NULL
      ) WITHOUT ROWID;
    )sql",
    // 4: what each entry offers, JoinServices() ("chat,greet").
    // Static entries were all chat peers (lab peers); a lease keeps NULL
    // (read as "chat") until its holder registers again and says.
    R"sql(
      ALTER TABLE names ADD COLUMN services TEXT;  -- NULL: not said
      UPDATE names SET services = 'chat' WHERE lease_id IS NULL;
    )sql",
    // 5: the time of the last chat-register-v2 proof taken for a binding
    // (Unix ms), which the next one must pass. Bindings made by
    // challenge proofs have none (0).
    R"sql(
      ALTER TABLE bindings ADD COLUMN last_proof_ms INTEGER NOT NULL DEFAULT 0;
    )sql",
    // 6: the store's own small facts: the epoch of its watch revisions
    // (sqlite_store.h), one more at every open.
    R"sql(
      CREATE TABLE registry_meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
    )sql",
};
static_assert(std::size(kMigrations) == kSqliteSchemaVersion);

}  // namespace

absl::StatusOr<SqliteFile> OpenRegistryDatabase(const std::string& path,
                                                const std::string& what,
                                                bool sync_full, bool lock) {
  SqliteOpenOptions options;
  options.what = what;
  options.program = "chat-registry";
  options.sync_full = sync_full;
  options.lock = lock;
  options.migrations.assign(std::begin(kMigrations), std::end(kMigrations));
  return OpenSqlite(path, options);
}

}  // namespace chat::registry
