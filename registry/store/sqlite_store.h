// The Store kept in one SQLite file: every mutation is written through to
// the file before it is acknowledged, concurrent ones sharing one commit
// (group commit); every read is served from memory.

#ifndef CHAT_REGISTRY_STORE_SQLITE_STORE_H_
#define CHAT_REGISTRY_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "registry/quotas.h"
#include "registry/store/change_ring.h"
#include "registry/store/store.h"

namespace chat::registry {

struct SqliteStoreOptions {
  LeasePolicy lease_policy;
  // Names per key, per client host and static entries (store_rules.h).
  NameQuotas name_quotas;
  // Bytes of changes a watcher may lag behind before it is ended (see
  // Watch::status(); chat-registry --max-watch-backlog-kb).
  size_t max_watch_backlog_bytes = 256 * 1024;
  // Changes kept for watches that resume from a revision (Store::Subscribe;
  // chat-registry --watch-history).
  size_t watch_history = kDefaultWatchHistory;
  // false: synchronous=NORMAL, which survives a crash of the process (kill -9)
  // but may lose the last commits on power loss; true: synchronous=FULL.
  bool sync_full = false;
};

// Opens the store in the file at `path`, creating and migrating it as needed,
// and holds an exclusive lock on it (`path` + ".lock") until destroyed.
// ":memory:" gives a store that lives only as long as the object.
// kUnavailable when the file cannot be opened or another registry has it;
// kFailedPrecondition when its schema is newer than this build.
// `clock` is not owned and must outlive the store.
//
// A mutation is decided and applied to memory at once, then waits for its
// commit (common/sqlite_batch.h: concurrent ones share one, each under its
// own savepoint). Until the commit is over, Resolve, List and the decisions
// of later calls see it; watchers do not: its events are held with the
// write and published once the commit succeeded, in commit order (which
// is decision order), and a watch's snapshot shows, for a name with a
// write in flight, what was last committed. If its write fails (its row is
// refused, or the batch's commit fails: disk full, I/O error), it is
// undone in memory, watchers never hear of it, and its caller, and every
// caller whose change was decided after it (on top of it), gets
// kUnavailable; changes decided before it are kept unless their own write
// fails. A KeepAlive of a lease whose renewal is undone that way may be
// undone with it.
//
// Revisions (Store::Subscribe): (epoch << 40) + the number of changes
// published since the store opened. The epoch is in the file's
// registry_meta table and grows by one at every open; a new file starts
// at a random epoch below 2^21, so two files rarely share one. A resume
// revision from before a restart is below the new floor: a snapshot.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path, const Clock& clock,
    const SqliteStoreOptions& options = {});

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_SQLITE_STORE_H_
