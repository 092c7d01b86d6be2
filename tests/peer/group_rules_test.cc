#include "peer/group_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using registry::GroupLimits;
using registry::GroupMember;
using registry::GroupState;
using registry::GroupStateHash;
using registry::SignGroupState;

constexpr char kGroupId[] = "0123456789abcdef0123456789abcdef";

// Real keys and signatures: the rules check what libsodium checks.
class GroupRulesTest : public ::testing::Test {
 protected:
  GroupRulesTest() {
    GroupState genesis;
    genesis.group_id = kGroupId;
    genesis.version = 1;
    genesis.display_name = "Book club";
    genesis.owner = "Alice";
    genesis.members = {Member("Alice", alice_), Member("bob", bob_)};
    genesis.signed_at_unix_ms = 1'700'000'000'000;
    chain_.push_back(Signed(genesis, alice_));
    // 2: carol joins; 3: bob leaves; 4: renamed.
    Extend(
        [&](GroupState& s) { s.members.push_back(Member("carol", carol_)); });
    Extend([&](GroupState& s) { s.members.erase(s.members.begin() + 1); });
    Extend([&](GroupState& s) { s.display_name = "Readers"; });
  }

  static GroupMember Member(const std::string& name, const Identity& id) {
    return GroupMember{name, id.public_key()};
  }

  static GroupState Signed(GroupState state, const Identity& signer) {
    absl::StatusOr<GroupState> signed_state =
        SignGroupState(std::move(state), signer);
    EXPECT_THAT(signed_state, IsOk());
    return signed_state.ok() ? *std::move(signed_state) : GroupState();
  }

  // The next version of `current`, changed by `change`, signed by `signer`.
  static GroupState Next(const GroupState& current,
                         const std::function<void(GroupState&)>& change,
                         const Identity& signer) {
    GroupState next = current;
    next.version = current.version + 1;
    next.previous_hash = GroupStateHash(current);
    next.signed_at_unix_ms = current.signed_at_unix_ms + 1000;
    change(next);
    return Signed(std::move(next), signer);
  }

  void Extend(const std::function<void(GroupState&)>& change) {
    chain_.push_back(Next(chain_.back(), change, alice_));
  }

  // chain_[version - 1] for each version.
  std::vector<GroupState> Versions(std::initializer_list<int> versions) const {
    std::vector<GroupState> states;
    for (int v : versions) states.push_back(chain_[v - 1]);
    return states;
  }

  GroupAdvance Advance(const std::optional<GroupState>& known,
                       const std::vector<GroupState>& received) const {
    absl::StatusOr<GroupAdvance> advance =
        AdvanceGroup(known, received, limits_);
    EXPECT_THAT(advance, IsOk());
    return advance.ok() ? *std::move(advance) : GroupAdvance();
  }

  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity carol_ = Identity::Generate();
  const GroupLimits limits_{};
  std::vector<GroupState> chain_;  // Versions 1..4, by alice.
};

// The versions of `states`, in their order.
std::vector<int64_t> VersionsOf(const std::vector<GroupState>& states) {
  std::vector<int64_t> versions;
  for (const GroupState& state : states) versions.push_back(state.version);
  return versions;
}

TEST_F(GroupRulesTest, AChainInOrderIsFollowedToItsEnd) {
  GroupAdvance advance = Advance(std::nullopt, Versions({1, 2, 3, 4}));
  ASSERT_TRUE(advance.latest.has_value());
  EXPECT_EQ(*advance.latest, chain_[3]);
  EXPECT_EQ(advance.verified, chain_);
  EXPECT_TRUE(advance.first_known);
  EXPECT_EQ(advance.group_id, kGroupId);
  // From nothing: everyone now listed is new, and the name.
  ASSERT_EQ(advance.change.added.size(), 2u);
  EXPECT_EQ(advance.change.added[0].name, "Alice");
  EXPECT_EQ(advance.change.added[1].name, "carol");
  EXPECT_EQ(advance.change.new_display_name, "Readers");
  EXPECT_FALSE(advance.fetch_after.has_value());
  EXPECT_THAT(advance.forks, IsEmpty());
  EXPECT_THAT(advance.rejected, IsEmpty());
}

TEST_F(GroupRulesTest, OrderAndCopiesDoNotMatter) {
  GroupAdvance advance = Advance(chain_[0], Versions({4, 2, 3, 2, 4, 3, 1, 1}));
  ASSERT_TRUE(advance.latest.has_value());
  EXPECT_EQ(advance.latest->version, 4);
  // Each newly verified once, in version order; not the one held.
  EXPECT_THAT(VersionsOf(advance.verified), ElementsAre(2, 3, 4));
  EXPECT_EQ(advance.verified.back(), *advance.latest);
  EXPECT_FALSE(advance.first_known);
  // From version 1: carol came, bob went, renamed.
  ASSERT_EQ(advance.change.added.size(), 1u);
  EXPECT_EQ(advance.change.added[0].name, "carol");
  ASSERT_EQ(advance.change.removed.size(), 1u);
  EXPECT_EQ(advance.change.removed[0].name, "bob");
  EXPECT_EQ(advance.older_ignored, 0);  // Version 1 is the one held.
  EXPECT_THAT(advance.forks, IsEmpty());
}

TEST_F(GroupRulesTest, WhatWeHoldAgainChangesNothing) {
  GroupAdvance advance = Advance(chain_[3], Versions({4, 4, 2}));
  EXPECT_FALSE(advance.latest.has_value());
  EXPECT_THAT(advance.verified, IsEmpty());
  EXPECT_TRUE(advance.change.empty());
  EXPECT_FALSE(advance.fetch_after.has_value());
  EXPECT_THAT(advance.forks, IsEmpty());
  EXPECT_EQ(advance.older_ignored, 1);
}

TEST_F(GroupRulesTest, AGapAsksForWhatIsMissingAndGoesAsFarAsItCan) {
  GroupAdvance advance = Advance(chain_[0], Versions({2, 4}));
  ASSERT_TRUE(advance.latest.has_value());
  EXPECT_EQ(advance.latest->version, 2);
  EXPECT_THAT(VersionsOf(advance.verified), ElementsAre(2));
  EXPECT_EQ(advance.fetch_after, 2);
  // Filled in, it goes on.
  advance = Advance(*advance.latest, Versions({3, 4}));
  ASSERT_TRUE(advance.latest.has_value());
  EXPECT_EQ(advance.latest->version, 4);
  EXPECT_THAT(VersionsOf(advance.verified), ElementsAre(3, 4));
  EXPECT_FALSE(advance.fetch_after.has_value());
}

TEST_F(GroupRulesTest, AGroupFirstMetLaterOnIsFetchedFromItsStart) {
  GroupAdvance advance = Advance(std::nullopt, Versions({3, 4}));
  EXPECT_FALSE(advance.latest.has_value());
  EXPECT_FALSE(advance.first_known);
  EXPECT_EQ(advance.fetch_after, 0);
}

TEST_F(GroupRulesTest, AForgedStateIsRefusedWithItsReason) {
  // Bob, not the owner, signs version 5.
  GroupState forged = Next(
      chain_[3],
      [&](GroupState& s) { s.members.push_back(Member("mallory", bob_)); },
      bob_);
  GroupAdvance advance = Advance(chain_[3], {forged});
  EXPECT_FALSE(advance.latest.has_value());
  ASSERT_EQ(advance.rejected.size(), 1u);
  EXPECT_EQ(advance.rejected[0].version, 5);
  EXPECT_THAT(advance.rejected[0].why,
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Refused where it stood, it is not asked for again.
  EXPECT_FALSE(advance.fetch_after.has_value());
  // A genesis signed by someone other than its owner.
  GroupState genesis = chain_[0];
  genesis = Signed(genesis, bob_);
  advance = Advance(std::nullopt, {genesis});
  EXPECT_FALSE(advance.latest.has_value());
  ASSERT_EQ(advance.rejected.size(), 1u);
  EXPECT_EQ(advance.rejected[0].version, 1);
}

TEST_F(GroupRulesTest, AnotherStateAtAVersionHeldIsAForkAndChangesNothing) {
  GroupState other = Next(
      chain_[2], [&](GroupState& s) { s.display_name = "Other"; }, alice_);
  ASSERT_EQ(other.version, 4);
  GroupState beyond = Next(
      other, [](GroupState&) {}, alice_);
  GroupAdvance advance = Advance(chain_[3], {other, beyond});
  EXPECT_FALSE(advance.latest.has_value());
  ASSERT_EQ(advance.forks.size(), 1u);
  EXPECT_EQ(advance.forks[0].version, 4);
  EXPECT_EQ(advance.forks[0].held_hash, GroupStateHash(chain_[3]));
  EXPECT_EQ(advance.forks[0].other_hash, GroupStateHash(other));
  EXPECT_FALSE(advance.fetch_after.has_value());
}

TEST_F(GroupRulesTest, TwoValidNextVersionsAreAForkAndNeitherIsTaken) {
  GroupState other = Next(
      chain_[2], [&](GroupState& s) { s.display_name = "Other"; }, alice_);
  GroupAdvance advance = Advance(chain_[1], {chain_[2], other, chain_[3]});
  // Version 3 is taken; at 4 the owner signed two.
  ASSERT_TRUE(advance.latest.has_value());
  EXPECT_EQ(advance.latest->version, 3);
  EXPECT_THAT(VersionsOf(advance.verified), ElementsAre(3));
  ASSERT_EQ(advance.forks.size(), 1u);
  EXPECT_EQ(advance.forks[0].version, 4);
}

TEST_F(GroupRulesTest, ARemovedMemberIsNoLongerAMember) {
  EXPECT_TRUE(IsGroupMember(chain_[1], "BOB", bob_.public_key()));
  EXPECT_FALSE(IsGroupMember(chain_[2], "bob", bob_.public_key()));
  // Listed under another key is not a member either.
  EXPECT_FALSE(IsGroupMember(chain_[2], "carol", bob_.public_key()));
  EXPECT_TRUE(IsGroupMember(chain_[2], "carol", carol_.public_key()));
}

TEST_F(GroupRulesTest, NothingFollowsAnEndedGroupAndNobodyIsAMember) {
  GroupState ended = Next(
      chain_[3], [](GroupState& s) { s.ended = true; }, alice_);
  GroupState after = Next(
      ended, [](GroupState& s) { s.ended = false; }, alice_);
  GroupAdvance advance = Advance(chain_[3], {after, ended});
  ASSERT_TRUE(advance.latest.has_value());
  EXPECT_EQ(advance.latest->version, 5);
  EXPECT_TRUE(advance.change.ended);
  EXPECT_FALSE(advance.fetch_after.has_value());
  EXPECT_FALSE(IsGroupMember(ended, "carol", carol_.public_key()));
  advance = Advance(ended, {after});
  EXPECT_FALSE(advance.latest.has_value());
  ASSERT_EQ(advance.rejected.size(), 1u);
  EXPECT_THAT(advance.rejected[0].why,
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(GroupRulesTest, TooManyMembersIsRefused) {
  GroupLimits two{2};
  absl::StatusOr<GroupAdvance> advance =
      AdvanceGroup(std::nullopt, Versions({1, 2}), two);
  ASSERT_THAT(advance, IsOk());
  ASSERT_TRUE(advance->latest.has_value());
  EXPECT_EQ(advance->latest->version, 1);
  ASSERT_EQ(advance->rejected.size(), 1u);
  EXPECT_THAT(advance->rejected[0].why,
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(GroupRulesTest, ChainsOfTwoGroupsOrNoneAreRefused) {
  GroupState other = chain_[0];
  other.group_id = "ffffffffffffffffffffffffffffffff";
  EXPECT_THAT(AdvanceGroup(std::nullopt, {chain_[0], other}, limits_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AdvanceGroup(chain_[0], {other}, limits_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AdvanceGroup(chain_[0], {}, limits_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GroupLimitTest, TheLastGroupFitsAndTheNextDoesNot) {
  EXPECT_THAT(RoomForAnotherGroup(255, 256), IsOk());
  EXPECT_THAT(RoomForAnotherGroup(256, 256),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("256")));
}

TEST(GroupLabelsTest, UniqueNamesStayPlainAndSharedOnesGetAnIdPrefix) {
  EXPECT_THAT(GroupLabels({{"aaaa1111", "Book club"},
                           {"bbbb2222", "Book club"},
                           {"cccc3333", "Chess"}}),
              UnorderedElementsAre(Pair("aaaa1111", "Book club~aaaa"),
                                   Pair("bbbb2222", "Book club~bbbb"),
                                   Pair("cccc3333", "Chess")));
}

TEST(GroupLabelsTest, ThePrefixGrowsUntilItTellsThemApart) {
  EXPECT_THAT(GroupLabels({{"abcd1111", "x"}, {"abcd1222", "x"}}),
              UnorderedElementsAre(Pair("abcd1111", "x~abcd11"),
                                   Pair("abcd1222", "x~abcd12")));
}

TEST(GroupLabelsTest, ANameThatLooksLikeALabelIsToldApartToo) {
  std::map<std::string, std::string> labels = GroupLabels(
      {{"abcd1111", "x"}, {"bbbb0000", "x"}, {"ffff0000", "x~abcd"}});
  EXPECT_EQ(labels.size(), 3u);
  std::set<std::string> distinct;
  for (const auto& [id, label] : labels) distinct.insert(label);
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(labels["bbbb0000"], "x~bbbb");
}

}  // namespace
}  // namespace chat::peer
