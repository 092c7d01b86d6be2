#include "registry/etcd/watch_liveness.h"

namespace chat::registry::etcd {

WatchLiveness::WatchLiveness(const Clock& clock, Millis patience)
    : clock_(clock), patience_(patience) {}

void WatchLiveness::WaitStarted() {
  absl::MutexLock lock(&mu_);
  waiting_ = true;
  waiting_since_ = clock_.Monotonic();
}

void WatchLiveness::WaitEnded() {
  absl::MutexLock lock(&mu_);
  waiting_ = false;
  ++wait_number_;
}

bool WatchLiveness::AwaitEndOfWait(uint64_t wait, MonoTime deadline) {
  auto over = [this, wait]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopped_ || wait_number_ != wait;
  };
  return clock_.AwaitUntil(&mu_, absl::Condition(&over), deadline);
}

void WatchLiveness::Run(Stream& stream) {
  bool give_up = false;
  mu_.Lock();
  while (!give_up) {
    auto reader_waits = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopped_ || waiting_;
    };
    mu_.Await(absl::Condition(&reader_waits));
    if (stopped_) break;
    const uint64_t wait = wait_number_;
    if (AwaitEndOfWait(wait, waiting_since_ + patience_)) continue;
    // Silent for a whole `patience`: a quiet range, or a member that hangs.
    ++progress_requests_;
    mu_.Unlock();
    const bool asked = stream.AskForProgress();
    mu_.Lock();
    if (!asked) {
      // The stream is over; its reader sees it end.
      auto over = [this, wait]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopped_ || wait_number_ != wait;
      };
      mu_.Await(absl::Condition(&over));
      continue;
    }
    if (AwaitEndOfWait(wait, clock_.Monotonic() + patience_)) continue;
    gave_up_ = true;
    give_up = true;
  }
  mu_.Unlock();
  if (give_up) stream.GiveUp();
}

void WatchLiveness::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

bool WatchLiveness::gave_up() const {
  absl::MutexLock lock(&mu_);
  return gave_up_;
}

int64_t WatchLiveness::progress_requests() const {
  absl::MutexLock lock(&mu_);
  return progress_requests_;
}

}  // namespace chat::registry::etcd
