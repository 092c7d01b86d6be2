// The CallGate: deadlines judged on an injected clock, the bound on calls in
// progress, and tickets that give their place back.

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

}  // namespace
}  // namespace chat
