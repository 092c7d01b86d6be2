// The registry's single-use registration challenges: what an older
// registrant signs (chat-register-v1, with its name, address and key) so
// that a captured Register cannot be sent again, now or later. Clients of
// this version sign a time instead, which needs no state here
// (common/identity.h TimedRegistrationProofMessage).

#ifndef CHAT_REGISTRY_SERVER_CHALLENGES_H_
#define CHAT_REGISTRY_SERVER_CHALLENGES_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat::registry {

inline constexpr size_t kChallengeBytes = 32;

// Challenges handed out and not yet used, in memory only (a restart forgets
// them: registrants ask again). Each is bound to the name it was asked for,
// valid for `lifetime` on the monotonic clock, and used at most once. At
// most `max_outstanding` are kept; when full, the oldest is dropped to make
// room, so a flood of requests costs memory once, not without bound (a
// registrant whose challenge was dropped gets kUnauthenticated and asks
// again).
// Thread-safe.
class ChallengeBook {
 public:
  struct Options {
    Millis lifetime{60000};
    size_t max_outstanding = 10000;
  };

  // `clock` is not owned and must outlive this.
  explicit ChallengeBook(const Clock& clock)
      : ChallengeBook(clock, Options{}) {}
  ChallengeBook(const Clock& clock, Options options);

  Millis lifetime() const { return options_.lifetime; }

  // A new challenge for `name` (case-insensitive): kChallengeBytes random
  // bytes.
  std::string Issue(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Uses up `challenge`: OK when it was issued for `name` and is neither
  // used nor expired nor dropped; kUnauthenticated otherwise. Either way it
  // can never be used again.
  absl::Status Consume(const std::string& name, const std::string& challenge)
      ABSL_LOCKS_EXCLUDED(mu_);

  // How many are outstanding (for tests).
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Issued {
    std::string name_key;
    MonoTime expires_at;
    uint64_t seq;
  };

  // Forgets expired challenges, and the oldest ones beyond the bound.
  void Prune(MonoTime now, size_t room) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const Options options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Issued> issued_ ABSL_GUARDED_BY(mu_);
  // seq -> challenge, oldest first (the lifetime is the same for all, so
  // also soonest to expire first).
  absl::btree_map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_CHALLENGES_H_
