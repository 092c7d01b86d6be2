// OpenSqlite and FileLock around the file: modes whatever the umask, and one
// owner per real file, whichever path leads to it.

#include "common/sqlite_util.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/common/file_modes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::ModeOf;
using ::chat::testing::ScopedUmask;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::HasSubstr;

const std::vector<const char*> kMigrations = {
    "CREATE TABLE rows (v TEXT PRIMARY KEY NOT NULL);",
};

SqliteOpenOptions Options() {
  SqliteOpenOptions options;
  options.what = "test database";
  options.program = "util-test";
  options.migrations = kMigrations;
  return options;
}

// The end of the refusal a FileLock of `holder` in this process causes.
std::string OwnPid(const std::string& holder) {
  return absl::StrCat(" is in use by another ", holder, " (pid ", ::getpid(),
                      ")");
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A directory as an older build or an admin would have left it: 0755.
std::string PublicDir(const TempDir& temp) {
  const std::string dir = temp.File("data");
  EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
  EXPECT_EQ(ModeOf(dir), 0755);
  return dir;
}

TEST(SqliteFileModesTest, NewFilesArePrivateUnderUmask022) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string dir = PublicDir(temp);
  const std::string path = dir + "/t.db";
  auto file = OpenSqlite(path, Options());
  ASSERT_THAT(file, IsOk());
  file->db->exec("INSERT INTO rows VALUES ('a')");
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_EQ(ModeOf(path + "-wal"), 0600);
  EXPECT_EQ(ModeOf(path + "-shm"), 0600);
  EXPECT_EQ(ModeOf(path + ".lock"), 0600);
  EXPECT_EQ(ModeOf(dir), 0755);  // The caller's directory is the caller's.

  // SQLite removes the WAL with the last connection and makes a new one on
  // the next open: that one is private too.
  *file = SqliteFile();
  ASSERT_EQ(ModeOf(path + "-wal"), -1);
  file = OpenSqlite(path, Options());
  ASSERT_THAT(file, IsOk());
  file->db->exec("INSERT INTO rows VALUES ('b')");
  EXPECT_EQ(ModeOf(path + "-wal"), 0600);
  EXPECT_EQ(ModeOf(path + "-shm"), 0600);
}

TEST(SqliteFileModesTest, FilesAnOlderBuildLeftOpenAreMadePrivate) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string dir = PublicDir(temp);
  const std::string path = dir + "/t.db";
  std::ofstream(path + ".lock") << "";
  // A plain connection keeps the WAL and its index in place, 0644 like
  // everything this umask makes.
  SQLite::Database old(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  old.exec("PRAGMA journal_mode = WAL");
  old.exec("CREATE TABLE other (x); INSERT INTO other VALUES (1)");
  ASSERT_EQ(ModeOf(path), 0644);
  ASSERT_EQ(ModeOf(path + "-wal"), 0644);
  ASSERT_EQ(ModeOf(path + "-shm"), 0644);
  ASSERT_EQ(ModeOf(path + ".lock"), 0644);

  auto file = OpenSqlite(path, Options());
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_EQ(ModeOf(path + "-wal"), 0600);
  EXPECT_EQ(ModeOf(path + "-shm"), 0600);
  EXPECT_EQ(ModeOf(path + ".lock"), 0600);
}

TEST(SqliteFileModesTest, InMemoryStillWorks) {
  auto file = OpenSqlite(":memory:", Options());
  ASSERT_THAT(file, IsOk());
  EXPECT_FALSE(file->lock.has_value());
  EXPECT_EQ(ModeOf(":memory:"), -1);  // No file of that name appeared.
}

TEST(SqliteLockTest, ASymlinkToAnOpenDatabaseIsRefused) {
  TempDir temp;
  const std::string path = temp.File("t.db");
  const std::string link = temp.File("link.db");
  auto first = OpenSqlite(path, Options());
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_THAT(OpenSqlite(link, Options()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(link + OwnPid("util-test"))));
  *first = SqliteFile();
  EXPECT_THAT(OpenSqlite(link, Options()), IsOk());
}

TEST(SqliteLockTest, ADatabaseOpenedThroughASymlinkRefusesItsRealPath) {
  TempDir temp;
  const std::string path = temp.File("t.db");
  const std::string link = temp.File("link.db");
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);  // Dangling so far.
  auto first = OpenSqlite(link, Options());
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(ModeOf(path), 0600);  // Created through the link.
  first->db->exec("INSERT INTO rows VALUES ('a')");
  // SQLite keeps the WAL beside the real file, so both paths share it.
  EXPECT_EQ(ModeOf(path + "-wal"), 0600);
  EXPECT_EQ(ModeOf(link + "-wal"), -1);
  EXPECT_EQ(ModeOf(path + ".lock"), 0600);
  EXPECT_EQ(ModeOf(link + ".lock"), -1);
  EXPECT_THAT(
      OpenSqlite(path, Options()),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(OwnPid("util-test"))));
}

TEST(SqliteLockTest, ASymlinkedDirectoryIsRefused) {
  TempDir temp;
  const std::string dir = temp.File("real");
  const std::string dir_link = temp.File("alias");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.c_str(), dir_link.c_str()), 0);
  auto first = OpenSqlite(dir + "/t.db", Options());
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(
      OpenSqlite(dir_link + "/t.db", Options()),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(OwnPid("util-test"))));
}

TEST(SqliteLockTest, DotAndDotDotPathsAreRefused) {
  TempDir temp;
  const std::string sub = temp.File("sub");
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  auto first = OpenSqlite(temp.File("t.db"), Options());
  ASSERT_THAT(first, IsOk());
  for (const std::string& other :
       {temp.File("./t.db"), temp.File("sub/../t.db"),
        temp.File("sub/.././/t.db")}) {
    EXPECT_THAT(OpenSqlite(other, Options()),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr(other + OwnPid("util-test"))));
  }
}

TEST(SqliteLockTest, ARelativePathMeetsTheAbsoluteOnesLock) {
  TempDir temp;
  auto first = OpenSqlite(temp.File("t.db"), Options());
  ASSERT_THAT(first, IsOk());
  char old_cwd[4096];
  ASSERT_NE(::getcwd(old_cwd, sizeof(old_cwd)), nullptr);
  ASSERT_EQ(::chdir(temp.File("").c_str()), 0);
  auto second = OpenSqlite("t.db", Options());
  ASSERT_EQ(::chdir(old_cwd), 0);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr(OwnPid("util-test"))));
}

TEST(SqliteLockTest, FileLockAloneResolvesTheRealPath) {
  TempDir temp;
  const std::string path = temp.File("state");
  const std::string link = temp.File("state-link");
  std::ofstream(path) << "";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  auto lock = FileLock::Acquire(path, "owner");
  ASSERT_THAT(lock, IsOk());
  EXPECT_THAT(
      FileLock::Acquire(link, "owner"),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(OwnPid("owner"))));
  // A file that does not exist yet is locked by its directory's real path.
  auto missing = FileLock::Acquire(temp.File("later"), "owner");
  ASSERT_THAT(missing, IsOk());
  EXPECT_THAT(FileLock::Acquire(temp.File("./later"), "owner"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(
      FileLock::Acquire(temp.File("no-dir/x"), "owner"),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(temp.File("no-dir"))));
}

}  // namespace
}  // namespace chat

namespace chat {
namespace {

// A second chat-peer for the same name says who runs the first.
TEST(SqliteLockHolderTest, TheRefusalNamesTheHoldersPid) {
  TempDir temp;
  const std::string path = temp.File("t.db");
  auto first = OpenSqlite(path, Options());
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(Contents(path + ".lock"), absl::StrCat(::getpid(), "\n"));
  auto second = OpenSqlite(path, Options());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable,
                               ::testing::Eq(path + OwnPid("util-test"))));
  EXPECT_EQ(LockHolderPid(second.status()), ::getpid());
}

TEST(SqliteLockHolderTest, AnotherHoldersPidIsReadFromTheLockFile) {
  TempDir temp;
  const std::string path = temp.File("t.db");
  // What another process holding the lock leaves: its pid in the file.
  // (No fork here: the e2e test runs two real chat-peers.)
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::write(fd, "4242\n", 5), 5);
  auto refused = FileLock::Acquire(path, "util-test");
  EXPECT_THAT(
      refused.status(),
      StatusIs(
          absl::StatusCode::kUnavailable,
          ::testing::Eq(path + " is in use by another util-test (pid 4242)")));
  EXPECT_EQ(LockHolderPid(refused.status()), 4242);
  ::close(fd);
  // Gone: the lock is free again, and its file names the new holder.
  auto mine = FileLock::Acquire(path, "util-test");
  ASSERT_THAT(mine, IsOk());
  EXPECT_EQ(Contents(lock_path), absl::StrCat(::getpid(), "\n"));
}

TEST(SqliteLockHolderTest, AHolderThatWroteNoPidIsStillAHolder) {
  TempDir temp;
  const std::string path = temp.File("t.db");
  // What a build from before pids holds: the lock, an empty file.
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto refused = OpenSqlite(path, Options());
  EXPECT_THAT(
      refused,
      StatusIs(absl::StatusCode::kUnavailable,
               ::testing::Eq(path + " is in use by another util-test")));
  EXPECT_EQ(LockHolderPid(refused.status()), 0);
  ::close(fd);
}

TEST(SqliteLockHolderTest, AStalePidIsReplacedAndOtherErrorsCarryNone) {
  TempDir temp;
  const std::string path = temp.File("t.db");
  // A holder killed with -9 leaves its pid behind; the lock itself is free.
  std::ofstream(path + ".lock") << "99999999\n";
  auto file = OpenSqlite(path, Options());
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(Contents(path + ".lock"), absl::StrCat(::getpid(), "\n"));
  auto missing = OpenSqlite(temp.File("no-dir/t.db"), Options());
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(LockHolderPid(missing.status()), std::nullopt);
  EXPECT_EQ(LockHolderPid(absl::OkStatus()), std::nullopt);
}

}  // namespace
}  // namespace chat
