#include "registry/etcd/endpoint_pauses.h"

#include <algorithm>

namespace chat::registry::etcd {

EndpointPauses::EndpointPauses(const Clock& clock, size_t endpoints)
    : clock_(clock), pauses_(endpoints) {}

bool EndpointPauses::Failed(size_t i) {
  absl::MutexLock lock(&mu_);
  Pause& pause = pauses_.at(i);
  // Doubling stops once past the cap, so the shift cannot overflow.
  const int doublings = std::min(pause.failures, 5);
  pause.until =
      clock_.Monotonic() + std::min(kMaxPause, kFirstPause * (1 << doublings));
  return ++pause.failures == 1;
}

int EndpointPauses::Answered(size_t i) {
  absl::MutexLock lock(&mu_);
  Pause& pause = pauses_.at(i);
  const int ended = pause.failures;
  pause.failures = 0;
  pause.until = MonoTime{};
  return ended;
}

bool EndpointPauses::Paused(size_t i) const {
  absl::MutexLock lock(&mu_);
  const Pause& pause = pauses_.at(i);
  return pause.failures > 0 && clock_.Monotonic() < pause.until;
}

int EndpointPauses::Failures(size_t i) const {
  absl::MutexLock lock(&mu_);
  return pauses_.at(i).failures;
}

bool EndpointPauses::TakeRetry(size_t i) {
  absl::MutexLock lock(&mu_);
  Pause& pause = pauses_.at(i);
  const MonoTime now = clock_.Monotonic();
  if (pause.last_retry.has_value() && now - *pause.last_retry < kRetryEvery) {
    return false;
  }
  pause.last_retry = now;
  return true;
}

}  // namespace chat::registry::etcd
