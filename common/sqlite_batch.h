// Group commit for SQLite: writes from many threads share one transaction,
// so durable storage (synchronous=FULL) costs one fsync per batch, not one
// per write. The one mechanism of the registry's store and mailbox and the
// peer's store. For the .cc files of SQLite-backed components only;
// SQLiteCpp stays out of every other header.

#ifndef CHAT_COMMON_SQLITE_BATCH_H_
#define CHAT_COMMON_SQLITE_BATCH_H_

#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/sqlite_util.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace chat {

struct SqliteBatchOptions {
  // How long a lazy job (PostLazily) waits for company before it is
  // committed on its own.
  Millis lazy_delay{50};
  // The lazy delay is measured and waited on this clock. Not owned; must
  // outlive the batch.
  const Clock* clock = &RealClock();
};

// Runs write jobs on one connection from its own writer thread: it takes
// every job queued so far, runs each inside one transaction under its own
// savepoint (a failing job leaves no trace and fails alone), commits once,
// then runs the jobs' after-commit hooks in submission order.
//
// Failure behaviour, the same for every user:
// - A job that returns an error or throws fails alone: its savepoint is
//   rolled back, the others of its batch still commit.
// - A failed BEGIN, savepoint step or COMMIT fails every job of the batch
//   (nothing of it is stored) with kUnavailable.
// - Jobs queued after Stop() fail at once with kUnavailable.
// A failed job's on-failure hook runs first, as soon as the failure is known
// (before any job submitted after it runs), with `db_mu` held; then its
// after-commit hook, like everyone's, with the outcome.
//
// Why one writer thread that also runs the hooks, by measurement (2-core
// VM shared with other work, so each figure is a median of alternating
// runs; chat-bench figures are throughput as a ratio to greet in the same
// round):
// - A throwaway benchmark, one-row INSERT OR REPLACE per job, WAL, 2 s per
//   point, writes/s, writer thread vs leader/follower on the callers'
//   threads (the registry store's commit before):
//     NORMAL, callers blocked in Run():  1: 14,800 vs 44,400
//                                        8: 70,200 vs 50,600
//                                       64: 83,600 vs 75,600
//     FULL,   callers blocked in Run():  8: 28,000 vs  3,000
//                                       64: 74,700 vs 29,100
//     NORMAL, 64 callers posting and waiting for their hook:
//                                           57,300 vs 52,100
//   Leader/follower wins only with one caller at a time (it spares a
//   thread wake-up); under load the writer thread commits more.
// - chat-bench, the registry's Register/Unregister answered from the
//   hook, with an idle caller leading (committing on the gRPC thread when
//   no batch runs) vs the writer thread alone: register c=1 0.31 vs 0.37,
//   c=64 0.27 vs 0.36. On two cores the handler thread is better left to
//   gRPC.
// - chat-bench, hooks on a second thread (overlapping them with the next
//   commit's fsync) vs on the writer: send c=64 0.42 and 0.53 vs 0.72 and
//   0.67; register c=64 0.24 vs 0.31. One more hand-off costs more than
//   the overlap gains.
// It also keeps hooks off the submitters' stacks (a leader would run other
// callers' hooks inside Post(), under whatever locks its caller holds).
//
// Thread-safe. The connection is used under `db_mu`, which readers of the
// same connection hold too; never call into the batch holding `db_mu`.
class SqliteBatch {
 public:
  // Runs inside the transaction, under `db_mu`. A non-OK result or an
  // exception undoes this job's writes only.
  using Job = std::function<absl::Status(SQLite::Database&)>;
  // Runs after the commit, in submission order, with the job's outcome
  // (also when the commit failed), on the writer thread without `db_mu`
  // (on the caller's thread for a job refused after Stop()). May Post();
  // must not Run() or Stop().
  using AfterCommit = std::function<void(const absl::Status&)>;
  // Runs once if the job fails (its own error or the batch's), before its
  // after-commit hook and before any job queued after it runs, with `db_mu`
  // held, to undo what its submitter changed in memory for it. Must not
  // call into the batch.
  using OnFailure = std::function<void(const absl::Status&)>;

  // `db` and `db_mu` are not owned and must outlive this. Starts the writer.
  SqliteBatch(SQLite::Database* db, absl::Mutex* db_mu,
              SqliteBatchOptions options = {});

  // Same as Stop().
  ~SqliteBatch();

  SqliteBatch(const SqliteBatch&) = delete;
  SqliteBatch& operator=(const SqliteBatch&) = delete;

  // Finishes every queued job, lazy ones at once (and those the hooks
  // queue), then stops the writer thread. Later jobs fail at once with
  // kUnavailable. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(queue_mu_);

  // Queues `job` and blocks until its batch is committed; returns its
  // outcome.
  absl::Status Run(Job job, OnFailure on_failure = nullptr)
      ABSL_LOCKS_EXCLUDED(queue_mu_);

  // Queues `job` without waiting; `after_commit` (may be empty) learns the
  // outcome.
  void Post(Job job, AfterCommit after_commit, OnFailure on_failure = nullptr)
      ABSL_LOCKS_EXCLUDED(queue_mu_);

  // Queues `job` that nobody waits for: it rides along with the next batch,
  // or is committed on its own `lazy_delay` after it was queued. Spares a
  // commit (an fsync with synchronous=FULL) for bookkeeping that may be lost
  // in a crash.
  void PostLazily(Job job, OnFailure on_failure = nullptr)
      ABSL_LOCKS_EXCLUDED(queue_mu_);

 private:
  struct Pending {
    Job job;
    AfterCommit after_commit;
    OnFailure on_failure;
    absl::Status status;
  };

  void Enqueue(Pending pending, bool lazy) ABSL_LOCKS_EXCLUDED(queue_mu_);
  void WriterLoop() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Runs `batch` in one transaction; sets each job's status.
  void Apply(std::vector<Pending>& batch) ABSL_LOCKS_EXCLUDED(queue_mu_);
  void Fail(Pending& pending, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*db_mu_);
  // Runs one of the savepoint statements. Throws on failure.
  void Step(SQLite::Statement& statement)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*db_mu_);

  SQLite::Database* const db_;  // Not owned.
  absl::Mutex* const db_mu_;    // Not owned.
  const SqliteBatchOptions options_;
  SqliteStatements statements_ ABSL_GUARDED_BY(*db_mu_);

  absl::Mutex queue_mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  int urgent_ ABSL_GUARDED_BY(queue_mu_) = 0;  // Queued jobs not lazy.
  // When the oldest lazy job waiting was queued.
  std::optional<MonoTime> lazy_since_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool closed_ ABSL_GUARDED_BY(queue_mu_) = false;  // The writer has ended.
  std::thread writer_;
};

}  // namespace chat

#endif  // CHAT_COMMON_SQLITE_BATCH_H_
