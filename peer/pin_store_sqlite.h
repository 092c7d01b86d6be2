// The pins' SQLite side (table `pins`). For peer/*_sqlite.cc only.

#ifndef CHAT_PEER_PIN_STORE_SQLITE_H_
#define CHAT_PEER_PIN_STORE_SQLITE_H_

#include "peer/peer_file_sqlite.h"
#include "peer/pin_store.h"

namespace chat::peer {

class SqlitePins final : public PinStore {
 public:
  explicit SqlitePins(PeerFile* file) : file_(file) {}

  absl::StatusOr<std::vector<Pin>> Pins() override;
  absl::Status SavePin(const std::string& name,
                       const std::optional<PublicKey>& key) override;

 private:
  PeerFile* const file_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_PIN_STORE_SQLITE_H_
