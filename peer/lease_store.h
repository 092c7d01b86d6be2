// The lease that last held our name, so a restarted peer takes its name
// back at once. A role of the peer's store (peer_store.h).

#ifndef CHAT_PEER_LEASE_STORE_H_
#define CHAT_PEER_LEASE_STORE_H_

#include <string>

#include "absl/status/status.h"

namespace chat::peer {

// Errors: kUnavailable (storage failed). Thread-safe.
class LeaseStore {
 public:
  virtual ~LeaseStore() = default;

  // The lease id last saved; empty when none (or when it cannot be read:
  // the peer then registers afresh).
  virtual std::string SavedLeaseId() = 0;
  // Waited for: a peer killed right after it registered must find it.
  virtual absl::Status SaveLeaseId(const std::string& lease_id) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_LEASE_STORE_H_
