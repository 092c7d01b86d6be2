// The group book through the SQLite store: what it stores survives a
// reopen, files of the build before it migrate, and its limits hold. The
// rules themselves are judged in group_rules_test.cc.

#include "peer/group_book.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "peer/peer_store.h"
#include "tests/peer/peer_file_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using registry::GroupMember;
using registry::GroupState;
using registry::GroupStateHash;
using registry::NewGroupId;
using registry::SignGroupState;

class GroupBookTest : public ::testing::Test {
 protected:
  std::unique_ptr<PeerStore> Open(PeerStoreLimits limits = PeerStoreLimits()) {
    auto store = OpenPeerStore(dir_.File("alice.db"), clock_, true, limits);
    EXPECT_THAT(store.status(), IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  GroupMember Self() const { return GroupMember{"alice", alice_.public_key()}; }

  // Version 1 of a new group carol owns, with alice and bob in it.
  GroupState Genesis(const std::string& display_name) const {
    GroupState state;
    state.group_id = NewGroupId();
    state.version = 1;
    state.display_name = display_name;
    state.owner = "carol";
    state.members = {{"carol", carol_.public_key()},
                     {"Alice", alice_.public_key()},
                     {"bob", bob_.public_key()}};
    state.signed_at_unix_ms = 1'700'000'000'000;
    return Signed(std::move(state));
  }

  GroupState Next(const GroupState& current,
                  const std::function<void(GroupState&)>& change) const {
    GroupState next = current;
    next.version = current.version + 1;
    next.previous_hash = GroupStateHash(current);
    change(next);
    return Signed(std::move(next));
  }

  GroupState Signed(GroupState state) const {
    absl::StatusOr<GroupState> signed_state =
        SignGroupState(std::move(state), carol_);
    EXPECT_THAT(signed_state, IsOk());
    return signed_state.ok() ? *std::move(signed_state) : GroupState();
  }

  TempDir dir_;
  FakeClock clock_;
  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity carol_ = Identity::Generate();
};

TEST_F(GroupBookTest, WhatIsVerifiedIsKeptAcrossReopen) {
  GroupState v1 = Genesis("Book club");
  GroupState v2 = Next(v1, [](GroupState& s) { s.members.pop_back(); });
  auto store = Open();
  absl::StatusOr<GroupAdvance> advance =
      store->groups().Apply({v2, v1}, Self());
  ASSERT_THAT(advance, IsOk());
  EXPECT_TRUE(advance->first_known);
  ASSERT_TRUE(advance->latest.has_value());
  EXPECT_EQ(advance->latest->version, 2);
  store.reset();

  store = Open();
  std::optional<KnownGroup> latest = store->groups().Latest(v1.group_id);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->state, v2);
  EXPECT_TRUE(latest->member);
  EXPECT_TRUE(
      store->groups().IsMember(v1.group_id, "ALICE", alice_.public_key()));
  EXPECT_FALSE(store->groups().IsMember(v1.group_id, "bob", bob_.public_key()));
  EXPECT_FALSE(store->groups().IsMember("nope", "alice", alice_.public_key()));
  ASSERT_EQ(store->groups().List().size(), 1u);
  // It goes on from what it kept.
  GroupState v3 = Next(v2, [](GroupState& s) { s.display_name = "Readers"; });
  advance = store->groups().Apply({v3}, Self());
  ASSERT_THAT(advance, IsOk());
  EXPECT_EQ(advance->change.new_display_name, "Readers");
  EXPECT_EQ(store->groups().Latest(v1.group_id)->state.version, 3);
  EXPECT_THAT(store->groups().ByDisplayName("Book club"), IsEmpty());
  EXPECT_EQ(store->groups().ByDisplayName("Readers").size(), 1u);
}

TEST_F(GroupBookTest, AForkIsReportedAndWhatIsHeldStays) {
  GroupState v1 = Genesis("Book club");
  GroupState other = v1;  // Carol signs another version 1.
  other.display_name = "Other";
  other = Signed(other);
  auto store = Open();
  ASSERT_THAT(store->groups().Apply({v1}, Self()), IsOk());
  absl::StatusOr<GroupAdvance> advance = store->groups().Apply({other}, Self());
  ASSERT_THAT(advance, IsOk());
  EXPECT_EQ(advance->forks.size(), 1u);
  EXPECT_FALSE(advance->latest.has_value());
  EXPECT_EQ(store->groups().Latest(v1.group_id)->state, v1);
}

TEST_F(GroupBookTest, SharedDisplayNamesAreAllFound) {
  auto store = Open();
  GroupState a = Genesis("Book club");
  GroupState b = Genesis("Book club");
  ASSERT_THAT(store->groups().Apply({a}, Self()), IsOk());
  ASSERT_THAT(store->groups().Apply({b}, Self()), IsOk());
  EXPECT_EQ(store->groups().ByDisplayName("Book club").size(), 2u);
}

TEST_F(GroupBookTest, NoMoreGroupsThanTheLimitAndTheOnesKnownGoOn) {
  PeerStoreLimits limits;
  limits.max_groups = 2;
  auto store = Open(limits);
  GroupState a = Genesis("a");
  ASSERT_THAT(store->groups().Apply({a}, Self()), IsOk());
  ASSERT_THAT(store->groups().Apply({Genesis("b")}, Self()), IsOk());
  EXPECT_THAT(store->groups().Apply({Genesis("c")}, Self()),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("2")));
  EXPECT_EQ(store->groups().List().size(), 2u);
  // A group known still advances.
  GroupState a2 = Next(a, [](GroupState& s) { s.display_name = "A"; });
  ASSERT_THAT(store->groups().Apply({a2}, Self()), IsOk());
  EXPECT_EQ(store->groups().Latest(a.group_id)->state.version, 2);
  store.reset();
  store = Open(limits);
  EXPECT_EQ(store->groups().List().size(), 2u);
}

TEST_F(GroupBookTest, EveryStateVerifiedIsKeptAcrossReopen) {
  GroupState v1 = Genesis("Book club");
  GroupState v2 = Next(v1, [](GroupState& s) { s.members.pop_back(); });
  GroupState v3 = Next(v2, [](GroupState& s) { s.display_name = "Readers"; });
  auto store = Open();
  absl::StatusOr<GroupAdvance> advance =
      store->groups().Apply({v3, v1, v2}, Self());
  ASSERT_THAT(advance, IsOk());
  ASSERT_EQ(advance->verified.size(), 3u);
  for (int reopened = 0; reopened < 2; ++reopened) {
    SCOPED_TRACE(reopened);
    EXPECT_EQ(store->groups().StateAt(v1.group_id, 1), v1);
    EXPECT_EQ(store->groups().StateAt(v1.group_id, 2), v2);
    EXPECT_EQ(store->groups().StateAt(v1.group_id, 3), v3);
    // Not reached yet; never a version 0; not a group known.
    EXPECT_EQ(store->groups().StateAt(v1.group_id, 4), std::nullopt);
    EXPECT_EQ(store->groups().StateAt(v1.group_id, 0), std::nullopt);
    EXPECT_EQ(store->groups().StateAt("nope", 1), std::nullopt);
    store.reset();
    store = Open();
  }
  // One more, one at a time, is kept beside them.
  GroupState v4 = Next(v3, [](GroupState& s) { s.display_name = "Club"; });
  ASSERT_THAT(store->groups().Apply({v4}, Self()), IsOk());
  store.reset();
  store = Open();
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 4), v4);
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 1), v1);
}

TEST_F(GroupBookTest, AStateThatWasRefusedIsNotKept) {
  GroupState v1 = Genesis("Book club");
  GroupState forged = Next(v1, [](GroupState& s) { s.display_name = "X"; });
  forged.signature[0] ^= 1;
  auto store = Open();
  absl::StatusOr<GroupAdvance> advance =
      store->groups().Apply({v1, forged}, Self());
  ASSERT_THAT(advance, IsOk());
  EXPECT_EQ(advance->rejected.size(), 1u);
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 1), v1);
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 2), std::nullopt);
}

// A file of the build before every state was kept (schema 11): made here
// by taking what schema 12 added off a file (the migration of a file with
// the tables of 12 already there would fail, so this proves it ran). Its
// latest states are kept as states verified; those before are not known.
TEST_F(GroupBookTest, AFileFromBeforeEveryStateWasKeptMigrates) {
  const std::string path = dir_.File("alice.db");
  GroupState v1 = Genesis("Book club");
  GroupState v2 = Next(v1, [](GroupState& s) { s.members.pop_back(); });
  {
    auto store = Open();
    ASSERT_THAT(store->groups().Apply({v1, v2}, Self()), IsOk());
  }
  LowerPeerFile(path,
                "DROP TRIGGER copy_states_follow; DROP TABLE copy_states; "
                "DROP TABLE group_states; ALTER TABLE messages DROP COLUMN "
                "copies; ALTER TABLE reads DROP COLUMN group_id;",
                11);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(PeerFileVersion(path), kPeerSchemaVersion);
  EXPECT_EQ(store->groups().Latest(v1.group_id)->state, v2);
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 2), v2);
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 1), std::nullopt);
  GroupState v3 = Next(v2, [](GroupState& s) { s.display_name = "Readers"; });
  ASSERT_THAT(store->groups().Apply({v3}, Self()), IsOk());
  store.reset();
  store = Open();
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 2), v2);
  EXPECT_EQ(store->groups().StateAt(v1.group_id, 3), v3);
}

// A file of the build before groups (schema 10), made by that build from
// the schema-7 fixture (tests/peer/testdata/peer_v10.sql): it migrates,
// keeps what it had, and keeps groups from then on.
TEST_F(GroupBookTest, AFileFromBeforeGroupsMigrates) {
  const std::string path = dir_.File("alice.db");
  MakePeerFileFromFixture(path, "peer_v10.sql");
  ASSERT_EQ(PeerFileVersion(path), 10);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(PeerFileVersion(path), kPeerSchemaVersion);
  EXPECT_THAT(store->groups().List(), IsEmpty());
  EXPECT_EQ(store->lease().SavedLeaseId(), "lease-1");
  GroupState v1 = Genesis("Book club");
  ASSERT_THAT(store->groups().Apply({v1}, Self()), IsOk());
  store.reset();
  store = Open();
  EXPECT_EQ(store->groups().List().size(), 1u);
}

}  // namespace
}  // namespace chat::peer
