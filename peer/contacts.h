// Whom a peer follows: the names it talked with (either direction) or chose
// (/chat, --peer, /follow), remembered in its store and bounded, so a
// registry full of strangers never reaches its screen or its memory.

#ifndef CHAT_PEER_CONTACTS_H_
#define CHAT_PEER_CONTACTS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "peer/contact_store.h"
#include "peer/listeners.h"

namespace chat::peer {

// The followed set: what the registry follower watches and which online
// and offline notices are shown.
//
// At most `max_followed` contacts are kept (followed or unfollowed, in
// memory and in the store). A name talked with for the first time when the
// set is full takes the place of the contact talked with least recently
// that was not chosen; when every contact was chosen it is not followed.
// Choosing a name (Follow) when every contact was chosen is refused with
// kResourceExhausted naming the limit. Pins (KeyBook) are never touched:
// forgetting a contact only stops its notices.
//
// Thread-safe. The listener (Listen) is called with the set's lock held
// (FollowedListener says what it may do).
class Contacts {
 public:
  struct Options {
    std::string own_name;  // Never followed.
    size_t max_followed = 1000;
  };

  // `store` (not owned, must outlive this) keeps the contacts; `loaded` is
  // what it held at the start (ContactStore::Contacts(), most recent first:
  // beyond max_followed the oldest are forgotten).
  Contacts(ContactStore* store, std::vector<Contact> loaded, Options options,
           const Clock& clock);

  // We wrote to `name` or it wrote to us (a message shown; Peer calls it
  // for a plain message only when the sender is already known, so strangers
  // never become contacts). Follows it unless it was unfollowed; a name that
  // is not valid (a lab peer's "Davide De Rosa") is ignored.
  void Talked(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // The user chose `name` (/follow, /chat, --peer). kInvalidArgument for a
  // bad name or our own; kResourceExhausted when every one of max_followed
  // contacts was chosen ("too many names followed; /unfollow one first (limit
  // N,
  // --max-follow)").
  absl::Status Follow(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops following `name` (remembered, so talking does not follow it
  // again; /follow does). Returns whether it was followed.
  bool Unfollow(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  bool Follows(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `name` is a contact at all: followed, or unfollowed by the user
  // (who knew it). A stranger is none.
  bool Knows(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);

  // The names followed, as first met, sorted (at most max_followed).
  std::vector<std::string> Followed() const ABSL_LOCKS_EXCLUDED(mu_);

  // `listener` is told whenever the followed set changes (a name added or
  // removed), until Listen(nullptr). Not owned; must stay valid until then.
  void Listen(FollowedListener* listener) ABSL_LOCKS_EXCLUDED(mu_);

  size_t max_followed() const { return options_.max_followed; }

 private:
  struct Entry {
    Contact contact;
    int64_t saved_ms = 0;  // last_unix_ms as last written to the store.
  };

  // Makes room for one more contact; false when all are chosen.
  bool MakeRoomLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ChangedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ContactStore* const store_;  // Not owned.
  const Options options_;
  const std::string own_key_;
  const Clock& clock_;

  mutable absl::Mutex mu_;
  // By name key.
  absl::flat_hash_map<std::string, Entry> contacts_ ABSL_GUARDED_BY(mu_);
  FollowedListener* listener_ ABSL_GUARDED_BY(mu_) = nullptr;  // Not owned.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_CONTACTS_H_
