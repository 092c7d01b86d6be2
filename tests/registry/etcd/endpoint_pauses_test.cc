// The pauses EtcdClient puts on etcd members that fail, on a fake clock: how
// long a member is passed over, and that any answer ends its pause at once
// (a member back after a partition is used again without waiting out a
// pause its refusals grew meanwhile). No etcd needed.

#include "registry/etcd/endpoint_pauses.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace chat::registry::etcd {
namespace {

TEST(EtcdEndpointPausesTest, NothingIsPausedAtFirst) {
  FakeClock clock;
  EndpointPauses pauses(clock, 3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_FALSE(pauses.Paused(i));
    EXPECT_EQ(pauses.Failures(i), 0);
  }
}

TEST(EtcdEndpointPausesTest, AFailurePausesThatEndpointForOneSecond) {
  FakeClock clock;
  EndpointPauses pauses(clock, 2);
  pauses.Failed(1);
  EXPECT_TRUE(pauses.Paused(1));
  EXPECT_FALSE(pauses.Paused(0));
  clock.Advance(Millis(999));
  EXPECT_TRUE(pauses.Paused(1));
  clock.Advance(Millis(1));
  EXPECT_FALSE(pauses.Paused(1));
}

TEST(EtcdEndpointPausesTest, ThePauseDoublesPerFailureInARowUpTo30Seconds) {
  FakeClock clock;
  EndpointPauses pauses(clock, 1);
  for (Millis expected :
       {Millis(1000), Millis(2000), Millis(4000), Millis(8000), Millis(16000),
        Millis(30000), Millis(30000), Millis(30000)}) {
    pauses.Failed(0);
    clock.Advance(expected - Millis(1));
    EXPECT_TRUE(pauses.Paused(0)) << expected.count();
    clock.Advance(Millis(1));
    EXPECT_FALSE(pauses.Paused(0)) << expected.count();
  }
  EXPECT_EQ(pauses.Failures(0), 8);
}

// Many failures in a row (a watch refused every 200 ms by a member without
// a leader, for minutes) neither overflow nor grow the pause past its cap.
TEST(EtcdEndpointPausesTest, AThousandFailuresStillPauseForAtMostTheCap) {
  FakeClock clock;
  EndpointPauses pauses(clock, 1);
  for (int i = 0; i < 1000; ++i) pauses.Failed(0);
  clock.Advance(EndpointPauses::kMaxPause);
  EXPECT_FALSE(pauses.Paused(0));
}

// What a healed partition looks like to the registry beside the cut-off
// member: its watch was refused there ("no leader") again and again, so
// the pause is at its cap; the member then answers (a watch created, a
// call answered), and it must be used again at once, not 30 s later.
TEST(EtcdEndpointPausesTest, AnAnswerEndsThePauseAtOnceAndCountsWhatItEnded) {
  FakeClock clock;
  EndpointPauses pauses(clock, 3);
  for (int i = 0; i < 50; ++i) pauses.Failed(2);
  ASSERT_TRUE(pauses.Paused(2));
  EXPECT_EQ(pauses.Answered(2), 50);
  EXPECT_FALSE(pauses.Paused(2));
  EXPECT_EQ(pauses.Failures(2), 0);
  // The next failure starts from the first pause again.
  pauses.Failed(2);
  clock.Advance(EndpointPauses::kFirstPause);
  EXPECT_FALSE(pauses.Paused(2));
}

TEST(EtcdEndpointPausesTest, ARunOfFailuresStartsOnceAndAnAnswerEndsItOnce) {
  FakeClock clock;
  EndpointPauses pauses(clock, 2);
  EXPECT_EQ(pauses.Answered(0), 0);
  EXPECT_TRUE(pauses.Failed(0));  // Starts a run.
  EXPECT_FALSE(pauses.Failed(0));
  clock.Advance(Millis(5000));  // The pause is over, the failures not.
  EXPECT_FALSE(pauses.Paused(0));
  EXPECT_EQ(pauses.Answered(0), 2);
  EXPECT_EQ(pauses.Answered(0), 0);
}

TEST(EtcdEndpointPausesTest, EndpointsArePausedIndependently) {
  FakeClock clock;
  EndpointPauses pauses(clock, 3);
  pauses.Failed(0);
  pauses.Failed(0);
  pauses.Failed(1);
  clock.Advance(Millis(1000));
  EXPECT_TRUE(pauses.Paused(0));
  EXPECT_FALSE(pauses.Paused(1));
  EXPECT_FALSE(pauses.Paused(2));
  EXPECT_EQ(pauses.Answered(1), 1);
  EXPECT_TRUE(pauses.Paused(0));
}

// gRPC's backoff is cut short at most once a second per endpoint, however
// often calls look for a member: a dead member costs one DNS lookup and one
// connection attempt a second at most.
TEST(EtcdEndpointPausesTest, ARetryIsGrantedAtMostOncePerSecondPerEndpoint) {
  FakeClock clock;
  EndpointPauses pauses(clock, 2);
  EXPECT_TRUE(pauses.TakeRetry(0));
  EXPECT_FALSE(pauses.TakeRetry(0));
  EXPECT_TRUE(pauses.TakeRetry(1));
  clock.Advance(EndpointPauses::kRetryEvery - Millis(1));
  EXPECT_FALSE(pauses.TakeRetry(0));
  clock.Advance(Millis(1));
  EXPECT_TRUE(pauses.TakeRetry(0));
  EXPECT_FALSE(pauses.TakeRetry(0));
  // Answers and failures do not change the pace.
  pauses.Failed(0);
  EXPECT_EQ(pauses.Answered(0), 1);
  EXPECT_FALSE(pauses.TakeRetry(0));
}

}  // namespace
}  // namespace chat::registry::etcd
