// What the SQLite roles of the peer's store share (peer_store.h): the one
// connection, its group commit, and the helpers every role's SQL uses. For
// the *_sqlite.cc files of peer/ only.

#ifndef CHAT_PEER_PEER_FILE_SQLITE_H_
#define CHAT_PEER_PEER_FILE_SQLITE_H_

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

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
    // The SQL of every role reads the mark through this; it holds for a
    // whole statement, and no schema object may use it.
    db->createFunction("chat_shown_through", 0, /*abDeterministic=*/true, this,
                       &PeerFile::ShownThroughSql);
    batch = std::make_unique<SqliteBatch>(db.get(), &db_mu);
  }
  // Its address is the SQL function's.
  PeerFile(const PeerFile&) = delete;
  PeerFile& operator=(const PeerFile&) = delete;

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
  // The shown mark as the file holds it with the jobs run so far (see
  // CHAT_SHOWN_THROUGH): set when the file is opened, raised by the job
  // that writes it, lowered again when that job's batch rolls back.
  int64_t shown_through ABSL_GUARDED_BY(db_mu) = 0;

 private:
  // SQL chat_shown_through(): runs inside a statement, so under db_mu.
  static void ShownThroughSql(sqlite3_context* context, int, sqlite3_value**) {
    auto* file = static_cast<PeerFile*>(sqlite3_user_data(context));
    file->db_mu.AssertHeld();
    sqlite3_result_int64(context, file->shown_through);
  }
};

// Table `messages` holds every message of every conversation, both ways:
// the history, and for theirs the inbox too (held, released, shown), one
// row each. Their states (column `state`, theirs only):
inline constexpr int kHeld = 0;
inline constexpr int kReleased = 1;  // Shown too when covered by the mark.
inline constexpr int kShown = 2;     // Shown out of release order.
// Shown, and carries the shown mark: every message released (column
// `released`) up to this one's number is shown.
inline constexpr int kShownMark = 3;

// The shown mark: every released message numbered up to this is shown;
// those shown beyond it are kShown. The file holds it as the highest
// `released` of a kShownMark row, or meta 'shown_through' when that is
// higher (files before schema 10, and what the inbox's trim folds there).
// Writing it marks a row of a message shown, which sits on the page the
// next message's row is written to anyway: no page of its own per batch.
// A kShownMark row is never deleted while it carries the mark: the trim
// forgets only rows shown_ids_kept releases below it, and the history
// deletes only rows of ours. PeerFile::shown_through is its value.
#define CHAT_SHOWN_THROUGH "chat_shown_through()"
// SQL: the row (theirs) is shown.
#define CHAT_SHOWN \
  "(state >= 2 OR (state = 1 AND released <= " CHAT_SHOWN_THROUGH "))"

std::string Serialize(const ChatMessage& message);
// A serialized chat Message (a BLOB column).
ChatMessage Parse(const SQLite::Column& column);

}  // namespace chat::peer

#endif  // CHAT_PEER_PEER_FILE_SQLITE_H_
