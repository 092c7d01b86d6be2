#include "common/sqlite_util.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/private_files.h"

namespace chat {

namespace {

// The file system's one name for `path`: symlinks and "." / ".." resolved,
// so that every path to the same file names the same lock. For a file that
// does not exist yet, its directory's real path and its base name.
absl::StatusOr<std::string> RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) != nullptr) {
    return std::string(resolved);
  }
  const int error = errno;
  struct stat st;
  if (error != ENOENT || ::lstat(path.c_str(), &st) == 0) {
    // A dangling symlink lands here too: the file it names is not there.
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", path, ": ", std::strerror(error)));
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base =
      slash == std::string::npos ? path : path.substr(slash + 1);
  if (::realpath(dir.c_str(), resolved) == nullptr) {
    const int dir_error = errno;
    return absl::UnavailableError(absl::StrCat("cannot resolve directory ", dir,
                                               ": ", std::strerror(dir_error)));
  }
  const std::string real_dir(resolved);
  return absl::StrCat(real_dir == "/" ? "" : real_dir, "/", base);
}

// Where a refused lock carries its holder's pid (see LockHolderPid).
constexpr char kLockHolderPayload[] = "type.chat/lock-holder-pid";

// The pid the holder wrote into its lock file (0: none, or not a number:
// an older build, or a holder that has not written it yet).
int64_t ReadHolderPid(int fd) {
  char buffer[32];
  const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return 0;
  int64_t pid = 0;
  absl::string_view text(buffer, static_cast<size_t>(n));
  text = absl::StripAsciiWhitespace(text);
  if (!absl::SimpleAtoi(text, &pid) || pid <= 0) return 0;
  return pid;
}

}  // namespace

std::optional<int64_t> LockHolderPid(const absl::Status& status) {
  auto payload = status.GetPayload(kLockHolderPayload);
  if (!payload.has_value()) return std::nullopt;
  int64_t pid = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &pid)) return int64_t{0};
  return pid;
}

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path,
                                           const std::string& holder) {
  absl::StatusOr<std::string> real_path = RealPath(path);
  if (!real_path.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot lock ", path, ": ", real_path.status().message()));
  }
  const std::string lock_path = *real_path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot open lock file ", lock_path, ": ", std::strerror(errno)));
  }
  // open() gave 0600 minus the umask, and an older lock file may be 0644.
  if (::fchmod(fd, 0600) != 0) {
    int error = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot set lock file ", lock_path,
                     " to mode 0600: ", std::strerror(error)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    if (error == EWOULDBLOCK) {
      // Read before closing: the holder's pid, for a line a person can act
      // on ("kill 1234", or "it is my other terminal").
      const int64_t pid = ReadHolderPid(fd);
      ::close(fd);
      absl::Status refused = absl::UnavailableError(
          absl::StrCat(path, " is in use by another ", holder,
                       pid > 0 ? absl::StrCat(" (pid ", pid, ")") : ""));
      refused.SetPayload(kLockHolderPayload, absl::Cord(absl::StrCat(pid)));
      return refused;
    }
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(error)));
  }
  // Ours now: say who holds it, for the next one refused. Best effort: the
  // lock holds whether or not the pid could be written.
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) == 0) {
    (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  }
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // Closing releases the flock.
}

namespace {

// Brings `db` (the file at `path`, for messages) to version
// migrations.size() (PRAGMA user_version), applying migrations[i] to go from
// i to i+1, each in its own transaction. kFailedPrecondition when the file
// is newer than this build (`program` names the build in the message). May
// throw SQLite::Exception.
absl::Status MigrateSchema(SQLite::Database& db, const std::string& path,
                           const std::vector<const char*>& migrations,
                           const std::string& program) {
  const int latest = static_cast<int>(migrations.size());
  int version = db.execAndGet("PRAGMA user_version").getInt();
  if (version > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has schema version ", version, " but this ", program,
        " knows only up to ", latest, "; run a newer build"));
  }
  for (; version < latest; ++version) {
    SQLite::Transaction transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
    // Another connection may have migrated meanwhile.
    if (db.execAndGet("PRAGMA user_version").getInt() > version) continue;
    db.exec(migrations[static_cast<size_t>(version)]);
    db.exec(absl::StrCat("PRAGMA user_version = ", version + 1));
    transaction.commit();
  }
  return absl::OkStatus();
}

// Creates the database file at `path` empty with mode 0600 if it is missing,
// or sets it to 0600 (through a symlink: the file it names).
absl::Status MakePrivateDatabase(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot create it: ", std::strerror(errno)));
  }
  const int changed = ::fchmod(fd, 0600);
  const int error = errno;
  ::close(fd);
  if (changed != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot set it to mode 0600: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

SqliteFile::SqliteFile() = default;
SqliteFile::SqliteFile(SqliteFile&&) noexcept = default;
SqliteFile& SqliteFile::operator=(SqliteFile&& other) noexcept {
  db = std::move(other.db);  // The old file closes before its lock goes.
  lock = std::move(other.lock);
  return *this;
}
SqliteFile::~SqliteFile() { db.reset(); }  // Closed before the lock goes.

std::string SiblingDatabasePath(const std::string& path,
                                const std::string& part) {
  if (path == ":memory:") return path;
  std::filesystem::path sibling(path);
  const std::string extension = sibling.extension().string();
  sibling.replace_extension("." + part + extension);
  return sibling.string();
}

absl::StatusOr<SqliteFile> OpenSqlite(const std::string& path,
                                      const SqliteOpenOptions& options) {
  const bool in_memory = path == ":memory:";
  auto cannot_open = [&](const absl::Status& status) {
    return absl::UnavailableError(absl::StrCat(
        "cannot open ", options.what, " ", path, ": ", status.message()));
  };
  std::string real_path;
  if (!in_memory) {
    // Made (or set) 0600 before SQLite opens it: SQLite would create it 0644
    // minus the umask, and it gives the -journal, -wal and -shm files it
    // creates later the database's own mode, whatever the umask.
    absl::Status made = MakePrivateDatabase(path);
    if (!made.ok()) return cannot_open(made);
    absl::StatusOr<std::string> resolved = RealPath(path);
    if (!resolved.ok()) return cannot_open(resolved.status());
    real_path = *std::move(resolved);
  }
  SqliteFile file;
  if (options.lock && !in_memory) {
    absl::StatusOr<FileLock> acquired =
        FileLock::Acquire(path, options.program);
    if (!acquired.ok()) return acquired.status();
    file.lock = *std::move(acquired);
  }
  try {
    file.db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    SQLite::Database& db = *file.db;
    db.setBusyTimeout(5000);
    if (!in_memory) {
      db.exec("PRAGMA journal_mode = WAL");
      // The WAL and its index exist once journal_mode is WAL. New ones are
      // 0600 already (see above); this fixes files an older build left 0644.
      // SQLite names them after the real path; the given one is checked too.
      for (const std::string& base : {real_path, path}) {
        for (const char* suffix : {"-wal", "-shm", "-journal"}) {
          absl::Status made = MakePrivate(base + suffix);
          if (!made.ok()) return cannot_open(made);
        }
        if (real_path == path) break;
      }
    }
    db.exec(options.sync_full ? "PRAGMA synchronous = FULL"
                              : "PRAGMA synchronous = NORMAL");
    absl::Status migrated =
        MigrateSchema(db, path, options.migrations, options.program);
    if (!migrated.ok()) return migrated;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", options.what, " ", path, ": ", e.what()));
  }
  return file;
}

SqliteStatements::SqliteStatements(SQLite::Database* db) : db_(db) {}

SqliteStatements::~SqliteStatements() = default;

SQLite::Statement& SqliteStatements::Get(const char* sql) {
  std::unique_ptr<SQLite::Statement>& statement = statements_[sql];
  if (statement == nullptr) {
    auto prepared = std::make_unique<SQLite::Statement>(*db_, sql);
    statement = std::move(prepared);
  }
  return *statement;
}

void SqliteStatements::Clear() { statements_.clear(); }

ScopedStatement::ScopedStatement(SqliteStatements& statements, const char* sql)
    : statement_(statements.Get(sql)) {
  statement_.tryReset();  // An earlier failed step is no error now.
  statement_.clearBindings();
}

ScopedStatement::~ScopedStatement() { statement_.tryReset(); }

}  // namespace chat
