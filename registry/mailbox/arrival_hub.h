// Who waits for mail to arrive, by recipient: the OnArrival() side of every
// Mailbox implementation.

#ifndef CHAT_REGISTRY_MAILBOX_ARRIVAL_HUB_H_
#define CHAT_REGISTRY_MAILBOX_ARRIVAL_HUB_H_

#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "registry/mailbox/mailbox.h"

namespace chat::registry {

// Callbacks waiting for mail, by recipient key (NameKey).
//
// Callbacks run under the hub's lock, from the thread that calls Notify():
// so once an Entry's destructor returns, its callback never runs again.
// A callback must not subscribe or unsubscribe.
// Thread-safe.
class ArrivalHub {
 public:
  class Entry final : public ArrivalSubscription {
   public:
    // `hub` is not owned and must outlive this.
    Entry(ArrivalHub* hub, std::string key, std::function<void()> callback)
        : hub_(hub), key_(std::move(key)), callback_(std::move(callback)) {
      absl::MutexLock lock(&hub_->mu_);
      hub_->entries_.insert(this);
    }
    ~Entry() override {
      absl::MutexLock lock(&hub_->mu_);
      hub_->entries_.erase(this);
    }

   private:
    friend class ArrivalHub;
    ArrivalHub* const hub_;
    const std::string key_;
    const std::function<void()> callback_;
  };

  // Calls the callback of every entry whose key is in `keys`.
  void Notify(const absl::flat_hash_set<std::string>& keys) {
    if (keys.empty()) return;
    absl::MutexLock lock(&mu_);
    for (Entry* entry : entries_) {
      if (keys.contains(entry->key_)) entry->callback_();
    }
  }

  // Calls every callback: for when arrivals may have been missed. A
  // spurious call only makes a listener look once more.
  void NotifyAll() {
    absl::MutexLock lock(&mu_);
    for (Entry* entry : entries_) entry->callback_();
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<Entry*> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_MAILBOX_ARRIVAL_HUB_H_
