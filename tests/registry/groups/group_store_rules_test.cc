// The GroupStore's rules without storage: what each Put does to the counts
// the limits read, and how long a page is.

#include "registry/groups/group_store_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::Optional;

StoredGroupState Next(int64_t version, const std::string& owner,
                      bool ended = false) {
  StoredGroupState state;
  state.group_id = "ab";
  state.version = version;
  state.owner_key = owner;
  state.ended = ended;
  return state;
}

TEST(DecideGroupPutTest, ACreationCountsAGroupAndChargesItsOwner) {
  auto plan = DecideGroupPut(std::nullopt, Next(1, "alice"), {}, {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_TRUE(plan->accept);
  EXPECT_TRUE(plan->new_group);
  EXPECT_THAT(plan->owner_charged, Optional(std::string("alice")));
  EXPECT_EQ(plan->owner_released, std::nullopt);
}

TEST(DecideGroupPutTest, AChangeBySameOwnerMovesNoCount) {
  auto plan =
      DecideGroupPut(GroupHead{3, "alice", false}, Next(4, "alice"), {}, {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_TRUE(plan->accept);
  EXPECT_FALSE(plan->new_group);
  EXPECT_EQ(plan->owner_charged, std::nullopt);
  EXPECT_EQ(plan->owner_released, std::nullopt);
}

TEST(DecideGroupPutTest, AHandOverMovesTheGroupToTheNewOwner) {
  auto plan =
      DecideGroupPut(GroupHead{3, "alice", false}, Next(4, "bob"), {}, {});
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(plan->owner_released, Optional(std::string("alice")));
  EXPECT_THAT(plan->owner_charged, Optional(std::string("bob")));
}

TEST(DecideGroupPutTest, AnEndReleasesTheOwnerAndChargesNobody) {
  for (const char* owner : {"alice", "bob"}) {
    auto plan = DecideGroupPut(GroupHead{3, "alice", false},
                               Next(4, owner, /*ended=*/true), {}, {});
    ASSERT_THAT(plan, IsOk());
    EXPECT_THAT(plan->owner_released, Optional(std::string("alice")));
    EXPECT_EQ(plan->owner_charged, std::nullopt);
  }
}

TEST(DecideGroupPutTest,
     AStaleOrSkippingVersionIsNotAcceptedWhateverTheLimits) {
  GroupStoreLimits limits;
  limits.max_versions_per_group = 3;
  for (int64_t version : {1, 3, 5}) {
    auto plan = DecideGroupPut(GroupHead{3, "alice", true},
                               Next(version, "alice"), {}, limits);
    ASSERT_THAT(plan, IsOk());
    EXPECT_FALSE(plan->accept);
  }
}

TEST(DecideGroupPutTest, OnlyAChargedOwnerIsHeldToItsLimit) {
  GroupStoreLimits limits;
  limits.max_groups_per_owner = 2;
  GroupCounts full;
  full.next_owner_groups = 2;
  EXPECT_THAT(DecideGroupPut(GroupHead{1, "alice", false}, Next(2, "alice"),
                             full, limits),
              IsOk());
  EXPECT_THAT(DecideGroupPut(GroupHead{1, "bob", false}, Next(2, "alice"), full,
                             limits),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(DecideGroupPut(GroupHead{1, "bob", false},
                             Next(2, "alice", /*ended=*/true), full, limits),
              IsOk());
}

TEST(GroupPageSizeTest, APageFitsItsBytes) {
  GroupStoreLimits limits;
  limits.max_state_bytes = 32 * 1024;
  EXPECT_THAT(GroupPageSize(10, limits), IsOk());
  EXPECT_EQ(*GroupPageSize(10, limits), 10);
  EXPECT_EQ(*GroupPageSize(1000, limits), 64);
  limits.max_state_bytes = kMaxGroupStateBytesCap;
  EXPECT_EQ(*GroupPageSize(1000, limits), 2);
  EXPECT_THAT(GroupPageSize(0, limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::registry
