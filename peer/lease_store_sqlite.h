// The saved lease's SQLite side (table `meta`, key lease_id). For
// peer/*_sqlite.cc only.

#ifndef CHAT_PEER_LEASE_STORE_SQLITE_H_
#define CHAT_PEER_LEASE_STORE_SQLITE_H_

#include "peer/lease_store.h"
#include "peer/peer_file_sqlite.h"

namespace chat::peer {

class SqliteLease final : public LeaseStore {
 public:
  explicit SqliteLease(PeerFile* file) : file_(file) {}

  std::string SavedLeaseId() override;
  absl::Status SaveLeaseId(const std::string& lease_id) override;

 private:
  PeerFile* const file_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_LEASE_STORE_SQLITE_H_
