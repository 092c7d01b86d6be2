#include "registry/watch_hub.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/match.h"
#include "registry/names.h"

namespace chat::registry {

WatchKeys::WatchKeys(const WatchScope& scope)
    : key_prefix(NameKey(scope.prefix)) {
  keys.reserve(scope.names.size());
  for (const std::string& name : scope.names) keys.push_back(NameKey(name));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
}

bool WatchKeys::Matches(const std::string& key) const {
  if (!absl::StartsWith(key, key_prefix)) return false;
  return keys.empty() || std::binary_search(keys.begin(), keys.end(), key);
}

class HubWatch final : public Watch {
 public:
  HubWatch(WatchHub* hub, WatchKeys scope, size_t limit,
           std::vector<WatchEvent> initial, std::function<void()> on_ready)
      : hub_(hub),
        scope_(std::move(scope)),
        limit_(limit),
        on_ready_(std::move(on_ready)),
        queue_(std::make_move_iterator(initial.begin()),
               std::make_move_iterator(initial.end())) {
    WatchEvent synced;
    synced.type = EventType::kSynced;
    queue_.push_back(std::move(synced));
  }

  ~HubWatch() override { hub_->Remove(this); }

  std::vector<WatchEvent> Take(size_t max) override {
    absl::MutexLock lock(&mu_);
    std::vector<WatchEvent> out;
    while (!queue_.empty() && out.size() < max) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return out;
  }

  absl::Status status() override {
    absl::MutexLock lock(&mu_);
    return status_;
  }

  const WatchKeys& scope() const { return scope_; }

  // Queues `event` unless the watch has ended; ends it on overflow.
  void Push(const WatchEvent& event) {
    {
      absl::MutexLock lock(&mu_);
      if (!status_.ok()) return;
      if (queue_.size() >= limit_) {
        status_ = absl::ResourceExhaustedError(
            "watcher fell too far behind; watch again to resynchronise");
      } else {
        queue_.push_back(event);
      }
    }
    on_ready_();
  }

  void End(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (!status_.ok()) return;
      status_ = std::move(status);
    }
    on_ready_();
  }

 private:
  WatchHub* const hub_;  // Not owned; outlives this.
  const WatchKeys scope_;
  const size_t limit_;
  const std::function<void()> on_ready_;

  absl::Mutex mu_;
  std::deque<WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

WatchHub::WatchHub(size_t max_backlog) : max_backlog_(max_backlog) {}

WatchHub::~WatchHub() { CancelAll(); }

std::unique_ptr<Watch> WatchHub::Subscribe(WatchKeys scope,
                                           std::vector<WatchEvent> initial,
                                           std::function<void()> on_ready) {
  size_t limit = initial.size() + 1 + max_backlog_;
  auto watch = std::make_unique<HubWatch>(
      this, std::move(scope), limit, std::move(initial), std::move(on_ready));
  absl::MutexLock lock(&mu_);
  watches_.insert(watch.get());
  return watch;
}

void WatchHub::Publish(const std::string& key, const WatchEvent& event) {
  absl::MutexLock lock(&mu_);
  for (HubWatch* watch : watches_) {
    if (watch->scope().Matches(key)) watch->Push(event);
  }
}

void WatchHub::CancelAll() {
  absl::MutexLock lock(&mu_);
  for (HubWatch* watch : watches_) {
    watch->End(absl::UnavailableError("the registry is shutting down"));
  }
}

void WatchHub::Remove(HubWatch* watch) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch);
}

}  // namespace chat::registry
