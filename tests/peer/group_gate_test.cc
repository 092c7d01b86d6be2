// The group gate against a sequencer in memory and real signed states, over
// each group book: one in memory that keeps every verified version, and the
// peer's store. Cases that need the versions before the latest are skipped
// for a book that does not keep them.

#include "peer/group_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "peer/peer_store.h"
#include "registry/names.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using registry::GroupMember;
using registry::GroupState;
using registry::GroupStateHash;
using registry::NewGroupId;
using registry::RegistryClient;
using registry::SignGroupState;

// The registry's sequencing in memory: version n + 1 only, pages of
// `page_size`. Thread-safe.
class FakeGroupDirectory final : public GroupDirectory {
 public:
  absl::StatusOr<RegistryClient::GroupPut> Put(
      const GroupState& state) override {
    absl::MutexLock lock(&mu_);
    if (!available_) return absl::UnavailableError("registry away");
    std::vector<GroupState>& chain = groups_[state.group_id];
    RegistryClient::GroupPut put;
    if (state.version == static_cast<int64_t>(chain.size()) + 1) {
      chain.push_back(state);
      put.accepted = true;
    }
    put.current = chain.back();
    return put;
  }

  absl::StatusOr<RegistryClient::GroupStates> Get(
      const std::string& group_id, int64_t after_version) override {
    absl::MutexLock lock(&mu_);
    ++gets_;
    if (!available_) return absl::UnavailableError("registry away");
    auto found = groups_.find(group_id);
    if (found == groups_.end()) return absl::NotFoundError("no such group");
    RegistryClient::GroupStates page;
    for (const GroupState& state : found->second) {
      if (state.version > after_version &&
          static_cast<int>(page.states.size()) < page_size_) {
        page.states.push_back(state);
      }
    }
    page.latest_version = static_cast<int64_t>(found->second.size());
    return page;
  }

  void SetAvailable(bool available) {
    absl::MutexLock lock(&mu_);
    available_ = available;
  }
  void SetPageSize(int page_size) {
    absl::MutexLock lock(&mu_);
    page_size_ = page_size;
  }
  int gets() {
    absl::MutexLock lock(&mu_);
    return gets_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<GroupState>> groups_ ABSL_GUARDED_BY(mu_);
  bool available_ ABSL_GUARDED_BY(mu_) = true;
  int page_size_ ABSL_GUARDED_BY(mu_) = 100;
  int gets_ ABSL_GUARDED_BY(mu_) = 0;
};

class FakeSenderKeys final : public SenderKeys {
 public:
  std::optional<PublicKey> TrustedKey(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    auto found = keys_.find(registry::NameKey(name));
    if (found == keys_.end()) return std::nullopt;
    return found->second;
  }
  void Trust(const std::string& name, const PublicKey& key) {
    absl::MutexLock lock(&mu_);
    keys_[registry::NameKey(name)] = key;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, PublicKey> keys_ ABSL_GUARDED_BY(mu_);
};

// A GroupBook on AdvanceGroup that keeps every version it verified, as the
// contract says. Thread-safe.
class MemoryGroupBook final : public GroupBook {
 public:
  absl::StatusOr<GroupAdvance> Apply(const std::vector<GroupState>& states,
                                     const GroupMember& self) override {
    absl::MutexLock lock(&mu_);
    if (states.empty()) return absl::InvalidArgumentError("no states");
    std::map<int64_t, GroupState>& chain = groups_[states[0].group_id];
    std::optional<GroupState> held;
    if (!chain.empty()) held = chain.rbegin()->second;
    absl::StatusOr<GroupAdvance> advance =
        AdvanceGroup(held, states, registry::GroupLimits());
    if (!advance.ok() || !advance->latest.has_value()) {
      if (chain.empty()) groups_.erase(states[0].group_id);
      return advance;
    }
    // Back from the new latest along the hashes, to what was held.
    GroupState walked = *advance->latest;
    while (true) {
      chain[walked.version] = walked;
      if (held.has_value() && walked.version <= held->version + 1) break;
      if (walked.version == 1) break;
      auto before = std::find_if(
          states.begin(), states.end(), [&walked](const GroupState& s) {
            return s.version == walked.version - 1 &&
                   GroupStateHash(s) == walked.previous_hash;
          });
      if (before == states.end()) break;
      walked = *before;
    }
    members_[advance->latest->group_id] =
        IsGroupMember(*advance->latest, self.name, self.key);
    return advance;
  }
  bool IsMember(const std::string& group_id, const std::string& name,
                const PublicKey& key) override {
    std::optional<KnownGroup> latest = Latest(group_id);
    return latest.has_value() && IsGroupMember(latest->state, name, key);
  }
  std::optional<GroupState> StateAt(const std::string& group_id,
                                    int64_t version) override {
    absl::MutexLock lock(&mu_);
    auto group = groups_.find(group_id);
    if (group == groups_.end()) return std::nullopt;
    auto found = group->second.find(version);
    if (found == group->second.end()) return std::nullopt;
    return found->second;
  }
  std::optional<KnownGroup> Latest(const std::string& group_id) override {
    absl::MutexLock lock(&mu_);
    auto group = groups_.find(group_id);
    if (group == groups_.end()) return std::nullopt;
    return KnownGroup{group->second.rbegin()->second, members_[group_id]};
  }
  std::vector<KnownGroup> List() override {
    absl::MutexLock lock(&mu_);
    std::vector<KnownGroup> known;
    for (const auto& [id, chain] : groups_) {
      known.push_back(KnownGroup{chain.rbegin()->second, members_[id]});
    }
    return known;
  }
  std::vector<KnownGroup> ByDisplayName(
      const std::string& display_name) override {
    std::vector<KnownGroup> found;
    for (KnownGroup& group : List()) {
      if (group.state.display_name == display_name) {
        found.push_back(std::move(group));
      }
    }
    return found;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::map<int64_t, GroupState>> groups_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> members_ ABSL_GUARDED_BY(mu_);
};

enum class Book { kMemory, kPeerStore };

constexpr int64_t kGenesisAt = 1'700'000'000'000;

class GroupGateTest : public ::testing::TestWithParam<Book> {
 protected:
  GroupGateTest() {
    if (GetParam() == Book::kMemory) {
      memory_book_ = std::make_unique<MemoryGroupBook>();
      book_ = memory_book_.get();
    } else {
      absl::StatusOr<std::unique_ptr<PeerStore>> store =
          OpenPeerStore(":memory:", clock_, /*sync_full=*/false);
      EXPECT_THAT(store.status(), IsOk());
      store_ = *std::move(store);
      book_ = &store_->groups();
    }
    for (const auto& [name, identity] :
         {std::pair<std::string, const Identity*>{"alice", &alice_},
          {"bob", &bob_},
          {"carol", &carol_},
          {"dave", &dave_},
          {"eve", &eve_}}) {
      keys_.Trust(name, identity->public_key());
    }
    GroupGate::Options options;
    options.self = GroupMember{"alice", alice_.public_key()};
    gate_ = std::make_unique<GroupGate>(book_, &directory_, &keys_, &events_,
                                        clock_, options);
  }

  // Version 1 of "team", owned by carol, with alice and bob, at the
  // registry.
  GroupState Create() {
    GroupState state;
    state.group_id = NewGroupId();
    state.version = 1;
    state.display_name = "team";
    state.owner = "carol";
    state.members = {{"carol", carol_.public_key()},
                     {"alice", alice_.public_key()},
                     {"bob", bob_.public_key()}};
    state.signed_at_unix_ms = kGenesisAt;
    return Publish(Signed(std::move(state), carol_));
  }

  // The version after `current`, changed by `change`, signed by its owner
  // (carol unless told) `minutes` after the genesis, at the registry.
  GroupState Change(const GroupState& current,
                    const std::function<void(GroupState&)>& change,
                    int64_t minutes, const Identity* signer = nullptr) {
    GroupState next = current;
    next.version = current.version + 1;
    next.previous_hash = GroupStateHash(current);
    next.signed_at_unix_ms = kGenesisAt + minutes * 60'000;
    change(next);
    return Publish(Signed(std::move(next), signer ? *signer : carol_));
  }

  GroupState Signed(GroupState state, const Identity& signer) {
    absl::StatusOr<GroupState> signed_state =
        SignGroupState(std::move(state), signer);
    EXPECT_THAT(signed_state, IsOk());
    return signed_state.ok() ? *std::move(signed_state) : GroupState();
  }

  GroupState Publish(const GroupState& state) {
    absl::StatusOr<RegistryClient::GroupPut> put = directory_.Put(state);
    EXPECT_THAT(put, IsOk());
    EXPECT_TRUE(put.ok() && put->accepted);
    return state;
  }

  // `from`'s message to the group as it saw `state`, sent `minutes` after
  // the genesis.
  static ChatMessage Message(const std::string& from, const GroupState& state,
                             int64_t minutes = 0) {
    ChatMessage message;
    message.id = absl::StrCat(from, "-", state.version, "-", minutes);
    message.from = from;
    message.to = "alice";
    message.text = "secret words";
    message.sent_at = absl::FromUnixMillis(kGenesisAt + minutes * 60'000);
    message.group_id = state.group_id;
    message.group_version = state.version;
    message.group_state_hash = GroupStateHash(state);
    return message;
  }

  static GroupState Without(GroupState state, const std::string& name) {
    std::vector<GroupMember> kept;
    for (GroupMember& member : state.members) {
      if (member.name != name) kept.push_back(std::move(member));
    }
    state.members = std::move(kept);
    return state;
  }

  // Whether the book keeps versions before the latest (StateAt).
  bool KeepsHistory(const GroupState& older) {
    return book_->StateAt(older.group_id, older.version).has_value();
  }

  std::vector<PeerEvent> EventsOf(EventKind kind) {
    std::vector<PeerEvent> found;
    for (const PeerEvent& event : events_.Events()) {
      if (event.kind == kind) found.push_back(event);
    }
    return found;
  }

  FakeClock clock_;
  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity carol_ = Identity::Generate();
  const Identity dave_ = Identity::Generate();
  const Identity eve_ = Identity::Generate();
  FakeGroupDirectory directory_;
  FakeSenderKeys keys_;
  RecordingSink events_;
  std::unique_ptr<MemoryGroupBook> memory_book_;
  std::unique_ptr<PeerStore> store_;
  GroupBook* book_ = nullptr;
  std::unique_ptr<GroupGate> gate_;
};

TEST_P(GroupGateTest, ADirectMessageIsNotJudged) {
  ChatMessage direct;
  direct.from = "eve";
  direct.text = "hi";
  absl::StatusOr<GroupVerdict> verdict = gate_->Admit(direct);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_THAT(verdict->advanced, IsEmpty());
  EXPECT_EQ(directory_.gets(), 0);
}

TEST_P(GroupGateTest, AMemberIsAdmittedAndTheGroupLearntOnce) {
  GroupState v1 = Create();
  absl::StatusOr<GroupVerdict> verdict = gate_->Admit(Message("bob", v1));
  ASSERT_THAT(verdict, IsOk());
  ASSERT_EQ(verdict->advanced.size(), 1u);
  EXPECT_TRUE(verdict->advanced[0].first_known);
  EXPECT_EQ(verdict->judged_by, v1);
  EXPECT_FALSE(verdict->announced.has_value());
  ASSERT_TRUE(book_->Latest(v1.group_id).has_value());
  EXPECT_TRUE(book_->Latest(v1.group_id)->member);

  // Known now: the registry is not asked again.
  verdict = gate_->Admit(Message("BOB", v1, 1));
  ASSERT_THAT(verdict, IsOk());
  EXPECT_THAT(verdict->advanced, IsEmpty());
  EXPECT_EQ(directory_.gets(), 1);
  EXPECT_THAT(events_.Events(), IsEmpty());
}

TEST_P(GroupGateTest, AStrangerIsRefusedAndItsTextNeverLogged) {
  GroupState v1 = Create();
  EXPECT_THAT(gate_->Admit(Message("eve", v1)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("eve is not a member of team")));
  std::vector<PeerEvent> told = EventsOf(EventKind::kInfo);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].name, "eve");
  EXPECT_THAT(told[0].text, HasSubstr("eve is not a member of team"));
  EXPECT_THAT(told[0].text, Not(HasSubstr("secret")));
}

TEST_P(GroupGateTest, AnUnknownVersionIsFetchedThenAdmitted) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  GroupState v2 = Change(
      v1,
      [&](GroupState& s) {
        s.members.push_back({"dave", dave_.public_key()});
      },
      1);
  absl::StatusOr<GroupVerdict> verdict = gate_->Admit(Message("dave", v2, 2));
  ASSERT_THAT(verdict, IsOk());
  ASSERT_EQ(verdict->advanced.size(), 1u);
  ASSERT_EQ(verdict->advanced[0].change.added.size(), 1u);
  EXPECT_EQ(verdict->advanced[0].change.added[0].name, "dave");
  EXPECT_EQ(book_->Latest(v1.group_id)->state, v2);
}

TEST_P(GroupGateTest, ManyVersionsComeInPages) {
  directory_.SetPageSize(2);
  GroupState state = Create();
  for (int minute = 1; minute <= 5; ++minute) {
    state = Change(
        state,
        [&](GroupState& s) { s.display_name = absl::StrCat("team", minute); },
        minute);
  }
  ASSERT_THAT(gate_->Admit(Message("bob", state, 6)), IsOk());
  EXPECT_EQ(book_->Latest(state.group_id)->state.version, 6);
  EXPECT_EQ(directory_.gets(), 3);
}

TEST_P(GroupGateTest, TheRegistryAwayDecidesNothing) {
  GroupState v1 = Create();
  directory_.SetAvailable(false);
  EXPECT_THAT(gate_->Admit(Message("bob", v1)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(events_.Events(), IsEmpty());
  directory_.SetAvailable(true);
  EXPECT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
}

TEST_P(GroupGateTest, AVersionTheRegistryDoesNotHandOutYetWaits) {
  GroupState v1 = Create();
  ChatMessage ahead = Message("bob", v1);
  ahead.group_version = 2;
  EXPECT_THAT(gate_->Admit(ahead),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("the state of team the message names is not "
                                 "known yet")));
}

TEST_P(GroupGateTest, AGroupNobodyHoldsIsRefused) {
  ChatMessage message = Message("bob", Create());
  message.group_id = NewGroupId();
  EXPECT_THAT(gate_->Admit(message),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("held by nobody")));
}

TEST_P(GroupGateTest, AStrangersGroupIsNeitherAdmittedNorKept) {
  GroupState theirs;
  theirs.group_id = NewGroupId();
  theirs.version = 1;
  theirs.display_name = "spam";
  theirs.owner = "eve";
  theirs.members = {{"eve", eve_.public_key()}};
  theirs.signed_at_unix_ms = kGenesisAt;
  theirs = Publish(Signed(theirs, eve_));
  EXPECT_THAT(gate_->Admit(Message("eve", theirs)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("you are not in")));
  EXPECT_THAT(book_->List(), IsEmpty());
}

TEST_P(GroupGateTest, AForgedHashIsRefusedWithOneForkAlarm) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  ChatMessage forged = Message("bob", v1);
  forged.group_state_hash = std::string(registry::kGroupHashBytes, 'x');
  EXPECT_THAT(gate_->Admit(forged),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  clock_.Advance(Millis(120'000));
  EXPECT_THAT(gate_->Admit(forged),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  std::vector<PeerEvent> alarms;
  for (const PeerEvent& event : EventsOf(EventKind::kError)) {
    if (absl::StrContains(event.text, "forked")) alarms.push_back(event);
  }
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_THAT(alarms[0].text, HasSubstr("version 1"));
  EXPECT_THAT(alarms[0].text, HasSubstr("team"));
}

TEST_P(GroupGateTest, AStrangerWithAWrongHashRaisesNoAlarm) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  ChatMessage forged = Message("mallory", v1);
  forged.group_state_hash = std::string(registry::kGroupHashBytes, 'x');
  EXPECT_THAT(
      gate_->Admit(forged),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not a member")));
  for (const PeerEvent& event : EventsOf(EventKind::kError)) {
    EXPECT_THAT(event.text, Not(HasSubstr("forked")));
  }
}

TEST_P(GroupGateTest, ARemovedMembersMessagesCountUntilTheRemoval) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  // Bob removed ten minutes in.
  GroupState v2 = Change(
      v1, [](GroupState& s) { s = Without(std::move(s), "bob"); }, 10);
  ASSERT_THAT(gate_->Admit(Message("carol", v2, 11)), IsOk());
  if (!KeepsHistory(v1)) GTEST_SKIP() << "the book keeps the latest only";
  EXPECT_THAT(gate_->Admit(Message("bob", v1, 9)), IsOk());
  EXPECT_THAT(gate_->Admit(Message("bob", v1, 12)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("dated after bob was removed from team")));
  // Naming the state that removed it helps nobody.
  EXPECT_THAT(gate_->Admit(Message("bob", v2, 9)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bob is not a member of team")));
}

TEST_P(GroupGateTest, WeRemovedRefuseAllButTheOwnersNotice) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  GroupState v2 = Change(
      v1, [](GroupState& s) { s = Without(std::move(s), "alice"); }, 5);
  EXPECT_THAT(gate_->Admit(Message("bob", v2, 6)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("you are not in team")));
  EXPECT_FALSE(book_->Latest(v1.group_id)->member);
  if (!KeepsHistory(v1)) GTEST_SKIP() << "the book keeps the latest only";

  ChatMessage bobs_notice = Message("bob", v2, 6);
  bobs_notice.group_change = true;
  EXPECT_THAT(gate_->Admit(bobs_notice),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bob did not sign version 2")));

  ChatMessage notice = Message("carol", v2, 5);
  notice.group_change = true;
  absl::StatusOr<GroupVerdict> verdict = gate_->Admit(notice);
  ASSERT_THAT(verdict, IsOk());
  ASSERT_TRUE(verdict->announced.has_value());
  ASSERT_EQ(verdict->announced->removed.size(), 1u);
  EXPECT_EQ(verdict->announced->removed[0].name, "alice");
}

TEST_P(GroupGateTest, TheOwnersNoticeOfTheEndIsShownAndNothingAfter) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  GroupState v2 = Change(
      v1, [](GroupState& s) { s.ended = true; }, 5);
  ChatMessage notice = Message("carol", v2, 5);
  notice.group_change = true;
  absl::StatusOr<GroupVerdict> verdict = gate_->Admit(notice);
  ASSERT_THAT(verdict, IsOk());
  if (KeepsHistory(v1)) {
    ASSERT_TRUE(verdict->announced.has_value());
    EXPECT_TRUE(verdict->announced->ended);
  }
  EXPECT_THAT(gate_->Admit(Message("bob", v2, 6)),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("team had ended")));
}

TEST_P(GroupGateTest, AKeyOtherThanTheTrustedOneIsRefusedLoudly) {
  GroupState v1 = Create();
  const Identity other = Identity::Generate();
  keys_.Trust("bob", other.public_key());
  EXPECT_THAT(
      gate_->Admit(Message("bob", v1)),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("/trust bob")));
  std::vector<PeerEvent> errors = EventsOf(EventKind::kError);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].text, HasSubstr(ShortFingerprint(bob_.public_key())));
}

TEST_P(GroupGateTest, RefusalsAreToldAtMostOnceAMinutePerSender) {
  GroupState v1 = Create();
  ASSERT_THAT(gate_->Admit(Message("bob", v1)), IsOk());
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(gate_->Admit(Message("eve", v1, i)), Not(IsOk()));
  }
  EXPECT_EQ(EventsOf(EventKind::kInfo).size(), 1u);
  clock_.Advance(Millis(59'000));
  EXPECT_THAT(gate_->Admit(Message("EVE", v1)), Not(IsOk()));
  EXPECT_EQ(EventsOf(EventKind::kInfo).size(), 1u);
  keys_.Trust("mallory", eve_.public_key());
  EXPECT_THAT(gate_->Admit(Message("mallory", v1)), Not(IsOk()));
  EXPECT_EQ(EventsOf(EventKind::kInfo).size(), 2u);
  clock_.Advance(Millis(1'000));
  EXPECT_THAT(gate_->Admit(Message("eve", v1)), Not(IsOk()));
  std::vector<PeerEvent> told = EventsOf(EventKind::kInfo);
  ASSERT_EQ(told.size(), 3u);
  EXPECT_EQ(told[2].name, "eve");
}

TEST_P(GroupGateTest, ThreadsAdmittingAtOnceLearnTheGroupOnce) {
  GroupState v1 = Create();
  GroupState v2 = Change(
      v1, [](GroupState& s) { s.display_name = "team2"; }, 1);
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([this, i, &v2, &results] {
      results[i] = gate_->Admit(Message("bob", v2, i)).status();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& result : results) EXPECT_THAT(result, IsOk());
  ASSERT_EQ(book_->List().size(), 1u);
  EXPECT_EQ(book_->Latest(v1.group_id)->state, v2);
}

TEST_P(GroupGateTest, AnUndatedMessageOfARemovedMemberIsRefused) {
  GroupState v1 = Create();
  GroupState v2 = Change(
      v1, [](GroupState& s) { s = Without(std::move(s), "bob"); }, 10);
  ASSERT_THAT(gate_->Admit(Message("carol", v2, 11)), IsOk());
  if (!KeepsHistory(v1)) GTEST_SKIP() << "the book keeps the latest only";
  ChatMessage undated = Message("bob", v1);
  undated.sent_at = absl::InfinitePast();
  EXPECT_THAT(
      gate_->Admit(undated),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("removed")));
}

INSTANTIATE_TEST_SUITE_P(Books, GroupGateTest,
                         ::testing::Values(Book::kMemory, Book::kPeerStore),
                         [](const ::testing::TestParamInfo<Book>& param) {
                           return param.param == Book::kMemory ? "Memory"
                                                               : "PeerStore";
                         });

}  // namespace
}  // namespace chat::peer
