#include "common/sqlite_util.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chat {

absl::StatusOr<FileLock> FileLock::Acquire(const std::string& path,
                                           const std::string& holder) {
  const std::string lock_path = path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot open lock file ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat(path, " is in use by another ",
                                                 holder, " (", lock_path,
                                                 " is locked)"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(error)));
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

}  // namespace

SqliteFile::SqliteFile() = default;
SqliteFile::SqliteFile(SqliteFile&&) noexcept = default;
SqliteFile& SqliteFile::operator=(SqliteFile&& other) noexcept {
  db = std::move(other.db);  // The old file closes before its lock goes.
  lock = std::move(other.lock);
  return *this;
}
SqliteFile::~SqliteFile() { db.reset(); }  // Closed before the lock goes.

absl::StatusOr<SqliteFile> OpenSqlite(const std::string& path,
                                      const SqliteOpenOptions& options) {
  const bool in_memory = path == ":memory:";
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
    if (!in_memory) db.exec("PRAGMA journal_mode = WAL");
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
