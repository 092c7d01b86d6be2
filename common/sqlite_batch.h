// Group commit for SQLite: writes from many threads share one transaction,
// so durable storage (synchronous=FULL) costs one fsync per batch, not one
// per write. For the .cc files of SQLite-backed components only; SQLiteCpp
// stays out of every other header.

#ifndef CHAT_COMMON_SQLITE_BATCH_H_
#define CHAT_COMMON_SQLITE_BATCH_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace chat {

// Runs write jobs on one connection from its own thread: it takes every job
// queued so far, runs each inside one transaction (each under its own
// savepoint, so a failing job leaves no trace and the others still commit),
// commits once, then runs the jobs' after-commit steps in submission order.
//
// Thread-safe. The connection is used under `db_mu`, which readers of the
// same connection hold too.
class SqliteBatch {
 public:
  // Runs inside the transaction. A non-OK result or an exception undoes
  // this job's writes only.
  using Job = std::function<absl::Status(SQLite::Database&)>;
  // Runs on the writer thread after the commit, in submission order, with
  // the job's outcome (also when the commit itself failed). Must not submit
  // and wait (Run) on the same batch.
  using AfterCommit = std::function<void(const absl::Status&)>;

  // `db` and `db_mu` are not owned and must outlive this.
  SqliteBatch(SQLite::Database* db, absl::Mutex* db_mu,
              absl::Duration lazy_delay = absl::Milliseconds(50));

  // Same as Stop().
  ~SqliteBatch();

  // Finishes every queued job (and those their after-commit steps queue),
  // then stops the writer thread. Later jobs fail at once with kUnavailable.
  // Idempotent.
  void Stop();

  // Queues `job` and blocks until its batch is committed; returns its
  // outcome, or kUnavailable when the commit failed.
  absl::Status Run(Job job);

  // Queues `job` without waiting; `after_commit` (may be empty) learns the
  // outcome.
  void Post(Job job, AfterCommit after_commit = nullptr);

  // Queues `job` that nobody waits for: it rides along with the next batch,
  // or is committed on its own within `lazy_delay`. Spares a commit (an
  // fsync with synchronous=FULL) for bookkeeping that may be lost in a
  // crash.
  void PostLazily(Job job);

 private:
  struct Pending {
    Job job;
    AfterCommit after_commit;
    absl::Status status;
  };

  void Enqueue(Pending pending, bool lazy);
  void WriterLoop();
  void Apply(std::deque<Pending>& batch);

  SQLite::Database* const db_;  // Not owned.
  absl::Mutex* const db_mu_;    // Not owned.
  const absl::Duration lazy_delay_;

  absl::Mutex queue_mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  int urgent_ ABSL_GUARDED_BY(queue_mu_) = 0;  // Queued jobs not lazy.
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool closed_ ABSL_GUARDED_BY(queue_mu_) = false;  // The writer has ended.
  std::thread writer_;
};

}  // namespace chat

#endif  // CHAT_COMMON_SQLITE_BATCH_H_
