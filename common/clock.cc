#include "common/clock.h"

#include <string>

namespace chat {
namespace {

class SystemClock final : public Clock {
 public:
  MonoTime Monotonic() const override {
    return std::chrono::steady_clock::now();
  }
  absl::Time Wall() const override { return absl::Now(); }
};

}  // namespace

Clock& RealClock() {
  static Clock* const clock = new SystemClock();
  return *clock;
}

// Starts at an arbitrary, fixed point so test output is repeatable.
FakeClock::FakeClock()
    : monotonic_(std::chrono::hours(1000)),
      wall_(absl::FromUnixSeconds(1798761600)) {}

MonoTime FakeClock::Monotonic() const {
  absl::MutexLock lock(&mu_);
  return monotonic_;
}

absl::Time FakeClock::Wall() const {
  absl::MutexLock lock(&mu_);
  return wall_;
}

void FakeClock::Advance(Millis delta) {
  absl::MutexLock lock(&mu_);
  monotonic_ += delta;
  wall_ += absl::Milliseconds(delta.count());
}

void FakeClock::JumpWall(absl::Duration delta) {
  absl::MutexLock lock(&mu_);
  wall_ += delta;
}

int64_t MillisUntil(MonoTime deadline, MonoTime now) {
  if (deadline <= now) return 0;
  return std::chrono::duration_cast<Millis>(deadline - now).count();
}

std::string FormatWallTime(absl::Time t) {
  return absl::FormatTime("%H:%M:%S UTC", t, absl::UTCTimeZone());
}

}  // namespace chat
