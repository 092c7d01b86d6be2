// The group manager against a fake sequencer that keeps each group's chain
// in memory as the registry does (only version n + 1 of what it holds, by
// CheckGenesis / CheckSuccessor), a fake key source and the real group book
// of a store in memory.

#include "peer/group_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "peer/peer_store.h"
#include "registry/names.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

using registry::GroupMember;
using registry::GroupState;
using registry::GroupStateHash;
using registry::RegistryClient;

// The registry's Groups service as a sequencer in memory. Thread-safe.
class FakeGroupDirectory final : public GroupDirectory {
 public:
  explicit FakeGroupDirectory(registry::GroupLimits limits) : limits_(limits) {}

  absl::StatusOr<RegistryClient::GroupPut> Put(const GroupState& state) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    std::function<void()> before_put;
    {
      absl::MutexLock lock(&mu_);
      if (!available_) return absl::UnavailableError("registry is away");
      ++puts_;
      before_put = before_put_;
    }
    if (before_put) before_put();
    return Decide(state);
  }

  absl::StatusOr<RegistryClient::GroupStates> Get(
      const std::string& group_id, int64_t after_version) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!available_) return absl::UnavailableError("registry is away");
    auto found = chains_.find(group_id);
    if (found == chains_.end()) return absl::NotFoundError("no such group");
    RegistryClient::GroupStates page;
    for (const GroupState& state : found->second) {
      if (state.version <= after_version) continue;
      if (static_cast<int>(page.states.size()) == page_size_) break;
      page.states.push_back(state);
    }
    page.latest_version = found->second.back().version;
    ++gets_;
    return page;
  }

  // Another writer's version, taken as the registry would take it (without
  // the SetBeforePut hook, which may call this).
  void Take(const GroupState& state) {
    absl::StatusOr<RegistryClient::GroupPut> put = Decide(state);
    ASSERT_THAT(put, IsOk());
    ASSERT_TRUE(put->accepted);
  }

  GroupState Latest(const std::string& group_id) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return chains_[group_id].back();
  }
  void SetAvailable(bool available) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    available_ = available;
  }
  // Run at each Put before it is decided, with no lock held: another
  // writer getting there first.
  void SetBeforePut(std::function<void()> before_put) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    before_put_ = std::move(before_put);
  }
  void SetPageSize(int states) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    page_size_ = states;
  }
  int puts() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return puts_;
  }
  int gets() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return gets_;
  }

 private:
  // Accepts only the version after the one held (a repeat of one held, byte
  // for byte, counts as accepted); a state that does not follow it is
  // answered with it.
  absl::StatusOr<RegistryClient::GroupPut> Decide(const GroupState& state)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::vector<GroupState>& chain = chains_[state.group_id];
    if (chain.empty()) {
      if (state.version != 1) return absl::NotFoundError("no such group");
      CHAT_RETURN_IF_ERROR(registry::CheckGenesis(state, limits_));
      chain.push_back(state);
      return RegistryClient::GroupPut{true, state};
    }
    if (state.version >= 1 &&
        state.version <= static_cast<int64_t>(chain.size()) &&
        chain[state.version - 1] == state) {
      return RegistryClient::GroupPut{true, state};
    }
    absl::Status follows =
        registry::CheckSuccessor(chain.back(), state, limits_);
    if (follows.code() == absl::StatusCode::kFailedPrecondition) {
      return RegistryClient::GroupPut{false, chain.back()};
    }
    CHAT_RETURN_IF_ERROR(follows);
    chain.push_back(state);
    return RegistryClient::GroupPut{true, state};
  }

  const registry::GroupLimits limits_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<GroupState>> chains_ ABSL_GUARDED_BY(mu_);
  bool available_ ABSL_GUARDED_BY(mu_) = true;
  std::function<void()> before_put_ ABSL_GUARDED_BY(mu_);
  int page_size_ ABSL_GUARDED_BY(mu_) = 100;
  int puts_ ABSL_GUARDED_BY(mu_) = 0;
  int gets_ ABSL_GUARDED_BY(mu_) = 0;
};

// Keys by name, as pins and the registry would give them. Thread-safe.
class FakeMemberKeys final : public MemberKeys {
 public:
  void Register(const std::string& name, const PublicKey& key)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    keys_[registry::NameKey(name)] = key;
  }
  // The registry's key for `name` is no longer the pinned one.
  void Rekey(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    rekeyed_.insert(registry::NameKey(name));
  }

  absl::StatusOr<PublicKey> KeyToList(const std::string& name) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++asked_;
    if (rekeyed_.count(registry::NameKey(name)) > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          name, "'s key changed; /trust ", name, " to take the new one"));
    }
    auto found = keys_.find(registry::NameKey(name));
    if (found == keys_.end()) {
      return absl::NotFoundError(
          absl::StrCat("nobody named ", name, " is registered"));
    }
    return found->second;
  }

  int asked() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return asked_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, PublicKey> keys_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> rekeyed_ ABSL_GUARDED_BY(mu_);
  int asked_ ABSL_GUARDED_BY(mu_) = 0;
};

std::vector<std::string> Names(const GroupState& state) {
  std::vector<std::string> names;
  for (const GroupMember& member : state.members) names.push_back(member.name);
  return names;
}

std::vector<std::string> Names(const std::vector<GroupMember>& members) {
  std::vector<std::string> names;
  for (const GroupMember& member : members) names.push_back(member.name);
  return names;
}

class GroupManagerTest : public ::testing::Test {
 protected:
  static constexpr int kMaxMembers = 4;

  static registry::GroupLimits Limits() {
    registry::GroupLimits limits;
    limits.max_members = kMaxMembers;
    return limits;
  }

  GroupManagerTest() {
    clock_.JumpWall(absl::FromUnixMillis(1'700'000'000'000) - clock_.Wall());
    PeerStoreLimits store_limits;
    store_limits.group_limits = limits_;
    store_limits.max_groups = 3;
    auto store = OpenPeerStore(":memory:", clock_, false, store_limits);
    EXPECT_THAT(store, IsOk());
    if (store.ok()) store_ = *std::move(store);
    keys_.Register("bob", bob_.public_key());
    keys_.Register("carol", carol_.public_key());
    keys_.Register("dave", dave_.public_key());
    keys_.Register("erin", erin_.public_key());
    manager_ = std::make_unique<GroupManager>(
        &alice_, "alice", &store_->groups(), &directory_, &keys_, clock_,
        limits_, store_limits.max_groups);
  }

  GroupBook& book() { return store_->groups(); }

  GroupUpdate Created(const std::string& display_name,
                      const std::vector<std::string>& members) {
    absl::StatusOr<GroupUpdate> update =
        manager_->Create(display_name, members);
    EXPECT_THAT(update, IsOk());
    return update.ok() ? *std::move(update) : GroupUpdate();
  }

  // What another device of the owner makes: the registry's next version of
  // `group_id`, changed by `change`, signed by `signer` (alice by default).
  GroupState OtherDevice(const std::string& group_id,
                         const std::function<void(GroupState&)>& change,
                         const Identity* signer = nullptr) {
    GroupState current = directory_.Latest(group_id);
    GroupState next = current;
    next.version = current.version + 1;
    next.previous_hash = GroupStateHash(current);
    // Its own clock: a version it makes is never the same bytes as ours.
    next.signed_at_unix_ms = current.signed_at_unix_ms + 1;
    change(next);
    absl::StatusOr<GroupState> signed_state =
        registry::SignGroupState(next, signer != nullptr ? *signer : alice_);
    EXPECT_THAT(signed_state, IsOk());
    directory_.Take(*signed_state);
    return *signed_state;
  }

  // The group `label` names; "" (and a failure) when none.
  std::string Found(const std::string& label) {
    absl::StatusOr<std::string> id = manager_->Find(label);
    EXPECT_THAT(id, IsOk()) << label;
    return id.ok() ? *id : "";
  }

  int64_t BookVersion(const std::string& group_id) {
    std::optional<KnownGroup> known = book().Latest(group_id);
    return known.has_value() ? known->state.version : 0;
  }

  FakeClock clock_;
  const registry::GroupLimits limits_ = Limits();
  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity carol_ = Identity::Generate();
  const Identity dave_ = Identity::Generate();
  const Identity erin_ = Identity::Generate();
  FakeGroupDirectory directory_{limits_};
  FakeMemberKeys keys_;
  std::unique_ptr<PeerStore> store_;
  std::unique_ptr<GroupManager> manager_;
};

TEST_F(GroupManagerTest, CreateMakesUsOwnerAndMemberAndKeepsTheGroup) {
  absl::StatusOr<GroupUpdate> update =
      manager_->Create("team", {"bob", "Carol", "ALICE"});
  ASSERT_THAT(update, IsOk());
  const GroupState& after = update->after;
  EXPECT_EQ(update->before.version, 0);
  EXPECT_EQ(after.version, 1);
  EXPECT_TRUE(registry::IsGroupId(after.group_id));
  EXPECT_EQ(after.owner, "alice");
  EXPECT_EQ(after.display_name, "team");
  EXPECT_EQ(after.signed_at_unix_ms, 1'700'000'000'000);
  EXPECT_THAT(Names(after), ElementsAre("alice", "bob", "Carol"));
  EXPECT_EQ(registry::GroupMemberKey(after, "carol"), carol_.public_key());
  EXPECT_THAT(registry::CheckGenesis(after, limits_), IsOk());
  EXPECT_THAT(Names(update->change.added),
              ElementsAre("alice", "bob", "Carol"));
  EXPECT_THAT(update->notify, ElementsAre("bob", "Carol"));
  // The registry and the book hold it.
  EXPECT_EQ(directory_.Latest(after.group_id), after);
  std::optional<KnownGroup> known = book().Latest(after.group_id);
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->state, after);
  EXPECT_TRUE(known->member);
}

TEST_F(GroupManagerTest, CreateRefusesBadInputBeforeAskingAnyone) {
  EXPECT_THAT(manager_->Create("team", {"bob", "BOB"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("BOB is named twice")));
  EXPECT_THAT(manager_->Create("team", {"bob", "no spaces"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(manager_->Create("", {"bob"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(manager_->Create("bad\ntitle", {"bob"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      manager_->Create("team", {"bob", "carol", "dave", "erin"}),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("at most 4")));
  EXPECT_EQ(keys_.asked(), 0);
  EXPECT_EQ(directory_.puts(), 0);
  EXPECT_THAT(book().List(), IsEmpty());
}

TEST_F(GroupManagerTest, CreateSaysWhoCannotBeListed) {
  EXPECT_THAT(manager_->Create("team", {"bob", "zed"}),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("nobody named zed is registered")));
  keys_.Rekey("carol");
  EXPECT_THAT(manager_->Create("team", {"carol"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("/trust carol")));
  EXPECT_EQ(directory_.puts(), 0);
}

TEST_F(GroupManagerTest, CreateStopsAtTheBooksGroupLimit) {
  Created("one", {});
  Created("two", {});
  Created("three", {});
  EXPECT_THAT(manager_->Create("four", {}),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(directory_.puts(), 3);
}

TEST_F(GroupManagerTest, AddRemoveAndHandOver) {
  const std::string id = Created("team", {"bob"}).after.group_id;

  absl::StatusOr<GroupUpdate> added = manager_->Add(id, {"carol", "Dave"});
  ASSERT_THAT(added, IsOk());
  EXPECT_EQ(added->before.version, 1);
  EXPECT_EQ(added->after.version, 2);
  EXPECT_EQ(added->after.previous_hash, GroupStateHash(added->before));
  EXPECT_THAT(Names(added->change.added), ElementsAre("carol", "Dave"));
  EXPECT_THAT(added->notify, ElementsAre("bob", "carol", "Dave"));
  EXPECT_EQ(BookVersion(id), 2);

  absl::StatusOr<GroupUpdate> removed = manager_->Remove(id, {"DAVE"});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(removed->after.version, 3);
  EXPECT_THAT(Names(removed->change.removed), ElementsAre("Dave"));
  // The removed member is told too.
  EXPECT_THAT(removed->notify, ElementsAre("bob", "carol", "Dave"));
  EXPECT_THAT(Names(removed->after), ElementsAre("alice", "bob", "carol"));

  absl::StatusOr<GroupUpdate> handed = manager_->HandOver(id, "Bob");
  ASSERT_THAT(handed, IsOk());
  EXPECT_EQ(handed->after.owner, "bob");  // As the state lists bob.
  EXPECT_EQ(handed->change.new_owner, "bob");
  EXPECT_EQ(BookVersion(id), 4);
  EXPECT_EQ(directory_.Latest(id), handed->after);

  // From now on bob signs.
  EXPECT_THAT(manager_->Add(id, {"erin"}),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("only bob, the owner, can change team")));
}

TEST_F(GroupManagerTest, ChangesThatDoNothingOrCannotBeAreRefused) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  EXPECT_THAT(manager_->Add(id, {"carol", "bob"}),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("bob is already in team")));
  EXPECT_THAT(manager_->Add(id, {"carol", "CAROL"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      manager_->Remove(id, {"dave"}),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("dave is not in team")));
  EXPECT_THAT(manager_->Remove(id, {"alice"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/group leave team")));
  EXPECT_THAT(
      manager_->HandOver(id, "dave"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("dave is not in team")));
  EXPECT_THAT(manager_->HandOver(id, "alice"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(manager_->Add(id, {"zed"}),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("nobody named zed is registered")));
  EXPECT_THAT(manager_->Add("0123456789abcdef0123456789abcdef", {"carol"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(directory_.puts(), 1);  // The creation only.
  EXPECT_EQ(BookVersion(id), 1);
}

TEST_F(GroupManagerTest, TooManyMembersIsRefusedBeforeItIsOffered) {
  const std::string id = Created("team", {"bob", "carol"}).after.group_id;
  EXPECT_THAT(manager_->Add(id, {"dave", "erin"}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("team would have 5 members; a group may have "
                                 "at most 4")));
  EXPECT_EQ(directory_.puts(), 1);
  EXPECT_THAT(manager_->Add(id, {"dave"}), IsOk());
}

TEST_F(GroupManagerTest, OnlyTheOwnerChangesTheGroup) {
  // Bob's group, with alice in it, as alice's peer learnt it.
  GroupManager bobs(&bob_, "bob", &book(), &directory_, &keys_, clock_, limits_,
                    3);
  keys_.Register("alice", alice_.public_key());
  const std::string id = [&] {
    absl::StatusOr<GroupUpdate> made = bobs.Create("team", {"alice", "carol"});
    EXPECT_THAT(made, IsOk());
    return made->after.group_id;
  }();
  EXPECT_THAT(manager_->Add(id, {"dave"}),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("only bob, the owner, can change team")));
  EXPECT_THAT(manager_->Remove(id, {"carol"}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(manager_->HandOver(id, "carol"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(manager_->Leave(id),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("only bob, the owner, can remove you from "
                                 "team")));
  EXPECT_EQ(BookVersion(id), 1);
}

TEST_F(GroupManagerTest, ALostRaceIsRebasedAndKeepsTheIntent) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  // Another device of alice's adds carol and renames the group twice; the
  // registry pages one version at a time.
  OtherDevice(id, [&](GroupState& s) {
    s.members.push_back({"carol", carol_.public_key()});
  });
  OtherDevice(id, [](GroupState& s) { s.display_name = "crew"; });
  const GroupState v4 =
      OtherDevice(id, [](GroupState& s) { s.display_name = "squad"; });
  directory_.SetPageSize(1);

  absl::StatusOr<GroupUpdate> added = manager_->Add(id, {"dave"});
  ASSERT_THAT(added, IsOk());
  EXPECT_EQ(added->before, v4);
  EXPECT_EQ(added->after.version, 5);
  EXPECT_THAT(Names(added->after),
              ElementsAre("alice", "bob", "carol", "dave"));
  EXPECT_EQ(added->after.display_name, "squad");
  EXPECT_THAT(Names(added->change.added), ElementsAre("dave"));
  EXPECT_FALSE(added->change.new_display_name.has_value());
  EXPECT_EQ(BookVersion(id), 5);
  EXPECT_EQ(directory_.Latest(id), added->after);
  EXPECT_GE(directory_.gets(), 2);  // Versions 2 and 3 fetched, a page each.
}

TEST_F(GroupManagerTest, ARemovalRebasedKeepsWhatIsLeftToDo) {
  const std::string id =
      Created("team", {"bob", "carol", "dave"}).after.group_id;
  OtherDevice(id, [](GroupState& s) {
    s.members.erase(s.members.begin() + 1);  // bob
  });
  absl::StatusOr<GroupUpdate> removed = manager_->Remove(id, {"bob", "carol"});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(removed->after.version, 3);
  EXPECT_THAT(Names(removed->change.removed), ElementsAre("carol"));
  EXPECT_THAT(Names(removed->after), ElementsAre("alice", "dave"));
}

TEST_F(GroupManagerTest, AnIntentAlreadySatisfiedAnswersAnEmptyChange) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  const GroupState v2 = OtherDevice(id, [&](GroupState& s) {
    s.members.push_back({"dave", dave_.public_key()});
  });
  absl::StatusOr<GroupUpdate> added = manager_->Add(id, {"dave"});
  ASSERT_THAT(added, IsOk());
  EXPECT_TRUE(added->change.empty());
  EXPECT_EQ(added->before, v2);
  EXPECT_EQ(added->after, v2);
  EXPECT_THAT(added->notify, IsEmpty());
  EXPECT_EQ(BookVersion(id), 2);

  OtherDevice(id, [](GroupState& s) { s.owner = "bob"; });
  absl::StatusOr<GroupUpdate> handed = manager_->HandOver(id, "bob");
  ASSERT_THAT(handed, IsOk());
  EXPECT_TRUE(handed->change.empty());
  EXPECT_EQ(BookVersion(id), 3);
}

TEST_F(GroupManagerTest, ARebaseOnAnotherOwnersStateIsRefused) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  OtherDevice(id, [](GroupState& s) { s.owner = "bob"; });
  EXPECT_THAT(manager_->Add(id, {"dave"}),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("only bob, the owner")));
  EXPECT_EQ(BookVersion(id), 2);  // It learnt the registry's version.
}

TEST_F(GroupManagerTest, RacesLostTooOftenAbort) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  // Each offer finds another device's version there first.
  int renames = 0;
  directory_.SetBeforePut([&] {
    OtherDevice(id, [&](GroupState& s) {
      s.display_name = absl::StrCat("team", ++renames);
    });
  });
  EXPECT_THAT(manager_->Add(id, {"dave"}),
              StatusIs(absl::StatusCode::kAborted,
                       HasSubstr("got to the registry first 4 times")));
  directory_.SetBeforePut(nullptr);
  EXPECT_FALSE(
      registry::GroupMemberKey(directory_.Latest(id), "dave").has_value());
  EXPECT_THAT(manager_->Add(id, {"dave"}), IsOk());
}

TEST_F(GroupManagerTest, TheRegistryAwayChangesNothing) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  directory_.SetAvailable(false);
  EXPECT_THAT(manager_->Add(id, {"carol"}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(manager_->Create("other", {"bob"}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(BookVersion(id), 1);
  EXPECT_EQ(book().List().size(), 1u);
  directory_.SetAvailable(true);
  EXPECT_THAT(manager_->Add(id, {"carol"}), IsOk());
}

TEST_F(GroupManagerTest, FindTellsGroupsOfOneNameApart) {
  const std::string first = Created("team", {"bob"}).after.group_id;
  EXPECT_EQ(Found("team"), first);
  const std::string second = Created("team", {"carol"}).after.group_id;
  const std::string other = Created("crew", {}).after.group_id;

  absl::StatusOr<std::string> ambiguous = manager_->Find("team");
  EXPECT_THAT(ambiguous, StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("two groups are called team: ")));
  std::vector<GroupName> names = {
      {first, "team"}, {second, "team"}, {other, "crew"}};
  const std::map<std::string, std::string> labels = GroupLabels(names);
  EXPECT_THAT(std::string(ambiguous.status().message()),
              HasSubstr(labels.at(first)));
  EXPECT_THAT(std::string(ambiguous.status().message()),
              HasSubstr(labels.at(second)));

  EXPECT_EQ(Found(labels.at(first)), first);
  EXPECT_EQ(Found(labels.at(second)), second);
  EXPECT_EQ(Found("crew"), other);
  EXPECT_EQ(Found(second), second);
  // More of the id than the label shows still finds it.
  EXPECT_EQ(Found("team~" + second.substr(0, 9)), second);
  EXPECT_THAT(
      manager_->Find("nope"),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("no group called nope")));
  EXPECT_THAT(manager_->Find("team~zz"), StatusIs(absl::StatusCode::kNotFound));

  // Messages name a group by its label.
  EXPECT_THAT(manager_->Add(first, {"bob"}),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("bob is already in " + labels.at(first))));
}

TEST_F(GroupManagerTest, TheOwnerWithOthersHandsOverBeforeLeaving) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  EXPECT_THAT(manager_->Leave(id),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("hand team over first: /group owner team "
                                 "NAME")));
  EXPECT_EQ(directory_.puts(), 1);
}

TEST_F(GroupManagerTest, TheOwnerAloneEndsTheGroupByLeaving) {
  const std::string id = Created("team", {"bob"}).after.group_id;
  ASSERT_THAT(manager_->Remove(id, {"bob"}), IsOk());
  absl::StatusOr<GroupUpdate> left = manager_->Leave(id);
  ASSERT_THAT(left, IsOk());
  EXPECT_TRUE(left->after.ended);
  EXPECT_TRUE(left->change.ended);
  EXPECT_THAT(left->after.members, IsEmpty());
  EXPECT_THAT(left->notify, IsEmpty());
  std::optional<KnownGroup> known = book().Latest(id);
  ASSERT_TRUE(known.has_value());
  EXPECT_TRUE(known->state.ended);
  EXPECT_FALSE(known->member);
  // Nothing follows.
  EXPECT_THAT(manager_->Add(id, {"bob"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(manager_->Leave(id),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(GroupManagerTest, LeavingIsJudgedAgainOnTheStateThatWon) {
  const std::string id = Created("team", {}).after.group_id;
  // Another device of alice's adds bob: she is no longer alone.
  OtherDevice(id, [&](GroupState& s) {
    s.members.push_back({"bob", bob_.public_key()});
  });
  EXPECT_THAT(manager_->Leave(id),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("hand team over first")));
  EXPECT_EQ(BookVersion(id), 2);
  EXPECT_FALSE(directory_.Latest(id).ended);
}

TEST_F(GroupManagerTest, NotifyIsBeforeAndAfterWithoutUs) {
  const std::string id = Created("team", {"bob", "carol"}).after.group_id;
  OtherDevice(id, [](GroupState& s) {
    s.members.erase(s.members.begin() + 2);  // carol
  });
  // Re-based: before is version 2, without carol, who is not told.
  absl::StatusOr<GroupUpdate> added = manager_->Add(id, {"erin"});
  ASSERT_THAT(added, IsOk());
  EXPECT_EQ(added->before.version, 2);
  EXPECT_THAT(added->notify, ElementsAre("bob", "erin"));
  absl::StatusOr<GroupUpdate> removed = manager_->Remove(id, {"erin", "BOB"});
  ASSERT_THAT(removed, IsOk());
  EXPECT_THAT(removed->notify, ElementsAre("bob", "erin"));
  EXPECT_THAT(Names(removed->change.removed),
              UnorderedElementsAre("bob", "erin"));
}

}  // namespace
}  // namespace chat::peer
