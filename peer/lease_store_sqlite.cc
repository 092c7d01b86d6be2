#include "peer/lease_store_sqlite.h"

namespace chat::peer {

std::string SqliteLease::SavedLeaseId() {
  absl::MutexLock lock(&file_->db_mu);
  try {
    ScopedStatement select(file_->statements,
                           "SELECT value FROM meta WHERE key = 'lease_id'");
    if (select->executeStep()) return select->getColumn(0).getString();
  } catch (const std::exception&) {
    // No saved lease: the peer registers afresh.
  }
  return "";
}

absl::Status SqliteLease::SaveLeaseId(const std::string& lease_id) {
  return file_->batch->Run([this, lease_id](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    ScopedStatement upsert(
        file_->statements,
        "INSERT INTO meta (key, value) VALUES ('lease_id', ?1) ON CONFLICT "
        "(key) DO UPDATE SET value = ?1");
    upsert->bind(1, lease_id);
    upsert->exec();
    return absl::OkStatus();
  });
}

}  // namespace chat::peer
