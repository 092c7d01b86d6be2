// Who is online, as the registry watch tells the peer: for notices,
// completion, WaitUntilOnline() and the send window of static entries.

#ifndef CHAT_PEER_ONLINE_SET_H_
#define CHAT_PEER_ONLINE_SET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "registry/types.h"

namespace chat::peer {

// Names online, compared as name keys (ASCII case-insensitively), each with
// its address, whether it is a static entry and what it offers (services:
// the set keeps every followed name, chat peer or not, so Peer::Send can
// refuse one that offers no chat without asking the registry; the views
// meant for people, notices and completion, keep to chat peers).
//
// A peer watches only the names it follows (Contacts, --max-follow, 1,000
// by default), never the whole registry; the set is still packed (about 70
// bytes a name in all, measured) and a watch snapshot goes straight into
// it: BeginSnapshot(), Put() for each entry listed, EndSnapshot() drops
// whoever the snapshot did not list. No second copy to swap in.
//
// Thread-safe.
class OnlineSet {
 public:
  // A new watch stream starts listing: what Put() records from now on
  // belongs to its snapshot.
  void BeginSnapshot() ABSL_LOCKS_EXCLUDED(mu_);

  // Records `entry` as online; returns whether it is news (a name not
  // online before, or at another address).
  bool Put(const registry::Entry& entry) ABSL_LOCKS_EXCLUDED(mu_);

  // `name` went offline.
  void Remove(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // The snapshot is complete: removes everyone it did not list and returns
  // them (name and address). From now on WaitUntilSynced() returns true.
  std::vector<registry::Entry> EndSnapshot() ABSL_LOCKS_EXCLUDED(mu_);

  // The entry online under `name` (name, address, is_static, services).
  std::optional<registry::Entry> Find(const std::string& name) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `name` is online as a static entry.
  bool IsStatic(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);

  // Everyone online (name, address, is_static, services), sorted by name.
  std::vector<registry::Entry> Entries() const ABSL_LOCKS_EXCLUDED(mu_);

  // The names online, as registered, sorted.
  std::vector<std::string> Names() const ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until `name` is online or StopWaiting() was called; returns
  // whether it is online.
  bool WaitUntilOnline(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Makes every WaitUntilOnline() call, now and later, return at once.
  void StopWaiting() ABSL_LOCKS_EXCLUDED(mu_);

  // Waits on `clock`, at most `timeout`, until the first snapshot is in;
  // returns whether it is.
  bool WaitUntilSynced(const Clock& clock, Millis timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One name online: 16 bytes in the set plus one small block (name,
  // address and services, joined, each ending in '\0').
  class OnlinePeer {
   public:
    OnlinePeer(const registry::Entry& entry, uint32_t generation);
    absl::string_view name() const;  // As registered.
    absl::string_view address() const;
    absl::string_view services() const;  // registry::JoinServices().
    bool is_static() const { return is_static_; }
    registry::Entry ToEntry() const;

    // The snapshot that last listed it; not part of its identity.
    mutable uint32_t generation;

   private:
    // The name, '\0', the address, '\0', the services joined, '\0'.
    std::unique_ptr<char[]> text_;
    bool is_static_;
  };
  struct NameKeyHash {
    using is_transparent = void;
    size_t operator()(absl::string_view name) const;
    size_t operator()(const OnlinePeer& online) const {
      return (*this)(online.name());
    }
  };
  struct NameKeyEq {
    using is_transparent = void;
    static absl::string_view Name(absl::string_view name) { return name; }
    static absl::string_view Name(const OnlinePeer& online) {
      return online.name();
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return absl::EqualsIgnoreCase(Name(a), Name(b));
    }
  };

  mutable absl::Mutex mu_;
  uint32_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // One per snapshot.
  absl::flat_hash_set<OnlinePeer, NameKeyHash, NameKeyEq> online_
      ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;  // The first snapshot is in.
  bool stop_waiting_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_ONLINE_SET_H_
