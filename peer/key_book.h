// Whose key is whose, as this peer trusts it: the key first seen for each
// name is pinned (trust on first use, like SSH's known_hosts), a different
// key listed later blocks the name until the user says /trust.

#ifndef CHAT_PEER_KEY_BOOK_H_
#define CHAT_PEER_KEY_BOOK_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "peer/events.h"
#include "peer/listeners.h"
#include "peer/pin_store.h"
#include "registry/types.h"

namespace chat::peer {

// What the book knows of one name, for /verify.
struct KeyView {
  std::optional<PublicKey> pinned;  // What we trust.
  // What the registry lists now, when known (nullopt inside: no key).
  std::optional<std::optional<PublicKey>> listed;
  bool changed = false;  // listed differs from pinned: the name is blocked.
};

// Pins live in memory (loaded from the store, written through to it), so
// looking up a key we know costs no round trip; the registry is asked only
// for a name met for the first time.
//
// Thread-safe. The directory is asked, and `events` told, without the
// book's lock held.
class KeyBook final : public ListingListener {
 public:
  struct Options {
    // The key the registry binds `name` to now (GetBinding): nullopt when
    // the name is bound to none (never registered with a key, or a static
    // entry); kUnavailable (or another error) when it cannot be asked now.
    std::function<absl::StatusOr<std::optional<PublicKey>>(
        const std::string& name)>
        directory;
    // Whether `name` is online as a static entry (a lab peer): those have
    // no key, so the registry is not asked.
    std::function<bool(const std::string& name)> is_static = [](auto&) {
      return false;
    };
    // Told once per change, as an error event of one line, when a pinned
    // name is listed with another key (null: told to nobody). Not owned;
    // must outlive this.
    EventSink* events = nullptr;
    // How long a "no key" answer of the directory is believed.
    Millis no_key_ttl{10000};
  };

  // `store` (not owned, must outlive this) keeps the pins; `pins` are those
  // it held at the start (PinStore::Pins()).
  KeyBook(PinStore* store, std::vector<Pin> pins, Options options,
          const Clock& clock);

  // The key to seal to and to check `name`'s messages with: the pinned one;
  // nullopt when `name` has no key (messages go and come plain). The first
  // time a name with a key is met, its key is looked up and pinned.
  // kUnavailable when the name is blocked (its key changed; the message
  // says so and names /trust) or its key cannot be looked up now.
  // Without `may_ask`, the registry is not asked (gRPC callback threads must
  // not wait on it): a name neither pinned nor listed by the watch gets
  // kUnavailable at once.
  absl::StatusOr<std::optional<PublicKey>> KeyFor(const std::string& name,
                                                  bool may_ask = true)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether KeyFor(name, /*may_ask=*/false) would refuse `name` only
  // because its key is not known here yet (neither pinned, nor listed, nor
  // known to have none): asking the registry would answer it.
  bool WouldAsk(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Whether a key is pinned for `name` (we exchanged messages with it).
  bool IsPinned(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // The names with a pinned key, as pinned, in no particular order.
  std::vector<std::string> PinnedNames() ABSL_LOCKS_EXCLUDED(mu_);

  // The registry lists `key` for `name` now (a watch event, a resolve).
  // Pinned names are compared: a difference blocks the name and is told
  // once to Options::events. Others are remembered (a few thousand at
  // most), so their first message needs no round trip.
  void Listed(const std::string& name, const std::optional<PublicKey>& key)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Listed(entry.name, entry.public_key): the follower's watch and the
  // transport's resolves tell the book what they see.
  void OnListed(const registry::Entry& entry) override {
    Listed(entry.name, entry.public_key);
  }

  // Whether `name` is online as a static entry (Options::is_static).
  bool IsStatic(const std::string& name) const {
    return options_.is_static(name);
  }

  // What is known of `name`; asks the registry what it lists now.
  KeyView Verify(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Accepts the key the registry lists for `name` now (after a change, or
  // to pin one at once) and returns the view after it. kNotFound when the
  // registry lists none and none is pinned; kUnavailable when it cannot be
  // asked now.
  absl::StatusOr<KeyView> Trust(const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_);

  // "bob's key changed (was 7f3a9c21…, now 1b2c3d4e…): check with bob, then
  // /trust bob".
  static std::string ChangedText(const std::string& name,
                                 const std::optional<PublicKey>& was,
                                 const std::optional<PublicKey>& now);

 private:
  struct Known {
    std::string name;  // As pinned.
    PublicKey pinned;
    bool changed = false;
    std::optional<PublicKey> listed;  // When changed.
  };

  // Pins `key` for `name` (through to the store).
  absl::Status PinKey(const std::string& name, const PublicKey& key)
      ABSL_LOCKS_EXCLUDED(mu_);

  PinStore* const store_;  // Not owned.
  const Options options_;
  const Clock& clock_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Known> pins_ ABSL_GUARDED_BY(mu_);
  // Name keys the directory said have no key, until when (bounded: cleared
  // when it grows past a few thousand).
  absl::flat_hash_map<std::string, absl::Time> no_key_ ABSL_GUARDED_BY(mu_);
  // Name keys not pinned, with what the registry lists for them (the watch
  // of those followed, resolves). Bounded: cleared when it grows past a few
  // thousand; pins_ (what TOFU rests on) are never evicted.
  absl::flat_hash_map<std::string, std::optional<PublicKey>> listed_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_KEY_BOOK_H_
