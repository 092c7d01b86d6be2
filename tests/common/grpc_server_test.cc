// AcceptLoopWatch: when a server whose accept loop stopped is replaced, and
// when it is left alone. Pure decisions over what the supervisor saw; time
// is a value moved by hand. The real thing (EMFILE under a small
// RLIMIT_NOFILE) is tests/e2e/fd_exhaustion_e2e.sh.

#include "common/grpc_server.h"

#include <gtest/gtest.h>

namespace chat {
namespace {

using Action = AcceptLoopWatch::Action;
using Look = AcceptLoopWatch::Look;

Look Quiet() {
  Look look;
  look.open_fds = 20;
  look.fd_limit = 1024;
  return look;
}

Look Waiting(bool accepted = false, uint64_t open_fds = 20) {
  Look look = Quiet();
  look.connections_waiting = true;
  look.probe_accepted = accepted;
  look.open_fds = open_fds;
  return look;
}

class AcceptLoopWatchTest : public ::testing::Test {
 protected:
  AcceptLoopWatch::Options Defaults() {
    AcceptLoopWatch::Options options;
    options.stall = Millis(3000);
    options.fd_headroom = 0.75;
    options.max_fd_wait = Millis(30000);
    options.first_backoff = Millis(500);
    options.max_backoff = Millis(4000);
    return options;
  }
  MonoTime At(int64_t ms) { return start_ + Millis(ms); }

  const MonoTime start_ = MonoTime() + Millis(1000000);
};

TEST_F(AcceptLoopWatchTest, AnEmptyListenQueueIsLeftAlone) {
  AcceptLoopWatch watch(Defaults());
  for (int64_t t = 0; t < 100000; t += 1000) {
    EXPECT_EQ(watch.Decide(At(t), Quiet()), Action::kNothing);
  }
  EXPECT_FALSE(watch.stopped());
}

TEST_F(AcceptLoopWatchTest, ABusyServerThatTakesTheProbeIsNeverReplaced) {
  // Connections wait at every look (heavy churn), but each probe is taken.
  AcceptLoopWatch watch(Defaults());
  for (int64_t t = 0; t < 60000; t += 2000) {
    ASSERT_EQ(watch.Decide(At(t), Waiting()), Action::kOpenProbe);
    ASSERT_EQ(watch.Decide(At(t + 1000), Waiting(/*accepted=*/true)),
              Action::kCloseProbe);
  }
  EXPECT_FALSE(watch.stopped());
}

TEST_F(AcceptLoopWatchTest, AProbeLeftWaitingPastTheStallMeansRelisten) {
  AcceptLoopWatch watch(Defaults());
  ASSERT_EQ(watch.Decide(At(0), Waiting()), Action::kOpenProbe);
  EXPECT_EQ(watch.Decide(At(1000), Waiting()), Action::kNothing);
  EXPECT_EQ(watch.Decide(At(2999), Waiting()), Action::kNothing);
  EXPECT_FALSE(watch.stopped());
  EXPECT_EQ(watch.Decide(At(3000), Waiting()), Action::kRelisten);
  watch.Relistened(At(3000), true);
  EXPECT_FALSE(watch.stopped());
  EXPECT_EQ(watch.Decide(At(4000), Quiet()), Action::kNothing);
}

TEST_F(AcceptLoopWatchTest, ALateAcceptBeforeTheStallIsHealthy) {
  AcceptLoopWatch watch(Defaults());
  ASSERT_EQ(watch.Decide(At(0), Waiting()), Action::kOpenProbe);
  EXPECT_EQ(watch.Decide(At(2000), Waiting(true)), Action::kCloseProbe);
  EXPECT_EQ(watch.Decide(At(5000), Quiet()), Action::kNothing);
}

TEST_F(AcceptLoopWatchTest, WaitsForFdsThenRelistens) {
  AcceptLoopWatch watch(Defaults());
  ASSERT_EQ(watch.Decide(At(0), Waiting()), Action::kOpenProbe);
  // 768 = 0.75 * 1024: still short.
  EXPECT_EQ(watch.Decide(At(3000), Waiting(false, 1024)), Action::kWaitForFds);
  EXPECT_TRUE(watch.stopped());
  // Said once, not at every look.
  EXPECT_EQ(watch.Decide(At(4000), Waiting(false, 768)), Action::kNothing);
  EXPECT_EQ(watch.Decide(At(5000), Waiting(false, 767)), Action::kRelisten);
}

TEST_F(AcceptLoopWatchTest, RelistensAnywayAfterTheLongestWaitForFds) {
  // The dead server's own handshaken connections may hold the fds; only
  // replacing it frees them.
  AcceptLoopWatch watch(Defaults());
  ASSERT_EQ(watch.Decide(At(0), Waiting()), Action::kOpenProbe);
  EXPECT_EQ(watch.Decide(At(3000), Waiting(false, 1024)), Action::kWaitForFds);
  EXPECT_EQ(watch.Decide(At(32999), Waiting(false, 1024)), Action::kNothing);
  EXPECT_EQ(watch.Decide(At(33000), Waiting(false, 1024)), Action::kRelisten);
}

TEST_F(AcceptLoopWatchTest, AnUnknownLimitNeverHoldsARelistenBack) {
  AcceptLoopWatch watch(Defaults());
  Look look = Waiting(false, 100000);
  look.fd_limit = 0;
  ASSERT_EQ(watch.Decide(At(0), look), Action::kOpenProbe);
  EXPECT_EQ(watch.Decide(At(3000), look), Action::kRelisten);
}

TEST_F(AcceptLoopWatchTest, AFailedRelistenBacksOffDoublingUpToTheMost) {
  AcceptLoopWatch watch(Defaults());
  ASSERT_EQ(watch.Decide(At(0), Waiting()), Action::kOpenProbe);
  ASSERT_EQ(watch.Decide(At(3000), Waiting()), Action::kRelisten);
  int64_t now = 3000;
  for (int64_t backoff : {500, 1000, 2000, 4000, 4000}) {
    watch.Relistened(At(now), false);
    EXPECT_TRUE(watch.stopped());
    EXPECT_EQ(watch.Decide(At(now + backoff - 1), Waiting()), Action::kNothing)
        << backoff;
    EXPECT_EQ(watch.Decide(At(now + backoff), Waiting()), Action::kRelisten)
        << backoff;
    now += backoff;
  }
  watch.Relistened(At(now), true);
  EXPECT_FALSE(watch.stopped());
}

}  // namespace
}  // namespace chat
