// What the SQLite roles of the peer's store share (peer_store.h): the one
// connection, its group commit, and the helpers every role's SQL uses. For
// the *_sqlite.cc files of peer/ only.

#ifndef CHAT_PEER_PEER_FILE_SQLITE_H_
#define CHAT_PEER_PEER_FILE_SQLITE_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "peer/message.h"
#include "peer/peer_store.h"

namespace chat::peer {

// The connection every role writes through, and the one group commit they
// share (a write that spans roles is one job of it).
struct PeerFile {
  PeerFile(SqliteFile file, const Clock& file_clock,
           PeerStoreLimits file_limits)
      : clock(file_clock),
        limits(file_limits),
        lock(std::move(file.lock)),
        db(std::move(file.db)),
        statements(db.get()) {
    batch = std::make_unique<SqliteBatch>(db.get(), &db_mu);
  }

  // Finishes the queued writes and closes the file; before the roles go,
  // since their jobs and hooks use them.
  void Close() {
    batch->Stop();
    absl::MutexLock hold(&db_mu);
    statements.Clear();
    db.reset();  // Closes the file before the lock goes.
  }

  bool KeepsHistory() const {
    return limits.history_kept > absl::ZeroDuration();
  }

  const Clock& clock;
  const PeerStoreLimits limits;
  // Keeps other peers off the file; none for ":memory:". Declared before
  // db so the file closes before the lock goes.
  std::optional<FileLock> lock;
  absl::Mutex db_mu;  // One thread at a time on the connection.
  std::unique_ptr<SQLite::Database> db ABSL_GUARDED_BY(db_mu);
  SqliteStatements statements ABSL_GUARDED_BY(db_mu);
  std::unique_ptr<SqliteBatch> batch;
};

// Table `messages` holds every message of every conversation, both ways:
// the history, and for theirs the inbox too (held, released, shown), one
// row each. Their states (column `state`, theirs only):
inline constexpr int kHeld = 0;
inline constexpr int kReleased = 1;  // Shown too when covered by the mark.
inline constexpr int kShown = 2;     // Shown out of release order.

// The shown mark: every released message numbered (column `released`) up to
// this is shown (meta key 'shown_through'); those shown beyond it are kShown.
// Kept with the messages it marks, so one number per batch of messages
// shown is written, not a mark per message.
#define CHAT_SHOWN_THROUGH \
  "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'shown_through')"
// SQL: the row (theirs) is shown.
#define CHAT_SHOWN \
  "(state = 2 OR (state = 1 AND released <= " CHAT_SHOWN_THROUGH "))"

std::string Serialize(const ChatMessage& message);
// A serialized chat Message (a BLOB column).
ChatMessage Parse(const SQLite::Column& column);

}  // namespace chat::peer

#endif  // CHAT_PEER_PEER_FILE_SQLITE_H_
