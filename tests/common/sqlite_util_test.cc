// OpenSqlite and FileLock around the file: modes whatever the umask, and one
// owner per real file, whichever path leads to it.

#include "common/sqlite_util.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

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
                       HasSubstr(link + " is in use by another util-test")));
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
  EXPECT_THAT(OpenSqlite(path, Options()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("in use by another util-test")));
}

TEST(SqliteLockTest, ASymlinkedDirectoryIsRefused) {
  TempDir temp;
  const std::string dir = temp.File("real");
  const std::string dir_link = temp.File("alias");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.c_str(), dir_link.c_str()), 0);
  auto first = OpenSqlite(dir + "/t.db", Options());
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(OpenSqlite(dir_link + "/t.db", Options()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("in use by another util-test")));
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
                         HasSubstr(other + " is in use by another util-test")));
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
                               HasSubstr("in use by another util-test")));
}

TEST(SqliteLockTest, FileLockAloneResolvesTheRealPath) {
  TempDir temp;
  const std::string path = temp.File("state");
  const std::string link = temp.File("state-link");
  std::ofstream(path) << "";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  auto lock = FileLock::Acquire(path, "owner");
  ASSERT_THAT(lock, IsOk());
  EXPECT_THAT(FileLock::Acquire(link, "owner"),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("in use by another owner")));
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
