// Groups between real peers through a real registry on loopback: made,
// written to, changed, and refused where the rules say.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/peer/peer_fixture.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

auto GroupMessage(const std::string& from, const std::string& text) {
  return [from, text](const PeerEvent& event) {
    return event.kind == EventKind::kMessage && event.message.from == from &&
           event.message.text == text && !event.message.group_id.empty();
  };
}

auto InfoContaining(const std::string& part) {
  return [part](const PeerEvent& event) {
    return event.kind == EventKind::kInfo &&
           event.text.find(part) != std::string::npos;
  };
}

// The texts of the group messages `sink` was shown, in order.
std::vector<std::string> GroupTexts(RecordingSink& sink) {
  std::vector<std::string> texts;
  for (const PeerEvent& event : sink.Events()) {
    if (event.kind == EventKind::kMessage && !event.message.group_id.empty()) {
      texts.push_back(event.message.text);
    }
  }
  return texts;
}

class PeerGroupTest : public PeerTest {
 protected:
  void SetUp() override {
    PeerTest::SetUp();
    for (const char* name : {"alice", "bob", "carol"}) {
      ASSERT_THAT(StartPeer(name), IsOk());
    }
    auto made = peer("alice").ChangeGroup("create", "team", {"bob", "carol"});
    ASSERT_THAT(made, IsOk());
    EXPECT_THAT(*made, HasSubstr("you are in #team now"));
    for (const char* name : {"bob", "carol"}) {
      ASSERT_TRUE(sink(name)
                      .WaitFor(InfoContaining("you are in #team now"))
                      .has_value())
          << name;
    }
  }
};

TEST_F(PeerGroupTest, EveryMemberGetsEveryMessageOnceInOrder) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_THAT(peer("alice").Send("#team", absl::StrCat("m", i)), IsOk());
  }
  ASSERT_THAT(peer("bob").Send("#team", "from bob"), IsOk());
  std::vector<std::string> expected;
  for (int i = 0; i < 30; ++i) expected.push_back(absl::StrCat("m", i));
  for (const char* name : {"bob", "carol"}) {
    ASSERT_TRUE(sink(name).WaitFor(GroupMessage("alice", "m29")).has_value());
    std::vector<std::string> from_alice;
    for (const PeerEvent& event : sink(name).Events()) {
      if (event.kind == EventKind::kMessage && event.message.from == "alice") {
        EXPECT_EQ(event.group, "team");
        from_alice.push_back(event.message.text);
      }
    }
    EXPECT_THAT(from_alice, ElementsAreArray(expected)) << name;
  }
  for (const char* name : {"alice", "carol"}) {
    EXPECT_TRUE(
        sink(name).WaitFor(GroupMessage("bob", "from bob")).has_value());
  }
}

TEST_F(PeerGroupTest, AnOfflineMemberGetsWhatItMissedFromItsMailbox) {
  StopPeer("carol");
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(peer("alice").Send("#team", absl::StrCat("while away ", i)),
                IsOk());
  }
  ASSERT_TRUE(
      sink("bob").WaitFor(GroupMessage("alice", "while away 9")).has_value());
  ASSERT_THAT(StartPeer("carol"), IsOk());
  ASSERT_TRUE(
      sink("carol").WaitFor(GroupMessage("alice", "while away 9")).has_value());
  std::vector<std::string> texts = GroupTexts(sink("carol"));
  std::vector<std::string> away(texts.end() - 10, texts.end());
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(away[i], absl::StrCat("while away ", i));
}

TEST_F(PeerGroupTest, ARemovedMemberGetsNothingMoreAndCannotWrite) {
  auto removed = peer("alice").ChangeGroup("remove", "team", {"carol"});
  ASSERT_THAT(removed, IsOk());
  EXPECT_THAT(*removed, HasSubstr("carol was removed"));
  ASSERT_TRUE(
      sink("carol").WaitFor(InfoContaining("you were removed")).has_value());
  ASSERT_TRUE(
      sink("bob").WaitFor(InfoContaining("carol was removed")).has_value());
  ASSERT_THAT(peer("alice").Send("#team", "without carol"), IsOk());
  ASSERT_TRUE(
      sink("bob").WaitFor(GroupMessage("alice", "without carol")).has_value());
  EXPECT_FALSE(sink("carol")
                   .WaitFor(GroupMessage("alice", "without carol"),
                            std::chrono::milliseconds(500))
                   .has_value());
  EXPECT_THAT(peer("carol").Send("#team", "still here"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not in #team")));
}

TEST_F(PeerGroupTest, OnlyTheOwnerChangesTheGroup) {
  EXPECT_THAT(
      peer("bob").ChangeGroup("add", "team", {"alice"}),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("alice")));
  ASSERT_THAT(peer("alice").ChangeGroup("owner", "team", {"bob"}), IsOk());
  ASSERT_TRUE(
      sink("bob").WaitFor(InfoContaining("you are the owner now")).has_value());
  ASSERT_THAT(StartPeer("dave"), IsOk());
  ASSERT_THAT(peer("bob").ChangeGroup("add", "team", {"dave"}), IsOk());
  ASSERT_TRUE(
      sink("dave").WaitFor(InfoContaining("you are in #team now")).has_value());
  ASSERT_THAT(peer("dave").Send("#team", "hi, I am new"), IsOk());
  for (const char* name : {"alice", "bob", "carol"}) {
    EXPECT_TRUE(
        sink(name).WaitFor(GroupMessage("dave", "hi, I am new")).has_value())
        << name;
  }
}

TEST_F(PeerGroupTest, AMemberLeavesByAskingTheOwner) {
  auto asked = peer("bob").ChangeGroup("leave", "team", {});
  ASSERT_THAT(asked, IsOk());
  EXPECT_THAT(*asked, HasSubstr("asked alice"));
  // alice's peer grants it on its own, and everyone hears it.
  ASSERT_TRUE(sink("alice")
                  .WaitFor(InfoContaining("bob asked to leave, and is out"))
                  .has_value());
  ASSERT_TRUE(
      sink("bob").WaitFor(InfoContaining("you were removed")).has_value());
  ASSERT_TRUE(
      sink("carol").WaitFor(InfoContaining("bob was removed")).has_value());
  EXPECT_THAT(peer("bob").Send("#team", "back?"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The owner leaves last: refused while others are in it.
  EXPECT_THAT(peer("alice").ChangeGroup("leave", "team", {}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("/group owner team")));
}

TEST_F(PeerGroupTest, GroupsListMembersAndHistoryKeepsTheConversation) {
  ASSERT_THAT(peer("alice").Send("#team", "for the record"), IsOk());
  ASSERT_TRUE(
      sink("bob").WaitFor(GroupMessage("alice", "for the record")).has_value());
  std::vector<GroupView> groups = peer("bob").Groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].label, "team");
  EXPECT_TRUE(groups[0].member);
  ASSERT_EQ(groups[0].members.size(), 3u);
  EXPECT_EQ(peer("bob").GroupLabelsForCompletion(),
            std::vector<std::string>{"team"});
  // Theirs join the history once noted as shown, which is not waited for.
  absl::StatusOr<HistoryPage> page;
  for (int tries = 0; tries < 200; ++tries) {
    page = peer("bob").History("#team", 10);
    ASSERT_THAT(page, IsOk());
    if (!page->entries.empty()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_FALSE(page->entries.empty());
  // The change notice that made the group is no line of it.
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries.back().message.text, "for the record");
  EXPECT_FALSE(page->entries.back().message.group_id.empty());
  auto ours = peer("alice").History("#team", 10);
  ASSERT_THAT(ours, IsOk());
  ASSERT_EQ(ours->entries.size(), 1u);
  EXPECT_EQ(ours->entries[0].copies, 2);
  // Nothing of the group in the direct conversation with alice.
  auto direct = peer("bob").History("alice", 10);
  ASSERT_THAT(direct, IsOk());
  EXPECT_TRUE(direct->entries.empty());
  EXPECT_THAT(peer("bob").History("#nosuch", 10),
              StatusIs(absl::StatusCode::kNotFound));
}

// A member reads a group's messages by being active in the group, not in
// its direct conversation with the sender; the sender hears from each
// member, and its history names who read it.
TEST_F(PeerGroupTest, EachMemberWhoReadsIsNamedInTheSendersHistory) {
  auto id = peer("alice").Send("#team", "read me");
  ASSERT_THAT(id, IsOk());
  auto state_of = [&](SendStatus status, const std::string& member) {
    return [&, status, member](const PeerEvent& event) {
      return event.kind == EventKind::kSendResult && event.status == status &&
             event.message.id == *id && event.message.to == member;
    };
  };
  // Delivered: each member's peer showed it before it answered.
  for (const char* member : {"bob", "carol"}) {
    ASSERT_TRUE(sink("alice")
                    .WaitFor(state_of(SendStatus::kDelivered, member))
                    .has_value())
        << member;
  }
  // Active with alice directly: her group message is not read by that.
  peer("bob").MarkRead("alice");
  peer("bob").MarkRead("#team");
  peer("carol").MarkRead("#team");
  for (const char* member : {"bob", "carol"}) {
    std::optional<PeerEvent> read =
        sink("alice").WaitFor(state_of(SendStatus::kRead, member));
    ASSERT_TRUE(read.has_value()) << member;
    EXPECT_EQ(read->group, "team");
    EXPECT_FALSE(read->message.group_id.empty());
  }
  EXPECT_EQ(peer("alice").read_tracker().dropped(), 0);
  // The history's write is not waited for: ask until it has both.
  absl::StatusOr<HistoryPage> page;
  EXPECT_TRUE(chat::testing::WaitFor([&] {
    page = peer("alice").History("#team", 10);
    return page.ok() && page->entries.size() == 1 &&
           page->entries[0].read_by.size() == 2;
  }));
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_THAT(page->entries[0].read_by, ElementsAre("bob", "carol"));
  EXPECT_EQ(page->entries[0].status, SendStatus::kRead);
}

TEST_F(PeerGroupTest, ASendToAGroupNobodyKnowsIsRefused) {
  EXPECT_THAT(peer("alice").Send("#nosuch", "hello"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(peer("alice").Send("#team", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::peer
