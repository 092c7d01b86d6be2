// The hang check of an etcd watch (WatchLiveness), on a fake clock and a
// fake stream: when it asks for progress, when it gives the stream up, and
// that a busy reader or an answer resets it. No etcd needed.

#include "registry/etcd/watch_liveness.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/clock.h"
#include "tests/testing/wait.h"

namespace chat::registry::etcd {
namespace {

using ::chat::testing::WaitFor;

constexpr Millis kPatience(1000);

// Counts what the check did to it; answers progress requests as told.
class FakeStream final : public WatchLiveness::Stream {
 public:
  bool AskForProgress() override {
    ++asks;
    return stream_open;
  }
  void GiveUp() override { gave_up = true; }

  std::atomic<int> asks{0};
  std::atomic<bool> gave_up{false};
  std::atomic<bool> stream_open{true};
};

// Runs the check on its own thread; stops it and joins at the end.
class Checker {
 public:
  Checker(WatchLiveness& liveness, FakeStream& stream)
      : liveness_(liveness),
        thread_([&liveness, &stream] { liveness.Run(stream); }) {}
  ~Checker() {
    liveness_.Stop();
    thread_.join();
  }

 private:
  WatchLiveness& liveness_;
  std::thread thread_;
};

TEST(EtcdWatchLivenessTest, AsksAfterPatienceThenGivesUpWhenNothingAnswers) {
  FakeClock clock;
  WatchLiveness liveness(clock, kPatience);
  FakeStream stream;
  Checker checker(liveness, stream);
  liveness.WaitStarted();
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(kPatience - Millis(1));
  EXPECT_EQ(stream.asks, 0);
  clock.Advance(Millis(1));
  ASSERT_TRUE(WaitFor([&] { return stream.asks == 1; }));
  ASSERT_TRUE(clock.AwaitWaiters(1));
  EXPECT_FALSE(stream.gave_up);
  clock.Advance(kPatience);
  ASSERT_TRUE(WaitFor([&] { return stream.gave_up.load(); }));
  EXPECT_TRUE(liveness.gave_up());
  EXPECT_EQ(liveness.progress_requests(), 1);
}

TEST(EtcdWatchLivenessTest, AnAnswerToTheRequestKeepsTheStream) {
  FakeClock clock;
  WatchLiveness liveness(clock, kPatience);
  FakeStream stream;
  Checker checker(liveness, stream);
  liveness.WaitStarted();
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(kPatience);
  ASSERT_TRUE(WaitFor([&] { return stream.asks == 1; }));
  // The progress notification comes: the reader's wait ends, and it waits
  // again.
  liveness.WaitEnded();
  liveness.WaitStarted();
  // The check's next question comes a whole patience after that answer.
  clock.Advance(kPatience - Millis(1));
  EXPECT_EQ(stream.asks, 1);
  clock.Advance(Millis(1));
  ASSERT_TRUE(WaitFor([&] { return stream.asks == 2; }));
  liveness.WaitEnded();
  liveness.WaitStarted();
  EXPECT_FALSE(stream.gave_up);
  EXPECT_FALSE(liveness.gave_up());
}

TEST(EtcdWatchLivenessTest, AnEventWithinPatienceStartsItAgain) {
  FakeClock clock;
  WatchLiveness liveness(clock, kPatience);
  FakeStream stream;
  Checker checker(liveness, stream);
  liveness.WaitStarted();
  ASSERT_TRUE(clock.AwaitWaiters(1));
  clock.Advance(kPatience - Millis(400));
  liveness.WaitEnded();
  liveness.WaitStarted();
  clock.Advance(kPatience - Millis(1));
  EXPECT_EQ(stream.asks, 0);
  clock.Advance(Millis(1));
  ASSERT_TRUE(WaitFor([&] { return stream.asks == 1; }));
}

// A reader busy with its last batch leaves answers queued: that time says
// nothing about the member.
TEST(EtcdWatchLivenessTest, ABusyReaderIsNotASilentMember) {
  FakeClock clock;
  WatchLiveness liveness(clock, kPatience);
  FakeStream stream;
  {
    Checker checker(liveness, stream);
    liveness.WaitStarted();
    liveness.WaitEnded();
    clock.Advance(10 * kPatience);
  }
  EXPECT_EQ(stream.asks, 0);
  EXPECT_FALSE(stream.gave_up);
}

// A stream that is over already is left to end: its reader sees it.
TEST(EtcdWatchLivenessTest, AStreamOverIsNotGivenUp) {
  FakeClock clock;
  WatchLiveness liveness(clock, kPatience);
  FakeStream stream;
  stream.stream_open = false;
  {
    Checker checker(liveness, stream);
    liveness.WaitStarted();
    ASSERT_TRUE(clock.AwaitWaiters(1));
    clock.Advance(kPatience);
    ASSERT_TRUE(WaitFor([&] { return stream.asks == 1; }));
    clock.Advance(10 * kPatience);
    liveness.WaitEnded();
  }
  EXPECT_FALSE(stream.gave_up);
  EXPECT_FALSE(liveness.gave_up());
}

}  // namespace
}  // namespace chat::registry::etcd
