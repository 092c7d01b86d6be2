// Peer files as older builds made them (tests/peer/testdata/*.sql, SQL
// dumps, or a current file with what later schemas added taken off), for
// the tests of the peer store's migrations.

#ifndef CHAT_TESTS_PEER_PEER_FILE_FIXTURE_H_
#define CHAT_TESTS_PEER_PEER_FILE_FIXTURE_H_

#include <SQLiteCpp/SQLiteCpp.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace chat::peer {

// Replaces the file at `path` (and its WAL) with one made from the dump
// `name` in tests/peer/testdata. Throws SQLite::Exception on bad SQL; an
// empty dump (missing file) makes an empty database.
inline void MakePeerFileFromFixture(const std::string& path,
                                    const std::string& name) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    unlink(absl::StrCat(path, suffix).c_str());
  }
  std::ifstream in(absl::StrCat(CHAT_PEER_TESTDATA, "/", name));
  std::stringstream sql;
  sql << in.rdbuf();
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(sql.str());
}

// Makes the peer file at `path` look as the build of schema `version` left
// it: runs `undo_sql`, which takes off what the later schemas added (so
// their migrations must run again, and would fail on what is left), then
// sets its user_version to `version`. No store may have the file open.
// Throws SQLite::Exception on bad SQL.
inline void LowerPeerFile(const std::string& path, const std::string& undo_sql,
                          int version) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  db.exec(undo_sql);
  db.exec(absl::StrCat("PRAGMA user_version = ", version));
}

// The schema version (user_version) of the peer file at `path`.
inline int PeerFileVersion(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return db.execAndGet("PRAGMA user_version").getInt();
}

}  // namespace chat::peer

#endif  // CHAT_TESTS_PEER_PEER_FILE_FIXTURE_H_
