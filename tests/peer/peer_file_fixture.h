// Peer files as older builds made them (tests/peer/testdata/*.sql, SQL
// dumps), for the tests of the peer store's migrations.

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

}  // namespace chat::peer

#endif  // CHAT_TESTS_PEER_PEER_FILE_FIXTURE_H_
