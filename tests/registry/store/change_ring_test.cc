// ChangeRing on made-up changes: what it keeps, what it can replay from
// where, and how a reader learns it fell behind.

#include "registry/store/change_ring.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chat::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

WatchEvent Change(const std::string& name, int64_t revision) {
  WatchEvent event;
  event.type = EventType::kPut;
  event.reason = EventReason::kRegistered;
  event.entry.name = name;
  event.revision = revision;
  return event;
}

bool Any(const std::string&) { return true; }

std::vector<std::string> Names(const std::vector<WatchEvent>& events) {
  std::vector<std::string> names;
  for (const WatchEvent& event : events) names.push_back(event.entry.name);
  return names;
}

TEST(ChangeRingTest, AnEmptyRingCoversOnlyItsStart) {
  ChangeRing ring(4, 100);
  EXPECT_TRUE(ring.Covers(100));
  EXPECT_FALSE(ring.Covers(99));
  EXPECT_FALSE(ring.Covers(101));  // Ahead: unknown.
  ChangeRing::Read read =
      ring.ReadFrom(ring.PositionAfter(100), ring.EndPosition(), 10, Any);
  EXPECT_THAT(read.events, IsEmpty());
  EXPECT_TRUE(read.done);
  EXPECT_FALSE(read.lost);
}

TEST(ChangeRingTest, ReplaysTheChangesAfterARevision) {
  ChangeRing ring(10, 100);
  ring.Append("a", Change("a", 101));
  ring.Append("b", Change("b", 102));
  ring.Append("c", Change("c", 102));  // Two changes of one revision.
  ring.Append("d", Change("d", 105));
  EXPECT_EQ(ring.last(), 105);
  EXPECT_TRUE(ring.Covers(100));
  EXPECT_TRUE(ring.Covers(103));  // Nothing changed at 103 and 104.
  const uint64_t end = ring.EndPosition();
  EXPECT_THAT(
      Names(ring.ReadFrom(ring.PositionAfter(100), end, 10, Any).events),
      ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(
      Names(ring.ReadFrom(ring.PositionAfter(101), end, 10, Any).events),
      ElementsAre("b", "c", "d"));
  EXPECT_THAT(
      Names(ring.ReadFrom(ring.PositionAfter(102), end, 10, Any).events),
      ElementsAre("d"));
  EXPECT_THAT(ring.ReadFrom(ring.PositionAfter(105), end, 10, Any).events,
              IsEmpty());
}

TEST(ChangeRingTest, ReadsAPageAtATimeAndSkipsWhatDoesNotMatch) {
  ChangeRing ring(10);
  for (int i = 1; i <= 6; ++i) {
    const std::string key = (i % 2 == 0 ? "even" : "odd") + std::to_string(i);
    ring.Append(key, Change(key, i));
  }
  auto even = [](const std::string& key) { return key.rfind("even", 0) == 0; };
  const uint64_t end = ring.EndPosition();
  ChangeRing::Read first = ring.ReadFrom(ring.PositionAfter(0), end, 2, even);
  EXPECT_THAT(Names(first.events), ElementsAre("even2", "even4"));
  EXPECT_FALSE(first.done);
  ChangeRing::Read second = ring.ReadFrom(first.next, end, 2, even);
  EXPECT_THAT(Names(second.events), ElementsAre("even6"));
  EXPECT_TRUE(second.done);
}

TEST(ChangeRingTest, StopsAtTheEndGivenEvenWhenMoreCame) {
  ChangeRing ring(10);
  ring.Append("a", Change("a", 1));
  const uint64_t end = ring.EndPosition();
  ring.Append("b", Change("b", 2));
  ChangeRing::Read read = ring.ReadFrom(ring.PositionAfter(0), end, 10, Any);
  EXPECT_THAT(Names(read.events), ElementsAre("a"));
  EXPECT_TRUE(read.done);
}

TEST(ChangeRingTest, DropsTheOldestAndNoLongerCoversWhatItDropped) {
  ChangeRing ring(3, 0);
  for (int i = 1; i <= 5; ++i) ring.Append("k", Change("k", i * 10));
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.floor(), 20);  // 10 and 20 dropped: after 20 is all held.
  EXPECT_FALSE(ring.Covers(10));
  EXPECT_FALSE(ring.Covers(19));
  EXPECT_TRUE(ring.Covers(20));
  EXPECT_TRUE(ring.Covers(50));
  ChangeRing::Read read =
      ring.ReadFrom(ring.PositionAfter(20), ring.EndPosition(), 10, Any);
  EXPECT_EQ(read.events.size(), 3u);
  EXPECT_EQ(read.events.front().revision, 30);
}

TEST(ChangeRingTest, AReaderWhoseChangesWereDroppedLearnsIt) {
  ChangeRing ring(2);
  ring.Append("a", Change("a", 1));
  ring.Append("b", Change("b", 2));
  const uint64_t from = ring.PositionAfter(0);
  const uint64_t end = ring.EndPosition();
  ring.Append("c", Change("c", 3));  // Drops "a", which the reader needs.
  ChangeRing::Read read = ring.ReadFrom(from, end, 10, Any);
  EXPECT_TRUE(read.lost);
  EXPECT_THAT(read.events, IsEmpty());
}

TEST(ChangeRingTest, ResetForgetsEverything) {
  ChangeRing ring(5);
  ring.Append("a", Change("a", 1));
  const uint64_t from = ring.PositionAfter(0);
  ring.Reset(50);
  EXPECT_FALSE(ring.Covers(1));
  EXPECT_TRUE(ring.Covers(50));
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_TRUE(ring.ReadFrom(from, ring.EndPosition(), 10, Any).lost);
}

TEST(ChangeRingTest, AdvanceMovesTheLastRevisionWithoutAChange) {
  ChangeRing ring(5, 10);
  ring.Advance(15);
  EXPECT_TRUE(ring.Covers(15));
  ring.Advance(12);  // Never back.
  EXPECT_EQ(ring.last(), 15);
}

TEST(ChangeRingTest, AnOlderRevisionStartsTheHistoryAgain) {
  ChangeRing ring(5, 10);
  ring.Append("a", Change("a", 11));
  ring.Append("b", Change("b", 5));
  EXPECT_EQ(ring.floor(), 5);
  EXPECT_EQ(ring.last(), 5);
  EXPECT_FALSE(ring.Covers(10));
}

TEST(ChangeRingTest, WithNoRoomNothingIsReplayedButTheNewestIsCovered) {
  ChangeRing ring(0, 1);
  ring.Append("a", Change("a", 2));
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_FALSE(ring.Covers(1));
  EXPECT_TRUE(ring.Covers(2));
}

}  // namespace
}  // namespace chat::registry
