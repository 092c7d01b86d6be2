// What every SQLite-backed component needs around its file: an exclusive
// lock that keeps a second process off it, and schema migrations. For the
// .cc files of SQLite-backed components only.

#ifndef CHAT_COMMON_SQLITE_UTIL_H_
#define CHAT_COMMON_SQLITE_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace SQLite {
class Database;
}  // namespace SQLite

namespace chat {

// An exclusive advisory lock (flock) on `path` + ".lock", held while this
// lives. Movable, not copyable.
class FileLock {
 public:
  // kUnavailable when another process holds it ("`path` is in use by
  // another `holder`") or the lock file cannot be made.
  static absl::StatusOr<FileLock> Acquire(const std::string& path,
                                          const std::string& holder);

  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// Brings `db` (the file at `path`, for messages) to version
// migrations.size() (PRAGMA user_version), applying migrations[i] to go from
// i to i+1, each in its own transaction. kFailedPrecondition when the file
// is newer than this build (`program` names the build in the message). May
// throw SQLite::Exception; callers translate.
absl::Status MigrateSchema(SQLite::Database& db, const std::string& path,
                           const std::vector<const char*>& migrations,
                           const std::string& program);

}  // namespace chat

#endif  // CHAT_COMMON_SQLITE_UTIL_H_
