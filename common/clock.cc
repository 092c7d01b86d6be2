#include "common/clock.h"

#include <algorithm>
#include <string>

namespace chat {
namespace {

class SystemClock final : public Clock {
 public:
  MonoTime Monotonic() const override {
    return std::chrono::steady_clock::now();
  }
  absl::Time Wall() const override { return absl::Now(); }
  bool AwaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                  MonoTime deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) override {
    // absl waits on its own (wall-based) clock: a relative timeout taken
    // from the monotonic clock is immune to wall-clock steps.
    return mu->AwaitWithTimeout(condition,
                                absl::FromChrono(deadline - Monotonic()));
  }
};

}  // namespace

Clock& RealClock() {
  static Clock* const clock = new SystemClock();
  return *clock;
}

// Starts at an arbitrary, fixed point so test output is repeatable.
FakeClock::FakeClock()
    : monotonic_(MonoTime(std::chrono::hours(1000)).time_since_epoch().count()),
      wall_(absl::FromUnixSeconds(1798761600)) {}

MonoTime FakeClock::Monotonic() const {
  return MonoTime(MonoTime::duration(monotonic_.load()));
}

absl::Time FakeClock::Wall() const {
  absl::MutexLock lock(&time_mu_);
  return wall_;
}

bool FakeClock::AwaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                           MonoTime deadline) const {
  struct Wait {
    const FakeClock* clock;
    const absl::Condition* condition;
    MonoTime deadline;
  } wait{this, &condition, deadline};
  const Waiter waiter{mu, deadline};
  // Registered without holding `mu`: Advance() takes waiters_mu_ and then
  // each waiter's mutex, so the other order would deadlock. Releasing `mu`
  // here is no different from the release inside Await().
  mu->Unlock();
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.push_back(&waiter);
  }
  mu->Lock();
  mu->Await(absl::Condition(
      +[](Wait* w) {
        return w->condition->Eval() || w->clock->Monotonic() >= w->deadline;
      },
      &wait));
  mu->Unlock();
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &waiter));
  }
  mu->Lock();
  return condition.Eval();
}

void FakeClock::Advance(Millis delta) {
  {
    absl::MutexLock lock(&time_mu_);
    monotonic_ += std::chrono::duration_cast<MonoTime::duration>(delta).count();
    wall_ += absl::FromChrono(delta);
  }
  WakeWaiters();
}

void FakeClock::WakeWaiters() {
  // A waiter's condition is evaluated again when its mutex is released; the
  // time it reads has moved.
  absl::MutexLock lock(&waiters_mu_);
  for (const Waiter* waiter : waiters_) {
    waiter->mu->Lock();
    waiter->mu->Unlock();
  }
}

void FakeClock::JumpWall(absl::Duration delta) {
  absl::MutexLock lock(&time_mu_);
  wall_ += delta;
}

bool FakeClock::AwaitWaiters(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&waiters_mu_);
  struct Wanted {
    const FakeClock* clock;
    size_t count;
  } wanted{this, count};
  return waiters_mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Wanted* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->clock->waiters_mu_) {
            return w->clock->waiters_.size() >= w->count;
          },
          &wanted),
      timeout);
}

std::vector<MonoTime> FakeClock::WaiterDeadlines() const {
  std::vector<MonoTime> deadlines;
  {
    absl::MutexLock lock(&waiters_mu_);
    for (const Waiter* waiter : waiters_) {
      deadlines.push_back(waiter->deadline);
    }
  }
  std::sort(deadlines.begin(), deadlines.end());
  return deadlines;
}

std::optional<Millis> FakeClock::NextWait() const {
  std::vector<MonoTime> deadlines = WaiterDeadlines();
  if (deadlines.empty()) return std::nullopt;
  return Millis(MillisUntil(deadlines.front(), Monotonic()));
}

std::optional<Millis> FakeClock::AdvanceToNextWait(absl::Duration timeout) {
  if (!AwaitWaiters(1, timeout)) return std::nullopt;
  std::optional<Millis> next = NextWait();
  if (!next) return std::nullopt;  // It stopped waiting meanwhile.
  Advance(*next);
  return next;
}

int64_t MillisUntil(MonoTime deadline, MonoTime now) {
  if (deadline <= now) return 0;
  return std::chrono::duration_cast<Millis>(deadline - now).count();
}

std::string FormatWallTime(absl::Time t) {
  return absl::FormatTime("%H:%M:%S UTC", t, absl::UTCTimeZone());
}

}  // namespace chat
