#include "common/sqlite_batch.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace chat {

SqliteBatch::SqliteBatch(SQLite::Database* db, absl::Mutex* db_mu,
                         SqliteBatchOptions options)
    : db_(db), db_mu_(db_mu), options_(options), statements_(db) {
  writer_ = std::thread(&SqliteBatch::WriterLoop, this);
  // Named for top -H and perf.
  pthread_setname_np(writer_.native_handle(), "sqlite-batch");
}

SqliteBatch::~SqliteBatch() { Stop(); }

void SqliteBatch::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

absl::Status SqliteBatch::Run(Job job, OnFailure on_failure) {
  absl::Notification done;
  absl::Status outcome;
  Post(
      std::move(job),
      [&done, &outcome](const absl::Status& status) {
        outcome = status;
        done.Notify();
      },
      std::move(on_failure));
  done.WaitForNotification();
  return outcome;
}

void SqliteBatch::Post(Job job, AfterCommit after_commit,
                       OnFailure on_failure) {
  Enqueue(
      Pending{
          std::move(job), std::move(after_commit), std::move(on_failure), {}},
      false);
}

void SqliteBatch::PostLazily(Job job, OnFailure on_failure) {
  Enqueue(Pending{std::move(job), nullptr, std::move(on_failure), {}}, true);
}

void SqliteBatch::Enqueue(Pending pending, bool lazy) {
  {
    absl::MutexLock lock(&queue_mu_);
    if (!closed_) {
      queue_.push_back(std::move(pending));
      if (!lazy) {
        ++urgent_;
      } else if (!lazy_since_) {
        lazy_since_ = options_.clock->Monotonic();
      }
      return;
    }
  }
  {
    absl::MutexLock lock(db_mu_);
    Fail(pending, absl::UnavailableError("storage is closed"));
  }
  if (pending.after_commit) pending.after_commit(pending.status);
}

void SqliteBatch::WriterLoop() {
  std::vector<Pending> batch;
  while (true) {
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](SqliteBatch* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->queue_mu_) {
            return b->stopping_ || !b->queue_.empty();
          },
          this));
      if (urgent_ == 0 && !stopping_ && lazy_since_) {
        // Only lazy jobs: let them wait for company, a while.
        options_.clock->AwaitUntil(
            &queue_mu_,
            absl::Condition(
                +[](SqliteBatch* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                     b->queue_mu_) { return b->stopping_ || b->urgent_ > 0; },
                this),
            *lazy_since_ + options_.lazy_delay);
      }
      if (queue_.empty()) {  // Stopping, and nothing left.
        closed_ = true;
        break;
      }
      batch.swap(queue_);
      urgent_ = 0;
      lazy_since_.reset();
    }
    Apply(batch);
    for (Pending& pending : batch) {
      if (pending.after_commit) pending.after_commit(pending.status);
    }
    batch.clear();  // Keeps the capacity for the next batch.
  }
  // Finalized while the connection is surely open.
  absl::MutexLock lock(db_mu_);
  statements_.Clear();
}

void SqliteBatch::Fail(Pending& pending, absl::Status status) {
  if (!pending.status.ok()) return;  // Failed already; told once.
  pending.status = std::move(status);
  if (pending.on_failure) pending.on_failure(pending.status);
}

void SqliteBatch::Apply(std::vector<Pending>& batch) {
  absl::MutexLock lock(db_mu_);
  try {
    SQLite::Transaction transaction(*db_,
                                    SQLite::TransactionBehavior::IMMEDIATE);
    // Prepared once: a job's savepoint parses no SQL.
    SQLite::Statement& savepoint = statements_.Get("SAVEPOINT job");
    SQLite::Statement& release = statements_.Get("RELEASE job");
    SQLite::Statement& rollback = statements_.Get("ROLLBACK TO job");
    for (Pending& pending : batch) {
      Step(savepoint);
      absl::Status status;
      try {
        status = pending.job(*db_);
      } catch (const std::exception& e) {
        status = absl::UnavailableError(
            absl::StrCat("storage failed to write: ", e.what()));
      }
      if (!status.ok()) {
        Step(rollback);
        Step(release);
        Fail(pending, std::move(status));
      } else {
        Step(release);
      }
    }
    transaction.commit();
  } catch (const std::exception& e) {
    // Rolled back (the Transaction's destructor): nothing of the batch is
    // stored, and every job in it fails alike.
    const absl::Status status = absl::UnavailableError(
        absl::StrCat("storage failed to commit: ", e.what()));
    for (Pending& pending : batch) Fail(pending, status);
  }
}

void SqliteBatch::Step(SQLite::Statement& statement) {
  statement.tryReset();
  statement.exec();
}

}  // namespace chat
