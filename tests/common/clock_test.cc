#include "common/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace chat {
namespace {

TEST(FakeClockTest, AdvanceMovesBothClocksJumpMovesOnlyTheWall) {
  FakeClock clock;
  MonoTime mono = clock.Monotonic();
  absl::Time wall = clock.Wall();
  clock.Advance(Millis(1500));
  EXPECT_EQ(clock.Monotonic() - mono, Millis(1500));
  EXPECT_EQ(clock.Wall() - wall, absl::Milliseconds(1500));
  clock.JumpWall(absl::Hours(-3));
  EXPECT_EQ(clock.Monotonic() - mono, Millis(1500));
}

// A thread that waits on `clock` until `ready` or `timeout`, and says how it
// ended.
class Waiter {
 public:
  Waiter(const Clock& clock, Millis timeout) {
    thread_ = std::thread([this, &clock, timeout] {
      absl::MutexLock lock(&mu_);
      const bool ready =
          clock.AwaitFor(&mu_, absl::Condition(&ready_), timeout);
      result_ = ready ? 1 : 0;
    });
  }
  ~Waiter() { Join(); }

  void MakeReady() {
    absl::MutexLock lock(&mu_);
    ready_ = true;
  }
  // 1: the condition held, 0: the deadline passed.
  int Join() {
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return result_;
  }

 private:
  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  int result_ ABSL_GUARDED_BY(mu_) = -1;
  std::thread thread_;
};

TEST(FakeClockTest, AwaitEndsWhenAdvanceReachesTheDeadline) {
  FakeClock clock;
  Waiter waiter(clock, Millis(100));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextWait(), Millis(100));
  clock.Advance(Millis(60));
  // Woken and back to waiting: the deadline is still ahead.
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextWait(), Millis(40));
  clock.Advance(Millis(40));
  EXPECT_EQ(waiter.Join(), 0);
  EXPECT_EQ(clock.WaiterDeadlines().size(), 0u);
}

TEST(FakeClockTest, AwaitEndsWhenTheConditionHoldsWithoutTimeMoving) {
  FakeClock clock;
  const MonoTime start = clock.Monotonic();
  Waiter waiter(clock, Millis(100));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  waiter.MakeReady();
  EXPECT_EQ(waiter.Join(), 1);
  EXPECT_EQ(clock.Monotonic(), start);
}

TEST(FakeClockTest, AdvanceToNextWaitWakesTheSoonestOnly) {
  FakeClock clock;
  Waiter soon(clock, Millis(30));
  Waiter late(clock, Millis(500));
  ASSERT_TRUE(clock.AwaitWaiters(2));
  EXPECT_EQ(clock.AdvanceToNextWait(), Millis(30));
  EXPECT_EQ(soon.Join(), 0);
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextWait(), Millis(470));
  late.MakeReady();
  EXPECT_EQ(late.Join(), 1);
}

TEST(FakeClockTest, AwaitWaitersGivesUpAfterItsTimeout) {
  FakeClock clock;
  EXPECT_FALSE(clock.AwaitWaiters(1, absl::Milliseconds(1)));
  EXPECT_EQ(clock.AdvanceToNextWait(absl::Milliseconds(1)), std::nullopt);
}

TEST(RealClockTest, AwaitForReturnsTheConditionOrTimesOut) {
  absl::Mutex mu;
  bool ready = false;
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(RealClock().AwaitFor(&mu, absl::Condition(&ready), Millis(1)));
  ready = true;
  EXPECT_TRUE(RealClock().AwaitFor(&mu, absl::Condition(&ready), Millis(1)));
}

TEST(MillisUntilTest, NeverNegative) {
  MonoTime now{std::chrono::seconds(100)};
  EXPECT_EQ(MillisUntil(now + Millis(250), now), 250);
  EXPECT_EQ(MillisUntil(now - Millis(250), now), 0);
}

}  // namespace
}  // namespace chat
