// The GroupStore contract, run against every implementation.
//
// Where each test runs:
// - SQLite in memory, and SQLite on a file (where a reopened store must
//   find everything: states, heads and the counts the limits read).
// - etcd (when built with CHAT_ETCD): one real etcd on loopback for the
//   whole program, a key prefix of its own per test; a store "reopened" on
//   etcd is a new registry on the same prefix. What only a shared store
//   does (two registries racing for one version, for the last place) is in
//   EtcdGroupStoreTest below.

#include "registry/groups/group_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "registry/groups/sqlite_group_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

#ifdef CHAT_ETCD
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/etcd_group_store.h"
#include "tests/testing/etcd_cluster.h"
#endif

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// How the suite opens one implementation.
struct GroupStoreFactory {
  std::string name;
  // What it stores outlives the GroupStore object: open() again finds it.
  bool durable;
  // `dir` is the test's own: the SQLite file's directory, or what the etcd
  // factory makes its key prefix of.
  std::function<absl::StatusOr<std::unique_ptr<GroupStore>>(
      const TempDir& dir, const GroupStoreLimits&)>
      open;
};

constexpr char kGroup[] = "0123456789abcdef0123456789abcdef";

StoredGroupState State(const std::string& group_id, int64_t version,
                       const std::string& owner_key,
                       const std::string& bytes = "") {
  StoredGroupState state;
  state.group_id = group_id;
  state.version = version;
  state.owner_key = owner_key;
  state.state = bytes.empty() ? absl::StrCat("state ", version, " of ",
                                             group_id, " by ", owner_key)
                              : bytes;
  return state;
}

// A group id of its own for each n.
std::string GroupId(int n) { return absl::StrCat("a", n); }

std::vector<int64_t> Versions(const GroupStatesPage& page) {
  std::vector<int64_t> versions;
  for (const StoredGroupState& state : page.states) {
    versions.push_back(state.version);
  }
  return versions;
}

class GroupStoreContractTest
    : public ::testing::TestWithParam<GroupStoreFactory> {
 protected:
  GroupStoreContractTest() {
    limits_.max_groups = 6;
    limits_.max_versions_per_group = 5;
    limits_.max_state_bytes = 100;
    limits_.max_groups_per_owner = 3;
  }

  void SetUp() override { Open(); }

  void Open() {
    store_.reset();
    auto store = GetParam().open(dir_, limits_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  // Puts `state`, expecting it accepted.
  void Accept(const StoredGroupState& state) {
    auto outcome = store_->Put(state);
    ASSERT_THAT(outcome, IsOk());
    ASSERT_TRUE(outcome->accepted)
        << "version " << state.version << " of " << state.group_id
        << " was not accepted; latest " << outcome->current.version;
  }

  TempDir dir_;
  GroupStoreLimits limits_;
  std::unique_ptr<GroupStore> store_;
};

TEST_P(GroupStoreContractTest, TheFirstVersionIsAcceptedAndReadBack) {
  const StoredGroupState first = State(kGroup, 1, "alice");
  Accept(first);
  auto latest = store_->Latest(kGroup);
  ASSERT_THAT(latest, IsOk());
  EXPECT_EQ(*latest, first);
  auto page = store_->Get(kGroup, 0, 10);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->states, ElementsAre(first));
  EXPECT_EQ(page->latest_version, 1);
}

TEST_P(GroupStoreContractTest, ASecondVersionOneIsRefusedWithTheLatest) {
  const StoredGroupState first = State(kGroup, 1, "alice");
  Accept(first);
  auto again = store_->Put(State(kGroup, 1, "mallory"));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->accepted);
  EXPECT_EQ(again->current, first);
  // The same bytes again are no exception: the version is taken.
  auto same = store_->Put(first);
  ASSERT_THAT(same, IsOk());
  EXPECT_FALSE(same->accepted);
  EXPECT_EQ(same->current, first);
}

TEST_P(GroupStoreContractTest, OnlyTheNextVersionIsAccepted) {
  Accept(State(kGroup, 1, "alice"));
  const StoredGroupState second = State(kGroup, 2, "alice");
  Accept(second);
  for (int64_t version : {4, 2, 1}) {
    auto outcome = store_->Put(State(kGroup, version, "alice", "other"));
    ASSERT_THAT(outcome, IsOk());
    EXPECT_FALSE(outcome->accepted) << version;
    EXPECT_EQ(outcome->current, second) << version;
  }
  Accept(State(kGroup, 3, "alice"));
  auto page = store_->Get(kGroup, 0, 10);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Versions(*page), ElementsAre(1, 2, 3));
}

TEST_P(GroupStoreContractTest, AGroupNotHeldIsNotFound) {
  EXPECT_THAT(store_->Put(State(kGroup, 2, "alice")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Get(kGroup, 0, 10),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Latest(kGroup), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(GroupStoreContractTest, MalformedPutsAndGetsAreInvalidArguments) {
  for (const std::string& id :
       {std::string(), std::string("ABCD"), std::string("xyz"),
        std::string("ab/cd"), std::string(65, 'a')}) {
    EXPECT_THAT(store_->Put(State(id, 1, "alice")),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << id;
    EXPECT_THAT(store_->Get(id, 0, 1),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << id;
  }
  EXPECT_THAT(store_->Put(State(kGroup, 0, "alice")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Put(State(kGroup, -1, "alice")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (const char* owner : {"", "Alice", "al/ice", "-x"}) {
    EXPECT_THAT(store_->Put(State(kGroup, 1, owner)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << owner;
  }
  Accept(State(kGroup, 1, "alice"));
  EXPECT_THAT(store_->Get(kGroup, 0, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(GroupStoreContractTest, GetPagesInOrder) {
  for (int64_t version = 1; version <= 5; ++version) {
    Accept(State(kGroup, version, "alice"));
  }
  std::vector<int64_t> seen;
  int64_t after = 0;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->Get(kGroup, after, 2);
    ASSERT_THAT(page, IsOk());
    EXPECT_EQ(page->latest_version, 5);
    if (page->states.empty()) break;
    EXPECT_LE(page->states.size(), 2u);
    for (const StoredGroupState& state : page->states) {
      EXPECT_EQ(state, State(kGroup, state.version, "alice"));
      seen.push_back(state.version);
    }
    after = page->states.back().version;
  }
  EXPECT_THAT(seen, ElementsAre(1, 2, 3, 4, 5));
  auto from_before = store_->Get(kGroup, -7, 100);
  ASSERT_THAT(from_before, IsOk());
  EXPECT_THAT(Versions(*from_before), ElementsAre(1, 2, 3, 4, 5));
  auto past = store_->Get(kGroup, INT64_MAX, 100);
  ASSERT_THAT(past, IsOk());
  EXPECT_THAT(past->states, IsEmpty());
  EXPECT_EQ(past->latest_version, 5);
}

TEST_P(GroupStoreContractTest, ConcurrentPutsOfOneVersionHaveOneWinner) {
  constexpr int kThreads = 12;
  for (int64_t version = 1; version <= 3; ++version) {
    std::vector<absl::StatusOr<GroupPutOutcome>> outcomes(
        kThreads, absl::UnknownError("not run"));
    absl::Barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.Block();
        outcomes[i] = store_->Put(
            State(kGroup, version, "alice", absl::StrCat("racer ", i)));
      });
    }
    for (std::thread& thread : threads) thread.join();
    int accepted = 0;
    std::string winner;
    for (int i = 0; i < kThreads; ++i) {
      ASSERT_THAT(outcomes[i], IsOk());
      if (outcomes[i]->accepted) {
        ++accepted;
        winner = absl::StrCat("racer ", i);
      }
    }
    ASSERT_EQ(accepted, 1) << "version " << version;
    for (int i = 0; i < kThreads; ++i) {
      if (!outcomes[i]->accepted) {
        EXPECT_EQ(outcomes[i]->current.state, winner);
        EXPECT_EQ(outcomes[i]->current.version, version);
      }
    }
    auto latest = store_->Latest(kGroup);
    ASSERT_THAT(latest, IsOk());
    EXPECT_EQ(latest->state, winner);
  }
}

TEST_P(GroupStoreContractTest, AStateTooLargeIsRefusedAndNothingStored) {
  auto outcome = store_->Put(State(kGroup, 1, "alice", std::string(101, 'x')));
  EXPECT_THAT(outcome,
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("(limit 100, --max-group-state-kb)")));
  EXPECT_THAT(store_->Latest(kGroup), StatusIs(absl::StatusCode::kNotFound));
  Accept(State(kGroup, 1, "alice", std::string(100, 'x')));
}

TEST_P(GroupStoreContractTest, AGroupTakesNoVersionPastTheLimit) {
  for (int64_t version = 1; version <= 5; ++version) {
    Accept(State(kGroup, version, "alice"));
  }
  EXPECT_THAT(store_->Put(State(kGroup, 6, "alice")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("(limit 5, --max-group-versions)")));
  auto latest = store_->Latest(kGroup);
  ASSERT_THAT(latest, IsOk());
  EXPECT_EQ(latest->version, 5);
  // Another version than the next is still answered with the latest.
  auto stale = store_->Put(State(kGroup, 3, "alice"));
  ASSERT_THAT(stale, IsOk());
  EXPECT_FALSE(stale->accepted);
  EXPECT_EQ(stale->current.version, 5);
}

TEST_P(GroupStoreContractTest, GroupsInAllAreLimited) {
  const std::vector<std::string> owners = {"a", "b", "c"};
  for (int i = 0; i < 6; ++i) Accept(State(GroupId(i), 1, owners[i % 3]));
  EXPECT_THAT(store_->Put(State(GroupId(6), 1, "d")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("(limit 6, --max-groups)")));
  EXPECT_THAT(store_->Latest(GroupId(6)),
              StatusIs(absl::StatusCode::kNotFound));
  // Ended groups stay, and count: their states are kept.
  StoredGroupState end = State(GroupId(0), 2, "a");
  end.ended = true;
  Accept(end);
  EXPECT_THAT(store_->Put(State(GroupId(6), 1, "d")),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Groups held take their next versions all the same.
  Accept(State(GroupId(1), 2, "b"));
}

TEST_P(GroupStoreContractTest, GroupsPerOwnerAreLimitedUntilOneEnds) {
  for (int i = 0; i < 3; ++i) Accept(State(GroupId(i), 1, "alice"));
  EXPECT_THAT(store_->Put(State(GroupId(3), 1, "alice")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("(limit 3, --max-groups-per-owner)")));
  EXPECT_THAT(store_->Latest(GroupId(3)),
              StatusIs(absl::StatusCode::kNotFound));
  // Someone else is not held back, and alice changes what she owns.
  Accept(State(GroupId(4), 1, "bob"));
  Accept(State(GroupId(0), 2, "alice"));
  // Handed over to alice, who has no room: refused, and still bob's.
  EXPECT_THAT(store_->Put(State(GroupId(4), 2, "alice")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("--max-groups-per-owner")));
  auto bobs = store_->Latest(GroupId(4));
  ASSERT_THAT(bobs, IsOk());
  EXPECT_EQ(bobs->version, 1);
  // Ending one frees a place; handing one over frees one too.
  StoredGroupState end = State(GroupId(0), 3, "alice");
  end.ended = true;
  Accept(end);
  Accept(State(GroupId(3), 1, "alice"));
  Accept(State(GroupId(1), 2, "bob"));
  Accept(State(GroupId(4), 2, "alice"));
}

TEST_P(GroupStoreContractTest, AnEndedGroupTakesNoFurtherVersion) {
  Accept(State(kGroup, 1, "alice"));
  StoredGroupState end = State(kGroup, 2, "alice");
  end.ended = true;
  Accept(end);
  EXPECT_THAT(
      store_->Put(State(kGroup, 3, "alice")),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ended")));
  auto stale = store_->Put(State(kGroup, 2, "alice"));
  ASSERT_THAT(stale, IsOk());
  EXPECT_FALSE(stale->accepted);
  EXPECT_EQ(stale->current, end);
}

TEST_P(GroupStoreContractTest, AReopenedStoreKeepsStatesAndCounts) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable store";
  for (int64_t version = 1; version <= 3; ++version) {
    Accept(State(kGroup, version, "alice"));
  }
  for (int i = 0; i < 2; ++i) Accept(State(GroupId(i), 1, "alice"));
  for (int i = 2; i < 4; ++i) Accept(State(GroupId(i), 1, "bob"));
  Open();
  auto page = store_->Get(kGroup, 0, 10);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(Versions(*page), ElementsAre(1, 2, 3));
  EXPECT_EQ(page->states[1], State(kGroup, 2, "alice"));
  auto again = store_->Put(State(kGroup, 3, "alice", "after the reopen"));
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->accepted);
  EXPECT_THAT(store_->Put(State(GroupId(9), 1, "alice")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("--max-groups-per-owner")));
  Accept(State(GroupId(9), 1, "carol"));  // The 6th group in all.
  EXPECT_THAT(store_->Put(State(GroupId(10), 1, "carol")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("--max-groups)")));
}

TEST(GroupStoreLimitsTest, LimitsAStoreCannotKeepAreRefusedAtOpen) {
  GroupStoreLimits limits;
  limits.max_state_bytes = kMaxGroupStateBytesCap + 1;
  EXPECT_THAT(OpenSqliteGroupStore(":memory:", limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_state_bytes")));
  limits = GroupStoreLimits();
  limits.max_groups = 0;
  EXPECT_THAT(OpenSqliteGroupStore(":memory:", limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SqliteGroupStoreTest, LivesInAFileOfItsOwnThatOneRegistryHolds) {
  EXPECT_EQ(GroupStorePath("/var/lib/chat/registry.db"),
            "/var/lib/chat/registry.groups.db");
  EXPECT_EQ(GroupStorePath(":memory:"), ":memory:");
  TempDir dir;
  auto first = OpenSqliteGroupStore(dir.File("registry.db"));
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(OpenSqliteGroupStore(dir.File("registry.db")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("in use")));
}

#ifdef CHAT_ETCD
// One etcd for the whole test program (starting one takes a second or
// two), started from the test thread on first use and stopped at exit.
chat::testing::EtcdCluster* SharedEtcd() {
  static std::unique_ptr<chat::testing::EtcdCluster> cluster = [] {
    auto started = chat::testing::EtcdCluster::Start();
    EXPECT_THAT(started, IsOk());
    return started.ok() ? *std::move(started) : nullptr;
  }();
  return cluster.get();
}

// A client of its own: what another registry process would have.
std::unique_ptr<etcd::EtcdClient> NewEtcdClient() {
  etcd::EtcdConfig config;
  if (chat::testing::EtcdCluster* cluster = SharedEtcd()) {
    config.endpoints = cluster->ClientEndpoints();
  }
  auto client = etcd::EtcdClient::Create(config);
  EXPECT_THAT(client, IsOk());
  return client.ok() ? *std::move(client) : nullptr;
}

// Each test its own root (its temporary directory's path), so tests do
// not see each other's groups; a reopen uses the same one.
std::string TestRoot(const TempDir& dir) {
  return absl::StrCat("/test", dir.File(""), "/groups/");
}

etcd::EtcdClient* SharedEtcdClient() {
  static std::unique_ptr<etcd::EtcdClient> client = NewEtcdClient();
  return client.get();
}
#endif

std::vector<GroupStoreFactory> AllGroupStoreFactories() {
  std::vector<GroupStoreFactory> factories = {
      GroupStoreFactory{"SqliteInMemory", false,
                        [](const TempDir&, const GroupStoreLimits& limits) {
                          return OpenSqliteGroupStore(":memory:", limits);
                        }},
      GroupStoreFactory{"SqliteFile", true,
                        [](const TempDir& dir, const GroupStoreLimits& limits) {
                          return OpenSqliteGroupStore(dir.File("registry.db"),
                                                      limits);
                        }}};
#ifdef CHAT_ETCD
  factories.push_back(
      GroupStoreFactory{"Etcd", true,
                        [](const TempDir& dir, const GroupStoreLimits& limits)
                            -> absl::StatusOr<std::unique_ptr<GroupStore>> {
                          if (SharedEtcdClient() == nullptr) {
                            return absl::UnavailableError("no etcd");
                          }
                          return etcd::OpenEtcdGroupStore(
                              SharedEtcdClient(), TestRoot(dir), limits);
                        }});
#endif
  return factories;
}

INSTANTIATE_TEST_SUITE_P(
    AllGroupStores, GroupStoreContractTest,
    ::testing::ValuesIn(AllGroupStoreFactories()),
    [](const ::testing::TestParamInfo<GroupStoreFactory>& param_info) {
      return param_info.param.name;
    });

#ifdef CHAT_ETCD
// Two registries on one etcd, each with its own client, as two processes.
class EtcdGroupStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    limits_.max_groups = 8;
    limits_.max_versions_per_group = 1000;
    limits_.max_groups_per_owner = 1000;
    client_a_ = NewEtcdClient();
    client_b_ = NewEtcdClient();
    ASSERT_NE(client_a_, nullptr);
    ASSERT_NE(client_b_, nullptr);
    auto a = etcd::OpenEtcdGroupStore(client_a_.get(), TestRoot(dir_), limits_);
    ASSERT_THAT(a, IsOk());
    a_ = *std::move(a);
    auto b = etcd::OpenEtcdGroupStore(client_b_.get(), TestRoot(dir_), limits_);
    ASSERT_THAT(b, IsOk());
    b_ = *std::move(b);
  }

  TempDir dir_;
  GroupStoreLimits limits_;
  std::unique_ptr<etcd::EtcdClient> client_a_;
  std::unique_ptr<etcd::EtcdClient> client_b_;
  std::unique_ptr<GroupStore> a_;
  std::unique_ptr<GroupStore> b_;
};

TEST_F(EtcdGroupStoreTest, TwoRegistriesRacingHaveOneWinnerPerVersion) {
  constexpr int64_t kVersions = 30;
  int wins_a = 0;
  int wins_b = 0;
  for (int64_t version = 1; version <= kVersions; ++version) {
    absl::StatusOr<GroupPutOutcome> at_a = absl::UnknownError("not run");
    absl::StatusOr<GroupPutOutcome> at_b = absl::UnknownError("not run");
    absl::Barrier start(2);
    std::thread racer_a([&] {
      start.Block();
      at_a = a_->Put(State(kGroup, version, "alice", "from a"));
    });
    std::thread racer_b([&] {
      start.Block();
      at_b = b_->Put(State(kGroup, version, "alice", "from b"));
    });
    racer_a.join();
    racer_b.join();
    ASSERT_THAT(at_a, IsOk());
    ASSERT_THAT(at_b, IsOk());
    ASSERT_NE(at_a->accepted, at_b->accepted) << "version " << version;
    const std::string winner = at_a->accepted ? "from a" : "from b";
    (at_a->accepted ? wins_a : wins_b)++;
    const GroupPutOutcome& loser = at_a->accepted ? *at_b : *at_a;
    EXPECT_EQ(loser.current.version, version);
    EXPECT_EQ(loser.current.state, winner);
    for (GroupStore* store : {a_.get(), b_.get()}) {
      auto latest = store->Latest(kGroup);
      ASSERT_THAT(latest, IsOk());
      EXPECT_EQ(latest->state, winner);
    }
  }
  EXPECT_EQ(wins_a + wins_b, kVersions);
  auto page = b_->Get(kGroup, 0, 100);
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->states.size(), static_cast<size_t>(kVersions));
}

TEST_F(EtcdGroupStoreTest, TheLastPlacesAreCountedAcrossRegistries) {
  // Each registry tries to make 8 groups at once; 8 fit in all.
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  auto make = [&](GroupStore* store, int first) {
    for (int i = first; i < first + 8; ++i) {
      auto outcome = store->Put(State(GroupId(i), 1, absl::StrCat("o", i)));
      if (outcome.ok() && outcome->accepted) {
        ++accepted;
      } else if (outcome.status().code() ==
                 absl::StatusCode::kResourceExhausted) {
        ++refused;
      } else {
        ADD_FAILURE() << outcome.status();
      }
    }
  };
  std::thread at_a(make, a_.get(), 0);
  std::thread at_b(make, b_.get(), 100);
  at_a.join();
  at_b.join();
  EXPECT_EQ(accepted.load(), 8);
  EXPECT_EQ(refused.load(), 8);
  int held = 0;
  for (int i : {0, 100}) {
    for (int j = i; j < i + 8; ++j) held += a_->Latest(GroupId(j)).ok() ? 1 : 0;
  }
  EXPECT_EQ(held, 8);
}

TEST_F(EtcdGroupStoreTest, AnOwnersGroupsAreCountedAcrossRegistries) {
  limits_.max_groups_per_owner = 3;
  auto a = etcd::OpenEtcdGroupStore(client_a_.get(), TestRoot(dir_), limits_);
  ASSERT_THAT(a, IsOk());
  a_ = *std::move(a);
  auto b = etcd::OpenEtcdGroupStore(client_b_.get(), TestRoot(dir_), limits_);
  ASSERT_THAT(b, IsOk());
  b_ = *std::move(b);
  std::atomic<int> accepted{0};
  auto make = [&](GroupStore* store, int first) {
    for (int i = first; i < first + 3; ++i) {
      auto outcome = store->Put(State(GroupId(i), 1, "alice"));
      if (outcome.ok() && outcome->accepted) ++accepted;
    }
  };
  std::thread at_a(make, a_.get(), 0);
  std::thread at_b(make, b_.get(), 10);
  at_a.join();
  at_b.join();
  EXPECT_EQ(accepted.load(), 3);
}
#endif

}  // namespace
}  // namespace chat::registry
