// StrangerGate on a FakeClock: per name and per host, the refusals counted
// on one line, never one per message.

#include "peer/strangers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;

std::vector<std::string> Lines(RecordingSink& sink) {
  std::vector<std::string> lines;
  for (const PeerEvent& event : sink.Events()) lines.push_back(event.text);
  return lines;
}

StrangerGate::Options Small() {
  StrangerGate::Options options;
  options.sender_burst = 2;
  options.sender_every = Millis(10000);
  options.host_burst = 5;
  options.host_every = Millis(1000);
  options.notice_every = Millis(10000);
  return options;
}

TEST(StrangerGateTest, ANameGetsABurstThenOneMessagePerInterval) {
  FakeClock clock;
  RecordingSink sink;
  StrangerGate gate(Small(), &sink, clock);
  EXPECT_THAT(gate.Admit("mallory", "10.0.0.1"), IsOk());
  EXPECT_THAT(gate.Admit("MALLORY", "10.0.0.2"), IsOk());  // One name.
  EXPECT_THAT(gate.Admit("mallory", "10.0.0.3"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(gate.Admit("trudy", "10.0.0.1"), IsOk());  // Another name.
  clock.Advance(Millis(10000));
  EXPECT_THAT(gate.Admit("mallory", "10.0.0.4"), IsOk());
  EXPECT_THAT(gate.Admit("mallory", "10.0.0.4"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(gate.refused(), 2);
}

TEST(StrangerGateTest, AHostGetsABurstWhateverTheNames) {
  FakeClock clock;
  RecordingSink sink;
  StrangerGate gate(Small(), &sink, clock);
  int admitted = 0;
  for (int i = 0; i < 3000; ++i) {
    if (gate.Admit(absl::StrCat("stranger-", i), "10.0.0.1").ok()) ++admitted;
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(gate.refused(), 2995);
  // Another host is not held up by the first.
  EXPECT_THAT(gate.Admit("walter", "10.0.0.9"), IsOk());
  clock.Advance(Millis(1000));
  EXPECT_THAT(gate.Admit("stranger-x", "10.0.0.1"), IsOk());
}

TEST(StrangerGateTest, RefusalsAreCountedOnALineNowAndThen) {
  FakeClock clock;
  RecordingSink sink;
  StrangerGate gate(Small(), &sink, clock);
  for (int i = 0; i < 1000; ++i) {
    gate.Admit(absl::StrCat("s", i), "10.0.0.1").IgnoreError();
  }
  // The first refusal is told at once; the rest wait for the interval.
  EXPECT_THAT(Lines(sink),
              ElementsAre("1 message from strangers refused (too many at "
                          "once)"));
  gate.Tick();
  EXPECT_EQ(sink.Events().size(), 1u);
  clock.Advance(Millis(10000));
  gate.Tick();  // The flood stopped: its count still comes.
  gate.Tick();
  EXPECT_THAT(
      Lines(sink),
      ElementsAre("1 message from strangers refused (too many at once)",
                  "995 messages from strangers refused (too many at once)"));
  clock.Advance(Millis(60000));
  gate.Tick();  // Nothing new, nothing said.
  EXPECT_EQ(sink.Events().size(), 2u);
  for (int i = 0; i < 2000; ++i) {
    gate.Admit(absl::StrCat("t", i), "10.0.0.1").IgnoreError();
  }
  // A new flood after a quiet spell is told at once, then counted again.
  EXPECT_EQ(Lines(sink).back(),
            "996 messages from strangers refused (too many at once)");
  clock.Advance(Millis(10000));
  gate.Tick();
  EXPECT_EQ(Lines(sink).back(),
            "2,990 messages from strangers refused (too many at once)");
  EXPECT_EQ(sink.Events().size(), 4u);
  EXPECT_EQ(sink.Events()[0].kind, EventKind::kInfo);
}

TEST(StrangerGateTest, MemoryIsBounded) {
  FakeClock clock;
  RecordingSink sink;
  StrangerGate::Options options = Small();
  options.host_burst = 1000000;
  options.max_tracked = 100;
  StrangerGate gate(options, &sink, clock);
  for (int i = 0; i < 100; ++i) {
    EXPECT_THAT(gate.Admit(absl::StrCat("s", i), "h"), IsOk());
  }
  // Full of busy names: new ones share one bucket.
  EXPECT_THAT(gate.Admit("n1", "h"), IsOk());
  EXPECT_THAT(gate.Admit("n2", "h"), IsOk());
  EXPECT_THAT(gate.Admit("n3", "h"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Once theirs have filled up again, they are forgotten and make room.
  clock.Advance(Millis(20000));
  EXPECT_THAT(gate.Admit("n4", "h"), IsOk());
  EXPECT_THAT(gate.Admit("n4", "h"), IsOk());
}

}  // namespace
}  // namespace chat::peer
