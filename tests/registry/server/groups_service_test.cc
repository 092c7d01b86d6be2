// The Groups service through a real gRPC server and RegistryClient: the
// registry as the sequencer of each group's signed membership. Who may
// create and change a group, re-basing after a lost race, repeats, and
// hostile states.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "registry/client/registry_client.h"
#include "registry/groups/group_state.h"
#include "registry/groups/sqlite_group_store.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class GroupsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(":memory:", clock_);
    ASSERT_THAT(store, IsOk());
    GroupStoreLimits store_limits;
    store_limits.max_groups_per_owner = 3;
    auto groups = OpenSqliteGroupStore(":memory:", store_limits);
    ASSERT_THAT(groups, IsOk());
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.clock = &clock_;
    options.groups.max_members = 4;
    auto server = RegistryServer::Start(*std::move(store), nullptr,
                                        *std::move(groups), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    client_ = std::make_unique<RegistryClient>(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()),
        "test", Millis(5000));
    client_->SetClock(clock_);
    for (const auto& [name, identity] :
         {std::pair<const char*, const Identity*>{"Alice", &alice_},
          {"bob", &bob_},
          {"carol", &carol_}}) {
      ASSERT_THAT(client_->Register({name, "127.0.0.1:1"}, identity), IsOk());
    }
  }

  // Version 1 of a group owned by Alice with bob besides her.
  GroupState Genesis() { return Genesis({{"bob", &bob_}}); }
  // Version 1 of a group owned by Alice with `members` besides her, signed
  // by `signer` (Alice's key unless said).
  GroupState Genesis(
      const std::vector<std::pair<std::string, const Identity*>>& members,
      const Identity* signer = nullptr) {
    GroupState state;
    state.group_id = NewGroupId();
    state.version = 1;
    state.display_name = "team";
    state.owner = "Alice";
    state.members.push_back({"Alice", alice_.public_key()});
    for (const auto& [name, identity] : members) {
      state.members.push_back({name, identity->public_key()});
    }
    state.signed_at_unix_ms = absl::ToUnixMillis(clock_.Wall());
    auto signed_state = SignGroupState(state, signer ? *signer : alice_);
    EXPECT_THAT(signed_state, IsOk());
    return *signed_state;
  }

  // The version after `current`: `change` applied, signed by `signer`.
  GroupState Next(const GroupState& current,
                  const std::function<void(GroupState&)>& change,
                  const Identity& signer) {
    GroupState next = current;
    next.version = current.version + 1;
    next.previous_hash = GroupStateHash(current);
    next.signature.clear();
    change(next);
    auto signed_state = SignGroupState(next, signer);
    EXPECT_THAT(signed_state, IsOk());
    return *signed_state;
  }

  static void AddCarol(GroupState& state, const Identity& carol) {
    state.members.push_back({"carol", carol.public_key()});
  }

  FakeClock clock_;
  Identity alice_ = Identity::Generate();
  Identity bob_ = Identity::Generate();
  Identity carol_ = Identity::Generate();
  Identity stranger_ = Identity::Generate();
  std::unique_ptr<RegistryServer> server_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(GroupsServiceTest, TheOwnerCreatesAndChangesAGroupAndMembersReadIt) {
  const GroupState v1 = Genesis();
  auto put = client_->PutGroupState(v1);
  ASSERT_THAT(put, IsOk());
  EXPECT_TRUE(put->accepted);
  const GroupState v2 = Next(
      v1, [&](GroupState& s) { AddCarol(s, carol_); }, alice_);
  put = client_->PutGroupState(v2);
  ASSERT_THAT(put, IsOk());
  EXPECT_TRUE(put->accepted);
  auto states = client_->GetGroupStates(v1.group_id, 0);
  ASSERT_THAT(states, IsOk());
  EXPECT_EQ(states->latest_version, 2);
  ASSERT_THAT(states->states, SizeIs(2));
  EXPECT_EQ(GroupStateHash(states->states[0]), GroupStateHash(v1));
  EXPECT_EQ(GroupStateHash(states->states[1]), GroupStateHash(v2));
  // From a version on, and a page at a time.
  states = client_->GetGroupStates(v1.group_id, 1, 1);
  ASSERT_THAT(states, IsOk());
  ASSERT_THAT(states->states, SizeIs(1));
  EXPECT_EQ(states->states[0].version, 2);
}

TEST_F(GroupsServiceTest, ALostRaceIsAnsweredWithTheLatestToReBaseOn) {
  const GroupState v1 = Genesis();
  ASSERT_THAT(client_->PutGroupState(v1), IsOk());
  const GroupState with_carol = Next(
      v1, [&](GroupState& s) { AddCarol(s, carol_); }, alice_);
  const GroupState renamed = Next(
      v1, [](GroupState& s) { s.display_name = "renamed"; }, alice_);
  ASSERT_TRUE(client_->PutGroupState(with_carol)->accepted);
  auto lost = client_->PutGroupState(renamed);
  ASSERT_THAT(lost, IsOk());
  EXPECT_FALSE(lost->accepted);
  EXPECT_EQ(GroupStateHash(lost->current), GroupStateHash(with_carol));
  // Re-based on it, the change goes in.
  auto rebased = client_->PutGroupState(Next(
      lost->current, [](GroupState& s) { s.display_name = "renamed"; },
      alice_));
  ASSERT_THAT(rebased, IsOk());
  EXPECT_TRUE(rebased->accepted);
  // A repeat of what is held (an answer lost on the way) is accepted.
  auto repeat = client_->PutGroupState(with_carol);
  ASSERT_THAT(repeat, IsOk());
  EXPECT_FALSE(repeat->accepted);  // Not the latest any more: version 3 is.
  auto again = client_->PutGroupState(rebased->current);
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->accepted);
}

TEST_F(GroupsServiceTest, OfManyRacingChangesToOneVersionExactlyOneIsTaken) {
  const GroupState v1 = Genesis();
  ASSERT_THAT(client_->PutGroupState(v1), IsOk());
  std::vector<GroupState> rivals;
  for (int i = 0; i < 8; ++i) {
    rivals.push_back(Next(
        v1, [i](GroupState& s) { s.display_name = absl::StrCat("t", i); },
        alice_));
  }
  std::vector<int> accepted(rivals.size(), -1);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < rivals.size(); ++i) {
    threads.emplace_back([&, i] {
      auto put = client_->PutGroupState(rivals[i]);
      accepted[i] = put.ok() ? (put->accepted ? 1 : 0) : -1;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(std::count(accepted.begin(), accepted.end(), 1), 1);
  EXPECT_EQ(std::count(accepted.begin(), accepted.end(), 0),
            static_cast<long>(rivals.size()) - 1);
}

TEST_F(GroupsServiceTest, OnlyTheOwnerMayTakeTheNextVersion) {
  const GroupState v1 = Genesis();
  ASSERT_THAT(client_->PutGroupState(v1), IsOk());
  // A member, a stranger, a member naming itself owner: refused, and the
  // group stays the owner's to change.
  EXPECT_THAT(client_->PutGroupState(Next(
                  v1, [&](GroupState& s) { AddCarol(s, carol_); }, bob_)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client_->PutGroupState(Next(
                  v1, [](GroupState& s) { s.owner = "bob"; }, bob_)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client_->PutGroupState(Next(
                  v1, [&](GroupState& s) { AddCarol(s, carol_); }, stranger_)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // A tampered state (changed after it was signed).
  GroupState tampered = Next(
      v1, [&](GroupState& s) { AddCarol(s, carol_); }, alice_);
  tampered.display_name = "mine now";
  EXPECT_THAT(client_->PutGroupState(tampered),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // A chain that skips the held version.
  GroupState unchained = Next(
      v1, [&](GroupState& s) { AddCarol(s, carol_); }, alice_);
  unchained.previous_hash = std::string(32, 'x');
  auto resigned = SignGroupState(unchained, alice_);
  ASSERT_THAT(resigned, IsOk());
  EXPECT_THAT(client_->PutGroupState(*resigned),
              StatusIs(absl::StatusCode::kUnauthenticated));
  auto states = client_->GetGroupStates(v1.group_id, 0);
  ASSERT_THAT(states, IsOk());
  EXPECT_EQ(states->latest_version, 1);
  // Handed over, the new owner changes it.
  const GroupState handed = Next(
      v1, [](GroupState& s) { s.owner = "bob"; }, alice_);
  ASSERT_TRUE(client_->PutGroupState(handed)->accepted);
  auto by_bob = client_->PutGroupState(Next(
      handed, [&](GroupState& s) { AddCarol(s, carol_); }, bob_));
  ASSERT_THAT(by_bob, IsOk());
  EXPECT_TRUE(by_bob->accepted);
}

TEST_F(GroupsServiceTest, AGroupIsCreatedOnlyByTheHolderOfItsOwnersName) {
  // Signed by a stranger's key listed as Alice's: the chain checks, but
  // the key is not the one "Alice" is bound to.
  GroupState forged;
  forged.group_id = NewGroupId();
  forged.version = 1;
  forged.display_name = "team";
  forged.owner = "Alice";
  forged.members = {{"Alice", stranger_.public_key()},
                    {"bob", bob_.public_key()}};
  auto signed_forged = SignGroupState(forged, stranger_);
  ASSERT_THAT(signed_forged, IsOk());
  EXPECT_THAT(client_->PutGroupState(*signed_forged),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bound to the key")));
  // An owner not registered at all.
  forged.owner = "nobody";
  forged.members = {{"nobody", stranger_.public_key()}};
  signed_forged = SignGroupState(forged, stranger_);
  ASSERT_THAT(signed_forged, IsOk());
  EXPECT_THAT(client_->PutGroupState(*signed_forged),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(client_->GetGroupStates(forged.group_id, 0),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(GroupsServiceTest, LimitsAndMalformedStatesAreRefusedClearly) {
  // Members (4 here).
  EXPECT_THAT(client_->PutGroupState(Genesis({{"bob", &bob_},
                                              {"carol", &carol_},
                                              {"dave", &stranger_},
                                              {"erin", &bob_}})),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("--max-group-members")));
  // Groups per owner (3 here).
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client_->PutGroupState(Genesis())->accepted);
  }
  EXPECT_THAT(client_->PutGroupState(Genesis()),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("max-groups-per-owner")));
  // A version past 1 of a group nobody holds.
  GroupState orphan = Genesis();
  orphan = Next(
      orphan, [](GroupState&) {}, alice_);
  EXPECT_THAT(client_->PutGroupState(orphan),
              StatusIs(absl::StatusCode::kNotFound));
  // Malformed on the wire: a bad id, a negative page.
  v1::PutGroupStateRequest request;
  request.mutable_state()->set_group_id("not hex");
  v1::PutGroupStateResponse response;
  grpc::ClientContext context;
  auto stub = v1::Groups::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                          grpc::InsecureChannelCredentials()));
  EXPECT_EQ(stub->PutGroupState(&context, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(client_->GetGroupStates("not hex", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->GetGroupStates(NewGroupId(), 0, -1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::registry
