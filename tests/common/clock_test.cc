#include "common/clock.h"

#include <gtest/gtest.h>

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

TEST(MillisUntilTest, NeverNegative) {
  MonoTime now{std::chrono::seconds(100)};
  EXPECT_EQ(MillisUntil(now + Millis(250), now), 250);
  EXPECT_EQ(MillisUntil(now - Millis(250), now), 0);
}

}  // namespace
}  // namespace chat
