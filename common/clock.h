// Time, injected: whatever expires, retries or waits asks a Clock, so tests
// can move time by hand instead of sleeping.

#ifndef CHAT_COMMON_CLOCK_H_
#define CHAT_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chat {

using MonoTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

// Two clocks: a monotonic one for deadlines (never jumps) and the wall clock
// for what people read; and waiting on the monotonic one. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Monotonic() const = 0;
  virtual absl::Time Wall() const = 0;

  // Waits until `condition` holds or Monotonic() reaches `deadline`, like
  // absl::Mutex::AwaitWithDeadline but on this clock's time: `mu` is held on
  // entry and on return and released while waiting. Returns whether
  // `condition` holds. `condition` is evaluated with `mu` held, so it may read
  // state that `mu` guards.
  virtual bool AwaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                          MonoTime deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // AwaitUntil() `timeout` from now.
  bool AwaitFor(absl::Mutex* mu, const absl::Condition& condition,
                Millis timeout) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return AwaitUntil(mu, condition, Monotonic() + timeout);
  }
};

// The process's real clocks. Never destroyed.
Clock& RealClock();

// A clock that moves only when told to; waiters wake when Advance() reaches
// their deadline. Thread-safe.
class FakeClock final : public Clock {
 public:
  FakeClock();
  MonoTime Monotonic() const override;
  absl::Time Wall() const override;
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                  MonoTime deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) override;

  // Moves both clocks forward and wakes every waiter whose deadline it
  // reached.
  void Advance(Millis delta);
  // Moves the wall clock alone, as an NTP step or a user would.
  void JumpWall(absl::Duration delta);

  // For tests that drive a thread through its waits: blocks (on real time,
  // at most `timeout`) until at least `count` threads wait in AwaitUntil();
  // returns whether they do.
  bool AwaitWaiters(size_t count,
                    absl::Duration timeout = absl::Seconds(10)) const;
  // The deadlines of the threads waiting now, soonest first.
  std::vector<MonoTime> WaiterDeadlines() const;
  // How far the soonest waiter's deadline lies ahead, if anyone waits.
  std::optional<Millis> NextWait() const;
  // AwaitWaiters(1), then Advance() to the soonest deadline; returns how far
  // it moved, or nullopt if nobody waited within `timeout`.
  std::optional<Millis> AdvanceToNextWait(
      absl::Duration timeout = absl::Seconds(10));

 private:
  struct Waiter {
    absl::Mutex* mu;
    MonoTime deadline;
  };

  void WakeWaiters() ABSL_LOCKS_EXCLUDED(waiters_mu_);

  // Atomic, not guarded: waiters' conditions read it under their own mutex,
  // and a condition must not take another lock.
  std::atomic<MonoTime::rep> monotonic_;
  mutable absl::Mutex time_mu_;  // Orders Advance() with JumpWall().
  absl::Time wall_ ABSL_GUARDED_BY(time_mu_);

  // Taken before a waiter's own mutex (to wake it), never after it.
  mutable absl::Mutex waiters_mu_;
  mutable std::vector<const Waiter*> waiters_ ABSL_GUARDED_BY(waiters_mu_);
};

// Milliseconds from `now` until `deadline`, never negative.
int64_t MillisUntil(MonoTime deadline, MonoTime now);

// "19:04:05 UTC" style time of day, for messages people read.
std::string FormatWallTime(absl::Time t);

}  // namespace chat

#endif  // CHAT_COMMON_CLOCK_H_
