// What every SQLite-backed component needs around its file, in one place:
// opening it (PRAGMAs, an exclusive lock that keeps a second process off it,
// schema migrations) without an exception escaping. For the .cc files of
// SQLite-backed components only.

#ifndef CHAT_COMMON_SQLITE_UTIL_H_
#define CHAT_COMMON_SQLITE_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace chat {

// An exclusive advisory lock (flock) on the file's real path + ".lock" (mode
// 0600), held while this lives; the holder writes its pid into the lock
// file, so whoever is refused can say who holds it: symlinks, "." and ".." are
// resolved first, so a second path to the same file meets the same lock (a hard
// link does not: it is another name of the same inode). Movable, not copyable.
class FileLock {
 public:
  // kUnavailable when another process (or another FileLock in this one)
  // holds it ("`path` is in use by another `holder` (pid 1234)", the pid left
  // out when the holder wrote none; LockHolderPid() tells this case from the
  // others and gives the pid), when `path` cannot be
  // resolved (missing directory, dangling symlink) or the lock file cannot
  // be made.
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

// For a status from FileLock::Acquire or OpenSqlite: when it is the refusal
// because another process holds the lock, that holder's pid (0: not known,
// e.g. a build that wrote none); nullopt for every other status. Survives
// only as long as the status itself is passed on (not its message alone).
std::optional<int64_t> LockHolderPid(const absl::Status& status);

struct SqliteOpenOptions {
  // What the file is, for messages: "cannot open <what> <path>: ...".
  std::string what = "database";
  // The program that owns the file, for messages: "<path> is in use by
  // another <program> (pid 1234)", "this <program> knows only up to version 3".
  std::string program;
  // synchronous=FULL (survives power loss) or NORMAL (survives the death of
  // the process; with WAL, spares one fsync per commit).
  bool sync_full = true;
  // Take `path`.lock (kept in SqliteFile::lock). False for a second
  // connection to a file whose owner holds the lock already.
  bool lock = true;
  // migrations[i] brings PRAGMA user_version from i to i+1, each in its own
  // transaction; a file at a higher version than migrations.size() is
  // refused. Not owned; the strings must outlive the call.
  std::vector<const char*> migrations;
};

// An open connection and the lock that keeps other processes off its file.
// Destroy `db` first (it is declared last, so the default order does).
struct SqliteFile {
  std::optional<FileLock> lock;  // None for ":memory:" or options.lock off.
  std::unique_ptr<SQLite::Database> db;

  SqliteFile();
  SqliteFile(SqliteFile&&) noexcept;
  SqliteFile& operator=(SqliteFile&&) noexcept;
  ~SqliteFile();
};

// Opens (creating it when missing) the database at `path`, ":memory:" for a
// private one that lives as long as the connection: locks it, sets
// journal_mode=WAL (not for ":memory:"), the synchronous mode and a 5 s busy
// timeout, and migrates it. Never throws.
// Modes: the file, its -wal and -shm (and a -journal, if any) and the lock
// file are 0600 whatever the umask, also when they existed before: the
// database is created (or chmodded) 0600 before SQLite opens it, and SQLite
// creates the files beside it with the database's own mode. The directory
// is left as it is: its caller owns it (EnsurePrivateDir in
// common/private_files.h). kUnavailable when the file cannot
// be opened, locked or read (another process holds it, it is not a
// database, the directory is missing); kFailedPrecondition when its schema
// is newer than `options.migrations` knows.
absl::StatusOr<SqliteFile> OpenSqlite(const std::string& path,
                                      const SqliteOpenOptions& options);

// The path of a database kept beside `path` for one part of a program:
// `part` goes before the extension ("registry.db", "mail" ->
// "registry.mail.db"); ":memory:" stays ":memory:" (a private one).
std::string SiblingDatabasePath(const std::string& path,
                                const std::string& part);

// Statements prepared once per connection and kept, so a write parses no
// SQL. Keyed by the address of the SQL text: pass string literals. Not
// thread-safe: use it under the connection's mutex; Clear() before the
// connection closes.
class SqliteStatements {
 public:
  explicit SqliteStatements(SQLite::Database* db);  // Not owned.
  ~SqliteStatements();
  SqliteStatements(const SqliteStatements&) = delete;
  SqliteStatements& operator=(const SqliteStatements&) = delete;

  // The statement for `sql`, prepared on first use. May throw
  // SQLite::Exception (bad SQL, closed database).
  SQLite::Statement& Get(const char* sql);
  void Clear();

 private:
  SQLite::Database* const db_;
  absl::flat_hash_map<const char*, std::unique_ptr<SQLite::Statement>>
      statements_;
};

// One use of a kept statement: its old bindings cleared at the start, reset
// at the end, so between uses it holds no read snapshot (which would keep
// the WAL from being checkpointed). One use of a given SQL at a time.
class ScopedStatement {
 public:
  ScopedStatement(SqliteStatements& statements, const char* sql);
  ~ScopedStatement();
  ScopedStatement(const ScopedStatement&) = delete;
  ScopedStatement& operator=(const ScopedStatement&) = delete;

  SQLite::Statement* operator->() { return &statement_; }
  SQLite::Statement& operator*() { return statement_; }

 private:
  SQLite::Statement& statement_;
};

}  // namespace chat

#endif  // CHAT_COMMON_SQLITE_UTIL_H_
