// An EventSink (and DeliveryListener) that keeps every event, for tests to
// wait on.

#ifndef CHAT_TESTS_PEER_RECORDING_SINK_H_
#define CHAT_TESTS_PEER_RECORDING_SINK_H_

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "peer/events.h"
#include "peer/listeners.h"

namespace chat::peer {

// Thread-safe.
class RecordingSink final : public EventSink, public DeliveryListener {
 public:
  void OnEvent(const PeerEvent& event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  // States of our messages are kept with the rest, in the order told.
  void OnSendState(const PeerEvent& event) override { OnEvent(event); }

  // The first event matching `match`, waiting up to `timeout` for it.
  std::optional<PeerEvent> WaitFor(
      const std::function<bool(const PeerEvent&)>& match,
      std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    absl::MutexLock lock(&mu_);
    std::optional<PeerEvent> found;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const PeerEvent& event : events_) {
        if (match(event)) {
          found = event;
          return true;
        }
      }
      return false;
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen),
                         absl::Milliseconds(timeout.count()));
    return found;
  }

  std::vector<PeerEvent> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<PeerEvent> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_TESTS_PEER_RECORDING_SINK_H_
