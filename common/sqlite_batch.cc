#include "common/sqlite_batch.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace chat {

SqliteBatch::SqliteBatch(SQLite::Database* db, absl::Mutex* db_mu,
                         absl::Duration lazy_delay)
    : db_(db), db_mu_(db_mu), lazy_delay_(lazy_delay) {
  writer_ = std::thread(&SqliteBatch::WriterLoop, this);
}

SqliteBatch::~SqliteBatch() { Stop(); }

void SqliteBatch::Stop() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

absl::Status SqliteBatch::Run(Job job) {
  absl::Notification done;
  absl::Status outcome;
  Post(std::move(job), [&done, &outcome](const absl::Status& status) {
    outcome = status;
    done.Notify();
  });
  done.WaitForNotification();
  return outcome;
}

void SqliteBatch::Post(Job job, AfterCommit after_commit) {
  Enqueue(Pending{std::move(job), std::move(after_commit), {}}, false);
}

void SqliteBatch::PostLazily(Job job) {
  Enqueue(Pending{std::move(job), nullptr, {}}, true);
}

void SqliteBatch::Enqueue(Pending pending, bool lazy) {
  {
    absl::MutexLock lock(&queue_mu_);
    if (!closed_) {
      queue_.push_back(std::move(pending));
      if (!lazy) ++urgent_;
      return;
    }
  }
  if (pending.after_commit) {
    pending.after_commit(absl::UnavailableError("storage is closed"));
  }
}

void SqliteBatch::WriterLoop() {
  while (true) {
    std::deque<Pending> batch;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](SqliteBatch* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->queue_mu_) {
            return b->stopping_ || !b->queue_.empty();
          },
          this));
      if (urgent_ == 0 && !stopping_) {
        // Only lazy jobs: let them wait for company, a while.
        queue_mu_.AwaitWithTimeout(
            absl::Condition(
                +[](SqliteBatch* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                     b->queue_mu_) { return b->stopping_ || b->urgent_ > 0; },
                this),
            lazy_delay_);
      }
      if (queue_.empty()) {  // Stopping, and nothing left.
        closed_ = true;
        return;
      }
      batch.swap(queue_);
      urgent_ = 0;
    }
    Apply(batch);
    for (Pending& pending : batch) {
      if (pending.after_commit) pending.after_commit(pending.status);
    }
  }
}

void SqliteBatch::Apply(std::deque<Pending>& batch) {
  absl::MutexLock lock(db_mu_);
  try {
    SQLite::Transaction transaction(*db_,
                                    SQLite::TransactionBehavior::IMMEDIATE);
    for (Pending& pending : batch) {
      db_->exec("SAVEPOINT job");
      try {
        pending.status = pending.job(*db_);
      } catch (const std::exception& e) {
        pending.status = absl::UnavailableError(
            absl::StrCat("storage failed to write: ", e.what()));
      }
      if (!pending.status.ok()) db_->exec("ROLLBACK TO job");
      db_->exec("RELEASE job");
    }
    transaction.commit();
  } catch (const std::exception& e) {
    // Nothing of the batch is stored; every job in it fails alike.
    for (Pending& pending : batch) {
      pending.status = absl::UnavailableError(
          absl::StrCat("storage failed to commit: ", e.what()));
    }
  }
}

}  // namespace chat
