// The keys pinned for others' names (trust on first use). A role of the
// peer's store (peer_store.h), KeyBook's.

#ifndef CHAT_PEER_PIN_STORE_H_
#define CHAT_PEER_PIN_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/identity.h"

namespace chat::peer {

// A key pinned for a name: the first one seen for it (trust on first use),
// or the one the user accepted with /trust.
struct Pin {
  std::string name;
  PublicKey key;
};

// Errors: kUnavailable (storage failed; nothing of the failed write is
// kept). Thread-safe.
class PinStore {
 public:
  virtual ~PinStore() = default;

  // Every pin, in no particular order. A damaged pin is left out (the name
  // is met again on first use).
  virtual absl::StatusOr<std::vector<Pin>> Pins() = 0;
  // Pins `key` for `name` (replacing its pin; names compared
  // case-insensitively), or removes the pin when `key` is nullopt. Waited
  // for.
  virtual absl::Status SavePin(const std::string& name,
                               const std::optional<PublicKey>& key) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_PIN_STORE_H_
