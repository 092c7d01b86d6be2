#include "common/periodic_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>

#include "tests/testing/wait.h"

namespace chat {
namespace {

using ::chat::testing::WaitFor;

TEST(PeriodicLoopTest, StepsRunAtOnceThenAfterEachPauseTheyAskFor) {
  FakeClock clock;
  std::atomic<int> steps{0};
  PeriodicLoop loop(clock, Millis(0), [&steps]() -> std::optional<Millis> {
    return Millis(100 * ++steps);  // 100, 200, 300 ms.
  });
  ASSERT_TRUE(WaitFor([&] { return steps == 1; }));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextWait(), Millis(100));
  clock.Advance(Millis(99));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextWait(), Millis(1));
  EXPECT_EQ(steps, 1);
  clock.Advance(Millis(1));
  ASSERT_TRUE(WaitFor([&] { return steps == 2; }));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.AdvanceToNextWait(), Millis(200));
  ASSERT_TRUE(WaitFor([&] { return steps == 3; }));
}

TEST(PeriodicLoopTest, FirstStepWaitsForTheFirstDelay) {
  FakeClock clock;
  std::atomic<int> steps{0};
  PeriodicLoop loop(clock, Millis(500), [&steps]() -> std::optional<Millis> {
    ++steps;
    return Millis(500);
  });
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_EQ(clock.NextWait(), Millis(500));
  EXPECT_EQ(steps, 0);
  clock.Advance(Millis(500));
  ASSERT_TRUE(WaitFor([&] { return steps == 1; }));
}

TEST(PeriodicLoopTest, AStepThatReturnsNothingEndsTheLoop) {
  FakeClock clock;
  std::atomic<int> steps{0};
  PeriodicLoop loop(clock, Millis(0), [&steps]() -> std::optional<Millis> {
    if (++steps == 2) return std::nullopt;
    return Millis(10);
  });
  ASSERT_TRUE(WaitFor([&] { return steps == 1; }));
  ASSERT_TRUE(clock.AdvanceToNextWait().has_value());
  ASSERT_TRUE(WaitFor([&] { return steps == 2; }));
  loop.Stop();  // Joins a thread that has ended.
  EXPECT_EQ(clock.WaiterDeadlines().size(), 0u);
  EXPECT_EQ(steps, 2);
}

TEST(PeriodicLoopTest, StopCutsALongPauseShortOnTheRealClock) {
  std::atomic<int> steps{0};
  PeriodicLoop loop(RealClock(), Millis(0),
                    [&steps]() -> std::optional<Millis> {
                      ++steps;
                      return Millis(3600 * 1000);
                    });
  ASSERT_TRUE(WaitFor([&] { return steps == 1; }));
  loop.Stop();  // Would hang for an hour if the pause were not cut short.
  EXPECT_TRUE(loop.stopping());
  EXPECT_EQ(steps, 1);
}

TEST(PeriodicLoopTest, WakeRunsTheNextStepWithoutTimeMoving) {
  FakeClock clock;
  std::atomic<int> steps{0};
  PeriodicLoop loop(clock, Millis(0), [&steps]() -> std::optional<Millis> {
    ++steps;
    return Millis(1000);
  });
  ASSERT_TRUE(WaitFor([&] { return steps == 1; }));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  loop.Wake();
  ASSERT_TRUE(WaitFor([&] { return steps == 2; }));
}

}  // namespace
}  // namespace chat
