// Which name someone the user knows a sender's name imitates: "аlice"
// (Cyrillic a), "alice " or "alice" with a zero-width space for "alice".

#ifndef CHAT_PEER_LOOKALIKES_H_
#define CHAT_PEER_LOOKALIKES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/unicode.h"

namespace chat::peer {

// Compares names as a reader sees them (common/unicode.h: LookAlike), with
// the work per known name done once and kept (a bounded cache).
//
// Thread-safe.
class Lookalikes {
 public:
  // The first of `known` that `name` looks like without being it (another
  // name key, registry/names.h); "" when none.
  std::string Imitated(const std::string& name,
                       const std::vector<std::string>& known)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Keys kept at most; beyond, the cache starts afresh.
  static constexpr size_t kMaxCached = 4096;

 private:
  LookalikeKey KeyOf(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, LookalikeKey> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_LOOKALIKES_H_
