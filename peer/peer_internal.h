// Internal to the peer library, not for its clients: what peer.cc (the
// running peer) and peer_start.cc (its start-up) share.

#ifndef CHAT_PEER_PEER_INTERNAL_H_
#define CHAT_PEER_PEER_INTERNAL_H_

#include <algorithm>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "peer/events.h"
#include "peer/peer.h"

namespace chat::peer {

// Here, not in peer_start.cc beside the one place that makes it, because
// ~Peer (peer.cc) destroys it. Thread-safe.
class Peer::FollowerEvents final : public EventSink {
 public:
  explicit FollowerEvents(EventSink* events) : events_(events) {}

  void OnEvent(const PeerEvent& event) override {
    events_->OnEvent(event);
    if (event.kind == EventKind::kSummary) {
      absl::MutexLock lock(&mu_);
      summarized_ = true;
    }
  }

  // Whether the summary came within `timeout`.
  bool WaitForSummary(const Clock& clock, Millis timeout)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return clock.AwaitFor(&mu_, absl::Condition(&summarized_), timeout);
  }

 private:
  EventSink* const events_;  // Not owned.
  absl::Mutex mu_;
  bool summarized_ ABSL_GUARDED_BY(mu_) = false;
};

namespace peer_internal {

// How often the history's age limit is applied (also at start).
inline constexpr absl::Duration kHistoryTrimEvery = absl::Hours(1);

// How often the hold-back loop runs: a few times per limit, so a held
// message waits at most ~1.25x it.
inline Millis HoldBackTick(Millis hold_back) {
  return std::max(hold_back / 4, Millis(10));
}

}  // namespace peer_internal

}  // namespace chat::peer

#endif  // CHAT_PEER_PEER_INTERNAL_H_
