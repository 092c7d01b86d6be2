// Time, injected: whatever expires or retries asks a Clock, so tests can move
// time by hand instead of sleeping.

#ifndef CHAT_COMMON_CLOCK_H_
#define CHAT_COMMON_CLOCK_H_

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chat {

using MonoTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

// Two clocks: a monotonic one for deadlines (never jumps) and the wall clock
// for what people read. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Monotonic() const = 0;
  virtual absl::Time Wall() const = 0;
};

// The process's real clocks. Never destroyed.
Clock& RealClock();

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  FakeClock();
  MonoTime Monotonic() const override;
  absl::Time Wall() const override;
  // Moves both clocks forward.
  void Advance(Millis delta);
  // Moves the wall clock alone, as an NTP step or a user would.
  void JumpWall(absl::Duration delta);

 private:
  mutable absl::Mutex mu_;
  MonoTime monotonic_ ABSL_GUARDED_BY(mu_);
  absl::Time wall_ ABSL_GUARDED_BY(mu_);
};

// Milliseconds from `now` until `deadline`, never negative.
int64_t MillisUntil(MonoTime deadline, MonoTime now);

// "19:04:05 UTC" style time of day, for messages people read.
std::string FormatWallTime(absl::Time t);

}  // namespace chat

#endif  // CHAT_COMMON_CLOCK_H_
