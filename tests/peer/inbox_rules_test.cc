// The rules of conversations, order, hold-back, the shown mark and replay,
// without a store: each decision from the facts a store would hand it.

#include "peer/inbox_rules.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "registry/names.h"

namespace chat::peer {
namespace {

ChatMessage Sequenced(int64_t sequence, int64_t floor,
                      const std::string& epoch = "e1") {
  ChatMessage message;
  message.id = "m" + std::to_string(sequence);
  message.from = "bob";
  message.sequence = sequence;
  message.sequence_floor = floor;
  message.sequence_epoch = epoch;
  return message;
}

ChatMessage Sealed(absl::Time sent_at) {
  ChatMessage message;
  message.id = "m";
  message.from = "bob";
  message.sent_at = sent_at;
  return message;
}

TEST(ConversationTest, OneWithAPeerIsItsNameWhateverTheCase) {
  EXPECT_EQ(ConversationWith("Bob"), ConversationWith("bob"));
  EXPECT_NE(ConversationWith("bob"), ConversationWith("carol"));
  ChatMessage message;
  message.from = "Bob";
  message.to = "alice";
  // Theirs belongs to the sender's, ours to the recipient's.
  EXPECT_EQ(ConversationOfReceived(message), ConversationWith("bob"));
  EXPECT_EQ(ConversationOfSent(message), ConversationWith("alice"));
}

TEST(ConversationTest, AGroupMessageBelongsToItsGroupsBothWays) {
  ChatMessage message;
  message.from = "Bob";
  message.to = "alice";
  message.group_id = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(GroupConversation(message.group_id),
            "#0123456789abcdef0123456789abcdef");
  // Whoever sent it and whichever member's copy it is.
  EXPECT_EQ(ConversationOfReceived(message),
            GroupConversation(message.group_id));
  EXPECT_EQ(ConversationOfSent(message), GroupConversation(message.group_id));
  message.to = "carol";
  EXPECT_EQ(ConversationOfSent(message), GroupConversation(message.group_id));
}

TEST(ConversationTest, AGroupsNeverMeetsAPeersForNoNameStartsWithHash) {
  EXPECT_FALSE(registry::ValidateName("#team").ok());
  EXPECT_NE(GroupConversation("bob"), ConversationWith("bob"));
}

TEST(ConversationTest, ANamedConversationIsAGroupsOnlyWithItsHash) {
  EXPECT_EQ(ConversationNamed("Bob"), ConversationWith("bob"));
  EXPECT_EQ(ConversationNamed("#0123abcd"), GroupConversation("0123abcd"));
  EXPECT_EQ(ConversationNamed(""), ConversationWith(""));
}

TEST(NextOutboundTest, AFirstMessageStartsAFreshEpochAtOne) {
  const Numbered numbered = NextOutbound(std::nullopt, "fresh");
  EXPECT_EQ(numbered.epoch, "fresh");
  EXPECT_EQ(numbered.sequence, 1);
}

TEST(NextOutboundTest, LaterMessagesFollowTheCounter) {
  const Numbered numbered = NextOutbound(OutboundCounter{"e1", 7}, "fresh");
  EXPECT_EQ(numbered.epoch, "e1");
  EXPECT_EQ(numbered.sequence, 7);
}

TEST(SequenceFloorTest, IsTheLowestOutstandingNeverAboveTheMessage) {
  EXPECT_EQ(SequenceFloor({}, 5), 5);
  EXPECT_EQ(SequenceFloor({3, 4}, 5), 3);
  // A message numbered below what is outstanding (resent) keeps its own.
  EXPECT_EQ(SequenceFloor({8}, 5), 5);
}

TEST(AdmitTest, UnsequencedMessagesTakeNoPartInOrder) {
  EXPECT_FALSE(IsSequenced(ChatMessage()));
  EXPECT_TRUE(IsSequenced(Sequenced(1, 1)));
}

TEST(AdmitTest, TheFirstMessageOfANewSenderStartsAtItsFloor) {
  const Admission admission = Admit(Sequenced(1, 1), std::nullopt);
  EXPECT_FALSE(admission.hold);
  EXPECT_FALSE(admission.abandoned_epoch.has_value());
  EXPECT_EQ(admission.release_below, 0);
  EXPECT_EQ(admission.next, 2);
}

TEST(AdmitTest, ANewSenderMidConversationWaitsOnlyFromItsFloor) {
  // We lost our counter (a new file) while bob's messages 1..2 were acked.
  const Admission admission = Admit(Sequenced(3, 3), std::nullopt);
  EXPECT_FALSE(admission.hold);
  EXPECT_EQ(admission.next, 4);
}

TEST(AdmitTest, TheAwaitedMessageIsReleasedAndTheCounterMoves) {
  const Admission admission = Admit(Sequenced(4, 2), InboundCounter{"e1", 4});
  EXPECT_FALSE(admission.hold);
  EXPECT_EQ(admission.release_below, 0);
  EXPECT_EQ(admission.next, 5);
}

TEST(AdmitTest, AMessageAfterAGapIsHeld) {
  const Admission admission = Admit(Sequenced(6, 4), InboundCounter{"e1", 4});
  EXPECT_TRUE(admission.hold);
  EXPECT_EQ(admission.next, 4);
}

TEST(AdmitTest, ALateMessageIsReleasedWithoutMovingTheCounter) {
  // Its gap was given up on: shown out of order rather than never.
  const Admission admission = Admit(Sequenced(2, 1), InboundCounter{"e1", 5});
  EXPECT_FALSE(admission.hold);
  EXPECT_EQ(admission.next, 5);
}

TEST(AdmitTest, AFloorAboveTheAwaitedReleasesWhatIsHeldBelowIt) {
  // The sender holds acknowledgements below 6: 4 and 5 will not come.
  const Admission admission = Admit(Sequenced(7, 6), InboundCounter{"e1", 4});
  EXPECT_EQ(admission.release_below, 6);
  EXPECT_TRUE(admission.hold);  // 6 itself has not come.
  EXPECT_EQ(admission.next, 6);

  const Admission at_floor = Admit(Sequenced(6, 6), InboundCounter{"e1", 4});
  EXPECT_EQ(at_floor.release_below, 6);
  EXPECT_FALSE(at_floor.hold);
  EXPECT_EQ(at_floor.next, 7);
}

TEST(AdmitTest, ANewEpochAbandonsWhatTheOldOneHeld) {
  const Admission admission =
      Admit(Sequenced(1, 1, "e2"), InboundCounter{"e1", 9});
  ASSERT_TRUE(admission.abandoned_epoch.has_value());
  EXPECT_EQ(*admission.abandoned_epoch, "e1");
  EXPECT_FALSE(admission.hold);
  EXPECT_EQ(admission.next, 2);
}

TEST(AdmitTest, ANewEpochMidwayWaitsFromItsFloor) {
  const Admission admission =
      Admit(Sequenced(5, 3, "e2"), InboundCounter{"e1", 9});
  EXPECT_TRUE(admission.abandoned_epoch.has_value());
  EXPECT_EQ(admission.release_below, 0);
  EXPECT_TRUE(admission.hold);
  EXPECT_EQ(admission.next, 3);
}

TEST(AdmitTest, OnlyAbandonedEpochsAndRisingFloorsReleaseOthersFirst) {
  EXPECT_FALSE(ReleasesOthersFirst(Admit(Sequenced(1, 1), std::nullopt)));
  EXPECT_FALSE(ReleasesOthersFirst(
      Admit(Sequenced(5, 1), InboundCounter{"e1", 2})));  // Held.
  EXPECT_TRUE(ReleasesOthersFirst(
      Admit(Sequenced(5, 4), InboundCounter{"e1", 2})));  // Floor rose.
  EXPECT_TRUE(ReleasesOthersFirst(
      Admit(Sequenced(1, 1, "e2"), InboundCounter{"e1", 2})));  // New epoch.
}

TEST(ReleaseInOrderTest, ReleasesUpToTheFirstGap) {
  const std::set<int64_t> held = {3, 4, 6};
  std::vector<int64_t> released;
  const int64_t next = ReleaseInOrder(3, [&](int64_t sequence) {
    if (held.count(sequence) == 0) return false;
    released.push_back(sequence);
    return true;
  });
  EXPECT_EQ(released, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(next, 5);
}

TEST(ReleaseInOrderTest, NothingHeldAwaitsTheSame) {
  EXPECT_EQ(ReleaseInOrder(8, [](int64_t) { return false; }), 8);
}

TEST(OverdueTest, TheCutoffIsTheLimitBeforeNow) {
  const absl::Time now = absl::FromUnixMillis(100000);
  EXPECT_EQ(OverdueBeforeMs(now, absl::Seconds(30)), 70000);
}

TEST(ReplayTest, OnlyATrustedSendingTimeCounts) {
  const absl::Time sent = absl::FromUnixMillis(5000);
  EXPECT_EQ(TrustedSentMs(Sealed(sent)), 5000);
  ChatMessage unverified = Sealed(sent);
  unverified.unverified = true;
  EXPECT_EQ(TrustedSentMs(unverified), std::nullopt);
  EXPECT_EQ(TrustedSentMs(Sealed(absl::InfinitePast())), std::nullopt);
}

TEST(ReplayTest, SentNoLaterThanAWatermarkIsAReplay) {
  const ChatMessage message = Sealed(absl::FromUnixMillis(5000));
  EXPECT_FALSE(IsReplay(message, Watermarks{}));
  EXPECT_TRUE(IsReplay(message, Watermarks{5000, std::nullopt}));
  EXPECT_TRUE(IsReplay(message, Watermarks{std::nullopt, 6000}));
  EXPECT_FALSE(IsReplay(message, Watermarks{4999, 4999}));
}

TEST(ReplayTest, WhatAnyoneCouldHaveWrittenIsNeverAReplay) {
  ChatMessage unverified = Sealed(absl::FromUnixMillis(5000));
  unverified.unverified = true;
  EXPECT_FALSE(IsReplay(unverified, Watermarks{9000, 9000}));
  EXPECT_FALSE(IsReplay(Sealed(absl::InfinitePast()), Watermarks{9000, 9000}));
}

TEST(DuplicateTest, KnownFromTheSameSenderOrAReplay) {
  const ChatMessage message = Sealed(absl::FromUnixMillis(5000));
  EXPECT_TRUE(IsDuplicate(true, message, Watermarks{}));
  EXPECT_TRUE(IsDuplicate(false, message, Watermarks{5000, std::nullopt}));
  EXPECT_FALSE(IsDuplicate(false, message, Watermarks{}));
}

TEST(ShownThroughTest, RisesToJustBelowTheLowestUnshown) {
  // 1-6 released; 4 and 6 not shown yet.
  EXPECT_EQ(ShownThrough(0, {4, 6}, 6), 3);
  // Every release shown: up to the highest.
  EXPECT_EQ(ShownThrough(3, {}, 6), 6);
}

TEST(ShownThroughTest, NeverGoesBack) {
  // Whatever is still unshown below it (a message shown out of order
  // before it was marked alone), the mark does not fall.
  EXPECT_EQ(ShownThrough(5, {1}, 9), 5);
  EXPECT_EQ(ShownThrough(5, {}, 4), 5);
}

TEST(ShownThroughTest, AGapLeftByARolledBackReleaseIsSteppedOver) {
  // Number 3 was given to a write that was rolled back: never released,
  // never unshown, so it does not hold the mark.
  EXPECT_EQ(ShownThrough(2, {}, 5), 5);
  EXPECT_EQ(ShownThrough(2, {5}, 5), 4);
}

TEST(UnreadOnArrivalTest, OnlyAuthenticatedMessagesExpectAReadNote) {
  ChatMessage sealed = Sealed(absl::FromUnixMillis(1));
  EXPECT_TRUE(UnreadOnArrival(sealed));
  ChatMessage plain = sealed;
  plain.unverified = true;
  EXPECT_FALSE(UnreadOnArrival(plain));
}

TEST(WatermarksToFoldTest, OnlyThoseBeyondTheBound) {
  EXPECT_EQ(WatermarksToFold(10, 10), 0);
  EXPECT_EQ(WatermarksToFold(3, 10), 0);
  EXPECT_EQ(WatermarksToFold(12, 10), 2);
}

}  // namespace
}  // namespace chat::peer
