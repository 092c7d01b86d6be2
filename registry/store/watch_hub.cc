#include "registry/store/watch_hub.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/limits.h"
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

size_t QueuedEventBytes(const WatchEvent& event) {
  // A deque node's share and the allocator's headers of the two strings.
  constexpr size_t kOverhead = 48;
  return sizeof(WatchEvent) + kOverhead + event.entry.name.capacity() +
         event.entry.address.capacity();
}

class HubWatch final : public Watch {
 public:
  // Reads a snapshot, then kSynced at `synced_revision`; or, with
  // `replay_from`, the history from that position, then kSynced (resumed).
  HubWatch(WatchHub* hub, WatchKeys scope, std::function<void()> on_ready,
           int64_t synced_revision, std::optional<uint64_t> replay_from,
           uint64_t replay_end)
      : hub_(hub),
        scope_(std::move(scope)),
        on_ready_(std::move(on_ready)),
        synced_revision_(synced_revision),
        resumed_(replay_from.has_value()),
        replay_end_(replay_end),
        phase_(replay_from ? Phase::kReplaying : Phase::kReading),
        replay_next_(replay_from.value_or(0)) {}

  ~HubWatch() override { hub_->Remove(this); }

  std::vector<WatchEvent> Take(size_t max) override {
    max = std::max<size_t>(max, 1);
    std::vector<WatchEvent> out;
    std::string cursor;
    bool reading = false;
    bool replaying = false;
    uint64_t replay_next = 0;
    {
      absl::MutexLock lock(&mu_);
      if (!status_.ok()) return out;
      cursor = cursor_;
      // Only the taker changes the phase.
      reading = phase_ == Phase::kReading;
      replaying = phase_ == Phase::kReplaying;
      replay_next = replay_next_;
    }
    if (replaying) {
      // Without our lock: the hub's comes first.
      ChangeRing::Read read =
          hub_->ReadHistory(scope_, replay_next, replay_end_, max);
      if (read.lost) {
        End(LimitError(
            "the changes this watch was resuming from were dropped from the "
            "registry's history while it read them; watch again to "
            "resynchronise",
            static_cast<int64_t>(hub_->history_capacity_), "watch-history"));
        return {};
      }
      absl::MutexLock lock(&mu_);
      replay_next_ = read.next;
      if (read.done) phase_ = Phase::kSyncDue;
      out = std::move(read.events);
    }
    if (reading) {
      // Without our lock: the source takes the store's, which comes first.
      hub_->source_->ReadSnapshotPage(
          scope_, cursor, max,
          [&](std::vector<Entry> entries, const std::string& last_key,
              bool done) {
            absl::MutexLock lock(&mu_);
            cursor_ = last_key;
            if (done) phase_ = Phase::kSyncDue;
            out.reserve(entries.size() + 1);
            for (Entry& entry : entries) {
              out.push_back(WatchEvent{EventType::kPut, EventReason::kInitial,
                                       std::move(entry)});
            }
          });
    }
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return {};
    if (phase_ == Phase::kSyncDue && out.size() < max) {
      WatchEvent synced;
      synced.type = EventType::kSynced;
      synced.revision = synced_revision_;
      synced.resumed = resumed_;
      out.push_back(std::move(synced));
      phase_ = Phase::kLive;
    }
    if (phase_ != Phase::kLive) return out;
    while (!queue_.empty() && out.size() < max) {
      queued_bytes_ -= QueuedEventBytes(queue_.front());
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

  size_t queued_bytes() {
    absl::MutexLock lock(&mu_);
    return queued_bytes_;
  }

  // Queues `event` of `key` (or drops it, see the rule in the header) unless
  // the watch has ended; ends it when its backlog would pass the limit.
  void Push(const std::string& key, const WatchEvent& event) {
    {
      absl::MutexLock lock(&mu_);
      if (!status_.ok()) return;
      if (phase_ == Phase::kReading && !(key <= cursor_)) return;
      const size_t bytes = QueuedEventBytes(event);
      if (queued_bytes_ + bytes > hub_->max_backlog_bytes_) {
        status_ = LimitError(
            "the watcher fell behind by more KiB of changes than a watch may "
            "queue; watch again to resynchronise",
            static_cast<int64_t>(hub_->max_backlog_bytes_ / 1024),
            hub_->backlog_option_);
        queue_ = {};  // Nobody will take them: free them now.
        queued_bytes_ = 0;
      } else {
        queue_.push_back(event);
        queued_bytes_ += bytes;
      }
      if (phase_ != Phase::kLive) return;  // The taker is still taking.
    }
    on_ready_();
  }

  void End(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (!status_.ok()) return;
      status_ = std::move(status);
      queue_ = {};
      queued_bytes_ = 0;
      if (phase_ != Phase::kLive) return;  // The taker is still taking.
    }
    on_ready_();
  }

 private:
  enum class Phase {
    kReplaying,  // Resumed: history remains to be read.
    kReading,    // Snapshot pages remain to be read.
    kSyncDue,    // All read; kSynced not handed out yet.
    kLive,       // kSynced handed out; changes only.
  };

  WatchHub* const hub_;  // Not owned; outlives this.
  const WatchKeys scope_;
  const std::function<void()> on_ready_;
  const int64_t synced_revision_;
  const bool resumed_;
  const uint64_t replay_end_;  // History position at the start.

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_);
  uint64_t replay_next_ ABSL_GUARDED_BY(mu_);  // Next history position.
  std::string cursor_ ABSL_GUARDED_BY(mu_);    // Last key the snapshot read.
  std::deque<WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

WatchHub::WatchHub(SnapshotSource* source, size_t max_backlog_bytes,
                   std::string backlog_option, size_t history, int64_t revision)
    : source_(source),
      max_backlog_bytes_(max_backlog_bytes),
      backlog_option_(std::move(backlog_option)),
      history_capacity_(history),
      history_(history, revision) {}

WatchHub::~WatchHub() { CancelAll(); }

std::unique_ptr<Watch> WatchHub::Subscribe(WatchKeys scope,
                                           int64_t resume_after,
                                           std::function<void()> on_ready) {
  // Under the lock that Publish() takes: the revision read here and the
  // watch joining watches_ are one step, so every change after that
  // revision reaches the watch (or its snapshot).
  absl::MutexLock lock(&mu_);
  std::optional<uint64_t> replay_from;
  if (resume_after > 0 && history_.Covers(resume_after)) {
    replay_from = history_.PositionAfter(resume_after);
  }
  auto watch = std::make_unique<HubWatch>(this, std::move(scope),
                                          std::move(on_ready), history_.last(),
                                          replay_from, history_.EndPosition());
  watches_.insert(watch.get());
  return watch;
}

void WatchHub::Publish(const std::string& key, const WatchEvent& event) {
  absl::MutexLock lock(&mu_);
  history_.Append(key, event);
  for (HubWatch* watch : watches_) {
    if (watch->scope().Matches(key)) watch->Push(key, event);
  }
}

void WatchHub::ResetHistory(int64_t revision) {
  absl::MutexLock lock(&mu_);
  history_.Reset(revision);
}

void WatchHub::Advance(int64_t revision) {
  absl::MutexLock lock(&mu_);
  history_.Advance(revision);
}

int64_t WatchHub::revision() {
  absl::MutexLock lock(&mu_);
  return history_.last();
}

ChangeRing::Read WatchHub::ReadHistory(const WatchKeys& scope,
                                       uint64_t position, uint64_t end,
                                       size_t max) {
  absl::MutexLock lock(&mu_);
  return history_.ReadFrom(
      position, end, max,
      [&scope](const std::string& key) { return scope.Matches(key); });
}

void WatchHub::CancelAll() {
  absl::MutexLock lock(&mu_);
  for (HubWatch* watch : watches_) {
    watch->End(absl::UnavailableError("the registry is shutting down"));
  }
}

size_t WatchHub::QueuedBytes() {
  absl::MutexLock lock(&mu_);
  size_t total = 0;
  for (HubWatch* watch : watches_) total += watch->queued_bytes();
  return total;
}

void WatchHub::Remove(HubWatch* watch) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch);
}

}  // namespace chat::registry
