// Whom the peer follows, kept across runs. A role of the peer's store
// (peer_store.h), Contacts'.

#ifndef CHAT_PEER_CONTACT_STORE_H_
#define CHAT_PEER_CONTACT_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace chat::peer {

// Someone the peer follows (hears come and go), or chose not to.
struct Contact {
  enum class State {
    kTalked = 0,      // We wrote to them or they to us.
    kChosen = 1,      // /follow, /chat, --peer: kept before those talked with.
    kUnfollowed = 2,  // /unfollow: not followed even when talked with.
  };
  std::string name;  // As first met (lowercase for contacts from before).
  State state = State::kTalked;
  int64_t last_unix_ms = 0;  // When last talked with or chosen.
};

// Unbounded: Contacts bounds it. Errors: kUnavailable (storage failed).
// Thread-safe.
class ContactStore {
 public:
  virtual ~ContactStore() = default;

  // Every contact, most recent first. A file from before contacts were kept
  // starts with everyone it has a conversation with (written to:
  // last_unix_ms 1; only heard from: 0).
  virtual absl::StatusOr<std::vector<Contact>> Contacts() = 0;
  // Records `contact` (by name, case-insensitively, replacing it). Not
  // waited for: after a crash before it lands, the peer follows a little
  // less until it talks with them again.
  virtual void SaveContact(const Contact& contact) = 0;
  // Forgets the contact `name`. Not waited for.
  virtual void ForgetContact(const std::string& name) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_CONTACT_STORE_H_
