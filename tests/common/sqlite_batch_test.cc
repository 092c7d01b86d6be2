// The group commit and the one way a database is opened. Failures are real
// SQLite errors: triggers that RAISE(ABORT) fail one job, a deferred foreign
// key fails the COMMIT of a whole batch.

#include "common/sqlite_batch.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/sqlite_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<const char*> kMigrations = {
    R"sql(
      CREATE TABLE rows (v TEXT PRIMARY KEY NOT NULL);
      CREATE TRIGGER fail_bad BEFORE INSERT ON rows WHEN NEW.v LIKE 'bad%'
        BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
      CREATE TABLE parents (id INTEGER PRIMARY KEY);
      -- Checked at COMMIT only: a child without its parent fails the commit.
      CREATE TABLE children (
        parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);
    )sql",
};

constexpr absl::Duration kWait = absl::Seconds(10);

SqliteOpenOptions TestOpenOptions() {
  SqliteOpenOptions options;
  options.what = "test database";
  options.program = "batch-test";
  options.migrations = kMigrations;
  return options;
}

// Everything a job of these tests says happened, in order.
class Journal {
 public:
  void Add(const std::string& line) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    lines_.push_back(line);
  }
  std::vector<std::string> lines() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

class SqliteBatchTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(SqliteBatchOptions options = {}) {
    auto file = OpenSqlite(dir_.File("t.db"), TestOpenOptions());
    ASSERT_THAT(file, IsOk());
    file_ = *std::move(file);
    file_.db->exec("PRAGMA foreign_keys = ON");
    batch_ = std::make_unique<SqliteBatch>(file_.db.get(), &db_mu_, options);
  }

  void TearDown() override { batch_.reset(); }

  // A job inserting `v`, noting that it ran.
  SqliteBatch::Job Insert(const std::string& v) {
    return [this, v](SQLite::Database& db) {
      journal_.Add("job " + v);
      SQLite::Statement insert(db, "INSERT INTO rows (v) VALUES (?1)");
      insert.bind(1, v);
      insert.exec();
      return absl::OkStatus();
    };
  }

  SqliteBatch::AfterCommit Note(const std::string& v) {
    return [this, v](const absl::Status& status) {
      journal_.Add(absl::StrCat("done ", v, " ",
                                absl::StatusCodeToString(status.code())));
    };
  }

  SqliteBatch::OnFailure NoteFailure(const std::string& v) {
    return [this, v](const absl::Status&) { journal_.Add("undo " + v); };
  }

  // Holds the writer inside a job until Release(), so that what is posted
  // meanwhile lands in one batch.
  void HoldWriter() {
    held_ = std::make_unique<absl::Notification>();
    auto entered = std::make_shared<absl::Notification>();
    batch_->Post(
        [held = held_.get(), entered](SQLite::Database&) {
          entered->Notify();
          held->WaitForNotification();
          return absl::OkStatus();
        },
        nullptr);
    ASSERT_TRUE(entered->WaitForNotificationWithTimeout(kWait));
  }
  void Release() { held_->Notify(); }

  // The committed rows, read on a second connection.
  std::vector<std::string> Committed() {
    SQLite::Database db(dir_.File("t.db"), SQLite::OPEN_READONLY);
    SQLite::Statement select(db, "SELECT v FROM rows ORDER BY v");
    std::vector<std::string> rows;
    while (select.executeStep())
      rows.push_back(select.getColumn(0).getString());
    return rows;
  }

  // Waits for everything queued before it to be committed.
  void Flush() {
    ASSERT_THAT(batch_->Run([](SQLite::Database&) { return absl::OkStatus(); }),
                IsOk());
  }

  TempDir dir_;
  SqliteFile file_;
  absl::Mutex db_mu_;
  Journal journal_;
  std::unique_ptr<absl::Notification> held_;
  std::unique_ptr<SqliteBatch> batch_;
};

TEST_F(SqliteBatchTest, RunCommitsBeforeItReturns) {
  EXPECT_THAT(batch_->Run(Insert("a")), IsOk());
  EXPECT_THAT(Committed(), ElementsAre("a"));
}

TEST_F(SqliteBatchTest, AJobFailingInSqliteFailsAloneAndIsUndoneAtOnce) {
  HoldWriter();
  batch_->Post(Insert("a"), Note("a"), NoteFailure("a"));
  batch_->Post(Insert("bad"), Note("bad"), NoteFailure("bad"));
  batch_->Post(Insert("c"), Note("c"), NoteFailure("c"));
  absl::Status bad_status;
  batch_->Post(
      Insert("bad2"),
      [&bad_status](const absl::Status& status) { bad_status = status; },
      nullptr);
  Release();
  Flush();
  // The failure is told before the next job runs; after-commit hooks come
  // after the commit, in order, each with its own outcome.
  EXPECT_THAT(journal_.lines(),
              ElementsAre("job a", "job bad", "undo bad", "job c", "job bad2",
                          "done a OK", "done bad UNAVAILABLE", "done c OK"));
  EXPECT_THAT(bad_status, StatusIs(absl::StatusCode::kUnavailable,
                                   HasSubstr("injected failure")));
  EXPECT_THAT(Committed(), ElementsAre("a", "c"));
}

TEST_F(SqliteBatchTest, AJobReturningAnErrorLeavesNoTrace) {
  HoldWriter();
  batch_->Post(Insert("a"), Note("a"));
  absl::Status refused;
  batch_->Post(
      [](SQLite::Database& db) {
        db.exec("INSERT INTO rows (v) VALUES ('half')");
        return absl::FailedPreconditionError("changed my mind");
      },
      [&refused](const absl::Status& status) { refused = status; });
  batch_->Post(Insert("c"), Note("c"));
  Release();
  Flush();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition,
                                "changed my mind"));
  EXPECT_THAT(Committed(), ElementsAre("a", "c"));
}

TEST_F(SqliteBatchTest, AFailedCommitFailsEveryJobOfTheBatch) {
  HoldWriter();
  batch_->Post(Insert("a"), Note("a"), NoteFailure("a"));
  batch_->Post(
      [](SQLite::Database& db) {
        db.exec("INSERT INTO children (parent) VALUES (42)");  // No parent.
        return absl::OkStatus();
      },
      Note("orphan"), NoteFailure("orphan"));
  batch_->Post(Insert("bad"), Note("bad"), NoteFailure("bad"));
  absl::Status c_status;
  absl::Notification c_done;
  batch_->Post(
      Insert("c"),
      [&c_status, &c_done](const absl::Status& s) {
        c_status = s;
        c_done.Notify();
      },
      NoteFailure("c"));
  Release();
  ASSERT_TRUE(c_done.WaitForNotificationWithTimeout(kWait));
  EXPECT_THAT(c_status, StatusIs(absl::StatusCode::kUnavailable,
                                 HasSubstr("FOREIGN KEY")));
  // "bad" failed alone first and is told once; the rest when COMMIT fails.
  EXPECT_THAT(journal_.lines(),
              ElementsAre("job a", "job bad", "undo bad", "job c", "undo a",
                          "undo orphan", "undo c", "done a UNAVAILABLE",
                          "done orphan UNAVAILABLE", "done bad UNAVAILABLE"));
  EXPECT_THAT(Committed(), IsEmpty());
  // The next batch commits.
  EXPECT_THAT(batch_->Run(Insert("d")), IsOk());
  EXPECT_THAT(Committed(), ElementsAre("d"));
}

TEST_F(SqliteBatchTest, AfterCommitHooksComeInSubmissionOrderAcrossBatches) {
  constexpr int kJobs = 200;
  std::vector<int> order;
  absl::Notification all_done;
  for (int i = 0; i < kJobs; ++i) {
    batch_->Post(Insert(absl::StrCat("r", i)),
                 [&order, &all_done, i](const absl::Status& status) {
                   EXPECT_THAT(status, IsOk());
                   order.push_back(i);  // Hooks run on one thread.
                   if (i == kJobs - 1) all_done.Notify();
                 });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(kWait));
  ASSERT_EQ(order.size(), size_t{kJobs});
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(Committed().size(), size_t{kJobs});
}

TEST_F(SqliteBatchTest, ConcurrentRunsAreAllCommitted) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_THAT(batch_->Run(Insert(absl::StrCat("t", t, "x", i))), IsOk());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(Committed().size(), size_t{kThreads * kPerThread});
}

class SqliteBatchLazyTest : public SqliteBatchTest {
 protected:
  void SetUp() override {
    SqliteBatchOptions options;
    options.clock = &clock_;
    options.lazy_delay = Millis(50);
    Open(options);
  }

  FakeClock clock_;
};

TEST_F(SqliteBatchLazyTest, ALazyJobRidesAlongWithTheNextBatch) {
  batch_->PostLazily(Insert("lazy"));
  ASSERT_TRUE(clock_.AwaitWaiters(1));  // The writer waits for company.
  EXPECT_THAT(journal_.lines(), IsEmpty());
  EXPECT_THAT(batch_->Run(Insert("urgent")), IsOk());
  EXPECT_THAT(journal_.lines(), ElementsAre("job lazy", "job urgent"));
  EXPECT_THAT(Committed(), ElementsAre("lazy", "urgent"));
}

TEST_F(SqliteBatchLazyTest, ALazyJobIsCommittedAloneWhenItsDelayIsUp) {
  auto ran = std::make_shared<absl::Notification>();
  batch_->PostLazily([ran](SQLite::Database& db) {
    db.exec("INSERT INTO rows (v) VALUES ('lazy')");
    ran->Notify();
    return absl::OkStatus();
  });
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  clock_.Advance(Millis(49));
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  EXPECT_FALSE(ran->HasBeenNotified());
  EXPECT_EQ(clock_.NextWait(), Millis(1));
  clock_.Advance(Millis(1));
  ASSERT_TRUE(ran->WaitForNotificationWithTimeout(kWait));
  Flush();  // Its batch is over.
  EXPECT_THAT(Committed(), ElementsAre("lazy"));
}

TEST_F(SqliteBatchLazyTest, AFailingLazyJobIsUndoneAlone) {
  batch_->PostLazily(Insert("bad"), NoteFailure("bad"));
  batch_->PostLazily(Insert("fine"), NoteFailure("fine"));
  Flush();
  EXPECT_THAT(journal_.lines(), ElementsAre("job bad", "undo bad", "job fine"));
  EXPECT_THAT(Committed(), ElementsAre("fine"));
}

TEST_F(SqliteBatchLazyTest, StopFinishesQueuedJobsThenRefusesNewOnes) {
  HoldWriter();
  batch_->Post(Insert("a"), Note("a"));
  batch_->PostLazily(Insert("lazy"));  // Not waited for: Stop commits it.
  std::thread stopper([this] { batch_->Stop(); });
  Release();
  stopper.join();
  EXPECT_THAT(journal_.lines(), ElementsAre("job a", "job lazy", "done a OK"));
  EXPECT_THAT(Committed(), ElementsAre("a", "lazy"));

  absl::Status late;
  batch_->Post(
      Insert("late"), [&late](const absl::Status& status) { late = status; },
      NoteFailure("late"));
  EXPECT_THAT(late, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(batch_->Run(Insert("later")),
              StatusIs(absl::StatusCode::kUnavailable));
  batch_->PostLazily(Insert("lazier"), NoteFailure("lazier"));
  EXPECT_THAT(journal_.lines(), ElementsAre("job a", "job lazy", "done a OK",
                                            "undo late", "undo lazier"));
  EXPECT_THAT(Committed(), ElementsAre("a", "lazy"));
  batch_->Stop();  // Idempotent.
}

// OpenSqlite: the one way a file is opened.

TEST(OpenSqliteTest, SetsWalTheSyncModeAndMigrates) {
  TempDir dir;
  for (bool sync_full : {false, true}) {
    SqliteOpenOptions options = TestOpenOptions();
    options.sync_full = sync_full;
    const std::string path = dir.File(sync_full ? "full.db" : "normal.db");
    auto file = OpenSqlite(path, options);
    ASSERT_THAT(file, IsOk());
    SQLite::Database& db = *file->db;
    EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
    EXPECT_EQ(db.execAndGet("PRAGMA synchronous").getInt(), sync_full ? 2 : 1);
    EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 1);
    EXPECT_EQ(db.execAndGet("PRAGMA busy_timeout").getInt(), 5000);
    EXPECT_TRUE(db.tableExists("rows"));
  }
}

TEST(OpenSqliteTest, InMemoryHasNoWalAndNoLock) {
  auto first = OpenSqlite(":memory:", TestOpenOptions());
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->db->execAndGet("PRAGMA journal_mode").getString(), "memory");
  EXPECT_FALSE(first->lock.has_value());
  EXPECT_THAT(OpenSqlite(":memory:", TestOpenOptions()), IsOk());
}

TEST(OpenSqliteTest, ASecondOwnerIsRefusedUntilTheFirstCloses) {
  TempDir dir;
  auto first = OpenSqlite(dir.File("t.db"), TestOpenOptions());
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(OpenSqlite(dir.File("t.db"), TestOpenOptions()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("in use by another batch-test (pid ")));
  // A second connection of the owner takes no lock.
  SqliteOpenOptions unlocked = TestOpenOptions();
  unlocked.lock = false;
  EXPECT_THAT(OpenSqlite(dir.File("t.db"), unlocked), IsOk());
  *first = SqliteFile();
  EXPECT_THAT(OpenSqlite(dir.File("t.db"), TestOpenOptions()), IsOk());
}

TEST(OpenSqliteTest, AFileFromANewerBuildIsRefused) {
  TempDir dir;
  {
    SQLite::Database db(dir.File("t.db"),
                        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = 2");
  }
  EXPECT_THAT(OpenSqlite(dir.File("t.db"), TestOpenOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("this batch-test knows only up to 1")));
}

TEST(OpenSqliteTest, BadFilesAreErrorsNotExceptions) {
  TempDir dir;
  std::ofstream(dir.File("junk.db")) << std::string(4096, 'x');
  EXPECT_THAT(OpenSqlite(dir.File("junk.db"), TestOpenOptions()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("cannot open test database")));
  EXPECT_THAT(OpenSqlite("/nonexistent-dir/t.db", TestOpenOptions()),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace chat
