// The CallGate: deadlines judged on an injected clock, the bound on calls in
// progress, and tickets that give their place back.

#include "common/overload.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace chat
