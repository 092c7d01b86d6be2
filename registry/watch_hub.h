// Fan-out of store changes to watchers, each with its own bounded queue, so a
// slow watcher never slows the store or other watchers. Shared by every
// Store implementation.

#ifndef CHAT_REGISTRY_WATCH_HUB_H_
#define CHAT_REGISTRY_WATCH_HUB_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "registry/store.h"

namespace chat::registry {

class HubWatch;

// A WatchScope in keys (registry/names.h NameKey): what the hub compares.
struct WatchKeys {
  explicit WatchKeys(const WatchScope& scope);

  // Whether changes of `key` belong to the watch.
  bool Matches(const std::string& key) const;

  std::string key_prefix;
  // Sorted, without duplicates; empty: every key under key_prefix.
  std::vector<std::string> keys;
};

// Thread-safe. Must outlive every Watch it hands out.
class WatchHub {
 public:
  // A watcher whose queue grows past `initial + max_backlog` events is ended
  // with kResourceExhausted.
  explicit WatchHub(size_t max_backlog);
  ~WatchHub();

  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // A watch of the keys of `scope` that starts with `initial` followed by
  // one kSynced event. Callers hold whatever lock orders Subscribe() against
  // Publish(), so the snapshot and the changes after it fit together.
  std::unique_ptr<Watch> Subscribe(WatchKeys scope,
                                   std::vector<WatchEvent> initial,
                                   std::function<void()> on_ready);

  // Queues `event` for every watcher whose scope matches `key`.
  void Publish(const std::string& key, const WatchEvent& event);

  // Ends every watch with kUnavailable.
  void CancelAll();

 private:
  friend class HubWatch;

  void Remove(HubWatch* watch);

  const size_t max_backlog_;
  absl::Mutex mu_;
  absl::flat_hash_set<HubWatch*> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_WATCH_HUB_H_
