// The CallGate: deadlines judged on an injected clock, the bound on calls in
// progress, shedding by lateness, and tickets that give their place back.

#include "common/overload.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

OverloadOptions WithBound(const Clock& clock, int max) {
  OverloadOptions options;
  options.max_calls_in_progress = max;
  options.clock = &clock;
  return options;
}

TEST(CallGateTest, RefusesACallWhoseDeadlineHasPassed) {
  FakeClock clock;
  CallGate gate(WithBound(clock, 10));
  const absl::Time deadline = clock.Wall() + absl::Milliseconds(100);
  EXPECT_THAT(gate.Admit(deadline), IsOk());
  clock.Advance(Millis(100));
  EXPECT_THAT(gate.Admit(deadline),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(gate.Admit(absl::InfiniteFuture()), IsOk());
  EXPECT_EQ(gate.counts().expired, 1);
  EXPECT_EQ(gate.counts().admitted, 2);
  EXPECT_EQ(gate.counts().in_progress, 0);  // Both tickets went at once.
}

TEST(CallGateTest, RefusesBeyondTheBoundAndAdmitsAgainWhenAPlaceIsFree) {
  FakeClock clock;
  CallGate gate(WithBound(clock, 3));
  std::vector<CallGate::Ticket> held;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<CallGate::Ticket> ticket =
        gate.Admit(absl::InfiniteFuture());
    ASSERT_THAT(ticket, IsOk());
    held.push_back(*std::move(ticket));
  }
  EXPECT_THAT(gate.Admit(absl::InfiniteFuture()),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("too many calls in progress (limit 3, "
                                 "--max-calls-in-progress)")));
  EXPECT_EQ(gate.counts().refused, 1);
  EXPECT_EQ(gate.counts().in_progress, 3);
  held.back().Release();
  EXPECT_EQ(gate.counts().in_progress, 2);
  EXPECT_THAT(gate.Admit(absl::InfiniteFuture()), IsOk());
}

TEST(CallGateTest, ExpiredCallsTakeNoPlace) {
  FakeClock clock;
  CallGate gate(WithBound(clock, 1));
  EXPECT_THAT(gate.Admit(clock.Wall()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(gate.counts().in_progress, 0);
  EXPECT_THAT(gate.Admit(absl::InfiniteFuture()), IsOk());
}

TEST(CallGateTest, ZeroMeansNoBound) {
  FakeClock clock;
  CallGate gate(WithBound(clock, 0));
  std::vector<CallGate::Ticket> held;
  for (int i = 0; i < 5000; ++i) {
    absl::StatusOr<CallGate::Ticket> ticket =
        gate.Admit(absl::InfiniteFuture());
    ASSERT_THAT(ticket, IsOk());
    held.push_back(*std::move(ticket));
  }
  EXPECT_EQ(gate.counts().in_progress, 5000);
}

TEST(CallGateTest, AMovedTicketGivesItsPlaceBackOnce) {
  FakeClock clock;
  CallGate gate(WithBound(clock, 1));
  {
    absl::StatusOr<CallGate::Ticket> ticket =
        gate.Admit(absl::InfiniteFuture());
    ASSERT_THAT(ticket, IsOk());
    CallGate::Ticket moved = *std::move(ticket);
    CallGate::Ticket again;
    again = std::move(moved);
    EXPECT_EQ(gate.counts().in_progress, 1);
  }
  EXPECT_EQ(gate.counts().in_progress, 0);
}

TEST(CallGateTest, RefusalsAreLoggedAFewLinesAtATime) {
  FakeClock clock;
  std::vector<std::string> lines;
  RateLimitedLog log(
      RateLimitedLog::Options(), clock,
      [&lines](const std::string& line) { lines.push_back(line); });
  OverloadOptions options = WithBound(clock, 1);
  options.log = &log;
  CallGate gate(options);
  absl::StatusOr<CallGate::Ticket> held = gate.Admit(absl::InfiniteFuture());
  ASSERT_THAT(held, IsOk());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(gate.Admit(absl::InfiniteFuture()).ok());
    EXPECT_FALSE(gate.Admit(clock.Wall()).ok());
  }
  // Three of each kind, then counts.
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[0], HasSubstr("overload: refused a call: too many calls "
                                  "in progress (limit 1"));
  EXPECT_THAT(lines[1], HasSubstr("past its deadline"));
  log.Flush();
  EXPECT_EQ(lines.size(), 8u);
  EXPECT_THAT(lines[6] + lines[7], HasSubstr("997 more like it"));
}

// Late: 2 ms left, under the 5 ms target. On time: 50 ms left.
absl::StatusOr<CallGate::Ticket> Late(CallGate& gate, const Clock& clock) {
  return gate.Admit(clock.Wall() + absl::Milliseconds(2));
}
absl::StatusOr<CallGate::Ticket> OnTime(CallGate& gate, const Clock& clock) {
  return gate.Admit(clock.Wall() + absl::Milliseconds(50));
}

OverloadOptions Shedding(const Clock& clock) {
  OverloadOptions options = WithBound(clock, 0);
  options.late_target = Millis(5);
  options.late_interval = Millis(100);
  return options;
}

TEST(CallGateTest, ServesLateCallsUntilLatenessHasLastedAnInterval) {
  FakeClock clock;
  CallGate gate(Shedding(clock));
  EXPECT_THAT(Late(gate, clock), IsOk());
  clock.Advance(Millis(99));
  EXPECT_THAT(Late(gate, clock), IsOk());
  EXPECT_FALSE(gate.shedding());
  clock.Advance(Millis(1));
  EXPECT_TRUE(gate.shedding());
  EXPECT_THAT(Late(gate, clock), StatusIs(absl::StatusCode::kResourceExhausted,
                                          HasSubstr("less than 5 ms left")));
  EXPECT_EQ(gate.counts().shed, 1);
  EXPECT_EQ(gate.counts().admitted, 2);
}

TEST(CallGateTest, AnOnTimeCallEndsTheSheddingAndRestartsTheInterval) {
  FakeClock clock;
  CallGate gate(Shedding(clock));
  EXPECT_THAT(Late(gate, clock), IsOk());
  clock.Advance(Millis(100));
  EXPECT_FALSE(Late(gate, clock).ok());
  // A call that still has time is served, and shows the queue has gone.
  EXPECT_THAT(OnTime(gate, clock), IsOk());
  EXPECT_FALSE(gate.shedding());
  EXPECT_THAT(Late(gate, clock), IsOk());
  clock.Advance(Millis(50));
  EXPECT_THAT(Late(gate, clock), IsOk());
  clock.Advance(Millis(50));
  EXPECT_FALSE(Late(gate, clock).ok());
  EXPECT_EQ(gate.counts().shed, 2);
}

TEST(CallGateTest, ExpiredCallsCountAsLateAndStayDeadlineExceeded) {
  FakeClock clock;
  CallGate gate(Shedding(clock));
  EXPECT_THAT(gate.Admit(clock.Wall()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  clock.Advance(Millis(100));
  EXPECT_THAT(gate.Admit(clock.Wall()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(Late(gate, clock),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(gate.counts().expired, 2);
  EXPECT_EQ(gate.counts().shed, 1);
}

TEST(CallGateTest, CallsWithoutADeadlineAreNeverShedAndTellNothing) {
  FakeClock clock;
  CallGate gate(Shedding(clock));
  EXPECT_THAT(Late(gate, clock), IsOk());
  clock.Advance(Millis(100));
  // Streams (Watch, Listen) often have no deadline: always admitted, and
  // they do not end the shedding.
  EXPECT_THAT(gate.Admit(absl::InfiniteFuture()), IsOk());
  EXPECT_TRUE(gate.shedding());
  EXPECT_FALSE(Late(gate, clock).ok());
}

TEST(CallGateTest, ALateTargetOfZeroNeverSheds) {
  FakeClock clock;
  OverloadOptions options = Shedding(clock);
  options.late_target = Millis(0);
  CallGate gate(options);
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(Late(gate, clock), IsOk());
    clock.Advance(Millis(100));
  }
  EXPECT_FALSE(gate.shedding());
  EXPECT_EQ(gate.counts().shed, 0);
}

TEST(CallGateTest, SheddingIsLogged) {
  FakeClock clock;
  std::vector<std::string> lines;
  RateLimitedLog log(
      RateLimitedLog::Options(), clock,
      [&lines](const std::string& line) { lines.push_back(line); });
  OverloadOptions options = Shedding(clock);
  options.log = &log;
  CallGate gate(options);
  EXPECT_THAT(Late(gate, clock), IsOk());
  clock.Advance(Millis(100));
  EXPECT_FALSE(Late(gate, clock).ok());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("overload: shed a late call"));
}

}  // namespace
}  // namespace chat
