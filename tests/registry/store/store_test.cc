// The Store contract, run against every implementation.
//
// Where each test runs:
// - SQLite (in memory, file, file with synchronous=FULL): every test. Lease
//   expiry is driven by the FakeClock and ExpireDue().
// - etcd (when built with CHAT_ETCD and /usr/bin/etcd exists): one real etcd
//   on loopback for the whole suite, a key prefix of its own per test. etcd
//   ends leases on its own clock, so a test whose point is that moving the
//   FakeClock expires a lease skips at that point (SkipIfRealExpiry(), which
//   says so); the part before it runs. Expiry on etcd is tested with real
//   short TTLs in EtcdStoreTest below. A store "reopened" on etcd is a new
//   registry on the same prefix: leases are not ended by closing one.

#include "registry/store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/random.h"
#include "registry/store/sqlite_schema.h"
#include "registry/store/sqlite_store.h"
#ifdef CHAT_ETCD
#include "registry/etcd/etcd_store.h"
#include "tests/testing/etcd_cluster.h"
#endif
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr size_t kTestWatchBacklogBytes = 4096;
// Changes kept for resuming watches: small, so a test outruns it.
constexpr size_t kTestWatchHistory = 8;
const absl::Duration kTestReserve = absl::Hours(1);
constexpr size_t kTestQuota = 5;  // Names per key and per client.
// Static entries: room for the watch tests' 2,001 names.
constexpr size_t kTestStaticQuota = 2100;

struct StoreFactory {
  std::string name;
  bool durable;  // Whether a reopened store sees the earlier state.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const Clock&,
                                                       const TempDir&)>
      open;
  // Whether moving the FakeClock past a lease's TTL expires it (false: the
  // backend's own clock does, as etcd's).
  bool fake_expiry = true;
  size_t lease_id_size = 32;  // 128 bits, hex.
  // Whether a renewal by Register that asks a longer TTL keeps the lease
  // id (etcd cannot lengthen a lease: the name moves to a new one).
  bool longer_renewal_keeps_id = true;
};

SqliteStoreOptions TestOptions() {
  SqliteStoreOptions options;
  options.max_watch_backlog_bytes = kTestWatchBacklogBytes;
  options.watch_history = kTestWatchHistory;
  options.lease_policy.reserve = kTestReserve;
  options.name_quotas.max_per_key = kTestQuota;
  options.name_quotas.max_per_client = kTestQuota;
  options.name_quotas.max_static = kTestStaticQuota;
  return options;
}

// A key that is not a real one: the store does not check keys, the service
// checks proofs.
PublicKey TestKey(uint8_t seed) {
  PublicKey key;
  for (size_t i = 0; i < key.bytes.size(); ++i) {
    key.bytes[i] = static_cast<uint8_t>(seed + i);
  }
  return key;
}

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { store_ = Open(); }

  std::unique_ptr<Store> Open() {
    auto store = GetParam().open(clock_, dir_);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  Lease MustRegister(const std::string& name, const std::string& address,
                     Millis ttl = Millis(10000)) {
    auto lease = store_->Register({name, address, ttl, ""});
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? *lease : Lease{};
  }

  Lease MustRegisterWithKey(const std::string& name, const std::string& address,
                            const PublicKey& key, Millis ttl = Millis(10000)) {
    auto lease = store_->Register({name, address, ttl, "", key});
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? *lease : Lease{};
  }

  std::vector<WatchEvent> TakeAll(Watch& watch) { return watch.Take(1000); }

  // A registration of `name` by `key` with a chat-register-v2 proof dated
  // `proof_unix_ms` (the service checked its signature).
  static RegisterRequest ProvenRequest(const std::string& name,
                                       const std::string& address,
                                       const PublicKey& key,
                                       int64_t proof_unix_ms) {
    RegisterRequest request{name, address, Millis(10000), "", key};
    request.proof_unix_ms = proof_unix_ms;
    return request;
  }

  FakeClock clock_;
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// Skips the rest of the test when moving the FakeClock does not expire
// leases on this backend (etcd ends them on its own clock).
#define SKIP_IF_REAL_EXPIRY()                                               \
  if (!GetParam().fake_expiry)                                              \
  GTEST_SKIP() << "the rest moves the FakeClock to expire a lease; this "   \
                  "backend expires leases on its own clock (EtcdStoreTest " \
                  "tests that with real short TTLs)"

MATCHER_P3(EventIs, type, reason, name, "") {
  return arg.type == type && arg.reason == reason && arg.entry.name == name;
}

TEST_P(StoreContractTest, RegisterThenResolve) {
  Lease lease = MustRegister("alice", "127.0.0.1:5000");
  EXPECT_EQ(lease.lease_id.size(), GetParam().lease_id_size);
  EXPECT_EQ(lease.entry.ttl, Millis(10000));
  auto entry = store_->Resolve("alice");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "127.0.0.1:5000");
  EXPECT_FALSE(entry->is_static);
  EXPECT_EQ(entry->expires_in, Millis(10000));
  EXPECT_THAT(store_->Resolve("bob"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("bob")));
}

TEST_P(StoreContractTest, LeaseIdsAreUnique) {
  EXPECT_NE(MustRegister("a", "h:1").lease_id,
            MustRegister("b", "h:1").lease_id);
}

TEST_P(StoreContractTest, NamesAreCaseInsensitiveAndKeepTheirFirstSpelling) {
  Lease lease = MustRegister("Alice", "h:1");
  auto entry = store_->Resolve("ALICE");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->name, "Alice");
  EXPECT_THAT(store_->Register({"aLiCe", "h:2", Millis(0), ""}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // The holder may renew under another spelling; the first one stays.
  ASSERT_THAT(store_->Register({"alice", "h:3", Millis(0), lease.lease_id}),
              IsOk());
  EXPECT_EQ(store_->Resolve("alice")->name, "Alice");
}

TEST_P(StoreContractTest, ALiveNameIsNeverTakenOver) {
  MustRegister("alice", "h:1");
  auto second = store_->Register({"alice", "h:2", Millis(0), ""});
  EXPECT_THAT(second,
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("until")));
  auto forged = store_->Register({"alice", "h:2", Millis(0), RandomHex(16)});
  EXPECT_THAT(forged, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(store_->Resolve("alice")->address, "h:1");
}

TEST_P(StoreContractTest, TheHolderRenewsAndMoves) {
  Lease lease = MustRegister("alice", "h:1", Millis(5000));
  clock_.Advance(Millis(4000));
  auto renewed =
      store_->Register({"alice", "h:2", Millis(8000), lease.lease_id});
  ASSERT_THAT(renewed, IsOk());
  if (GetParam().longer_renewal_keeps_id) {
    EXPECT_EQ(renewed->lease_id, lease.lease_id);
  }
  EXPECT_EQ(store_->Resolve("alice")->address, "h:2");
  EXPECT_EQ(store_->Resolve("alice")->expires_in, Millis(8000));
}

TEST_P(StoreContractTest, KeepAliveChecksTheLease) {
  Lease lease = MustRegister("alice", "h:1");
  EXPECT_THAT(store_->KeepAlive("alice", RandomHex(16)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(store_->KeepAlive("alice", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->KeepAlive("nobody", lease.lease_id),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->KeepAlive("bad name", lease.lease_id),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto ttl = store_->KeepAlive("ALICE", lease.lease_id);
  ASSERT_THAT(ttl, IsOk());
  EXPECT_EQ(*ttl, Millis(10000));
}

// What KeepAliveAsync() answers, waited for.
absl::StatusOr<Millis> KeepAliveAndWait(Store& store, const std::string& name,
                                        const std::string& lease_id) {
  absl::StatusOr<Millis> answer = absl::UnknownError("not answered");
  absl::Notification answered;
  store.KeepAliveAsync(name, lease_id, [&](absl::StatusOr<Millis> ttl) {
    answer = std::move(ttl);
    answered.Notify();
  });
  answered.WaitForNotification();
  return answer;
}

TEST_P(StoreContractTest, KeepAliveAsyncAnswersAsKeepAlive) {
  Lease lease = MustRegister("alice", "h:1");
  EXPECT_THAT(KeepAliveAndWait(*store_, "alice", RandomHex(16)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(KeepAliveAndWait(*store_, "nobody", lease.lease_id),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(KeepAliveAndWait(*store_, "bad name", lease.lease_id),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto ttl = KeepAliveAndWait(*store_, "ALICE", lease.lease_id);
  ASSERT_THAT(ttl, IsOk());
  EXPECT_EQ(*ttl, Millis(10000));
}

TEST_P(StoreContractTest, ManyRenewalsAtOnceAreEachAnswered) {
  constexpr int kNames = 8;
  constexpr int kRenewalsEach = 8;
  std::vector<Lease> leases;
  for (int i = 0; i < kNames; ++i) {
    leases.push_back(MustRegister(absl::StrCat("n", i), "h:1"));
  }
  std::vector<absl::StatusOr<Millis>> answers(kNames * kRenewalsEach,
                                              absl::UnknownError("none"));
  absl::BlockingCounter answered(kNames * kRenewalsEach);
  for (int round = 0; round < kRenewalsEach; ++round) {
    for (int i = 0; i < kNames; ++i) {
      store_->KeepAliveAsync(
          absl::StrCat("n", i), leases[i].lease_id,
          [&, slot = round * kNames + i](absl::StatusOr<Millis> ttl) {
            answers[slot] = std::move(ttl);
            answered.DecrementCount();
          });
    }
  }
  answered.Wait();
  const auto renewed =
      std::count_if(answers.begin(), answers.end(),
                    [](const absl::StatusOr<Millis>& ttl) { return ttl.ok(); });
  EXPECT_EQ(renewed, kNames * kRenewalsEach);
}

TEST_P(StoreContractTest, VerifyLeaseChecksWithoutRenewing) {
  Lease lease = MustRegister("alice", "h:1", Millis(3000));
  clock_.Advance(Millis(2000));
  EXPECT_THAT(store_->VerifyLease("ALICE", lease.lease_id), IsOk());
  EXPECT_THAT(store_->VerifyLease("alice", RandomHex(16)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(store_->VerifyLease("bob", lease.lease_id),
              StatusIs(absl::StatusCode::kNotFound));
  SKIP_IF_REAL_EXPIRY();
  clock_.Advance(Millis(1000));  // Not renewed by the checks above.
  EXPECT_THAT(store_->VerifyLease("alice", lease.lease_id),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, UnregisterChecksTheLeaseAndFreesTheName) {
  Lease lease = MustRegister("alice", "h:1");
  EXPECT_THAT(store_->Unregister("alice", RandomHex(16)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(store_->Resolve("alice"), IsOk());
  EXPECT_THAT(store_->Unregister("alice", lease.lease_id), IsOk());
  EXPECT_THAT(store_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Unregister("alice", lease.lease_id),
              StatusIs(absl::StatusCode::kNotFound));
  MustRegister("alice", "h:2");
}

// The non-blocking calls answer as the blocking ones do, exactly once.
TEST_P(StoreContractTest, AsyncRegisterAndUnregisterAnswerLikeTheBlockingOnes) {
  // Collects the answers; the callbacks may come on any thread.
  struct Answers {
    absl::Mutex mu;
    std::vector<absl::StatusOr<Lease>> leases ABSL_GUARDED_BY(mu);
    std::vector<absl::Status> unregistered ABSL_GUARDED_BY(mu);
    size_t count() ABSL_LOCKS_EXCLUDED(mu) {
      absl::MutexLock lock(&mu);
      return leases.size() + unregistered.size();
    }
  } answers;
  auto on_lease = [&answers](absl::StatusOr<Lease> lease) {
    absl::MutexLock lock(&answers.mu);
    answers.leases.push_back(std::move(lease));
  };
  auto on_done = [&answers](absl::Status status) {
    absl::MutexLock lock(&answers.mu);
    answers.unregistered.push_back(std::move(status));
  };
  store_->RegisterAsync({"alice", "h:1", Millis(0), ""}, on_lease);
  store_->RegisterAsync({"ALICE", "h:2", Millis(0), ""}, on_lease);
  store_->RegisterAsync({"bad name", "h:2", Millis(0), ""}, on_lease);
  ASSERT_TRUE(chat::testing::WaitFor([&] { return answers.count() == 3; }));
  // Refusals may come first: they are known before anything is written.
  Lease lease;
  {
    absl::MutexLock lock(&answers.mu);
    EXPECT_THAT(
        answers.leases,
        UnorderedElementsAre(
            IsOk(),
            StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("until")),
            StatusIs(absl::StatusCode::kInvalidArgument)));
    for (const auto& answer : answers.leases) {
      if (answer.ok()) lease = *answer;
    }
  }
  ASSERT_EQ(lease.entry.address, "h:1");
  EXPECT_EQ(store_->Resolve("alice")->address, "h:1");
  store_->UnregisterAsync("alice", RandomHex(16), on_done);
  store_->UnregisterAsync("alice", lease.lease_id, on_done);
  store_->UnregisterAsync("alice", lease.lease_id, on_done);
  ASSERT_TRUE(chat::testing::WaitFor([&] { return answers.count() == 6; }));
  {
    absl::MutexLock lock(&answers.mu);
    EXPECT_THAT(
        answers.unregistered,
        UnorderedElementsAre(StatusIs(absl::StatusCode::kPermissionDenied),
                             IsOk(), StatusIs(absl::StatusCode::kNotFound)));
  }
  EXPECT_THAT(store_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(answers.count(), 6u);  // Each exactly once.
}

TEST_P(StoreContractTest, ALeaseLastsItsTtlAndNotAMomentLonger) {
  SKIP_IF_REAL_EXPIRY();
  MustRegister("alice", "h:1", Millis(3000));
  clock_.Advance(Millis(2999));
  EXPECT_THAT(store_->Resolve("alice"), IsOk());
  auto expired = store_->ExpireDue();
  ASSERT_THAT(expired, IsOk());
  EXPECT_THAT(*expired, IsEmpty());

  clock_.Advance(Millis(1));
  // Gone from reads at once, before the expiry loop runs.
  EXPECT_THAT(store_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->List("", 10, "").entries, IsEmpty());
  EXPECT_EQ(store_->Size(), 0u);
  expired = store_->ExpireDue();
  ASSERT_THAT(expired, IsOk());
  EXPECT_THAT(*expired, ElementsAre(Field(&Entry::name, "alice")));
}

TEST_P(StoreContractTest, KeepAliveRestartsTheTtl) {
  SKIP_IF_REAL_EXPIRY();
  Lease lease = MustRegister("alice", "h:1", Millis(3000));
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(Millis(2000));
    ASSERT_THAT(store_->KeepAlive("alice", lease.lease_id), IsOk());
  }
  clock_.Advance(Millis(2999));
  EXPECT_THAT(store_->Resolve("alice"), IsOk());
  clock_.Advance(Millis(1));
  EXPECT_THAT(store_->KeepAlive("alice", lease.lease_id),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, AnExpiredNameIsFreeForSomeoneElse) {
  SKIP_IF_REAL_EXPIRY();
  MustRegister("alice", "h:1", Millis(2000));
  clock_.Advance(Millis(2000));
  // Even before the expiry loop has run.
  Lease lease = MustRegister("ALICE", "h:2");
  EXPECT_EQ(store_->Resolve("alice")->name, "ALICE");
  EXPECT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_EQ(store_->Resolve("alice")->address, "h:2");
}

TEST_P(StoreContractTest, WallClockJumpsDoNotExpireLeases) {
  MustRegister("alice", "h:1", Millis(3000));
  clock_.JumpWall(absl::Hours(24));
  clock_.JumpWall(absl::Hours(-48));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(store_->Resolve("alice"), IsOk());
}

TEST_P(StoreContractTest, TtlsAreClampedToThePolicy) {
  LeasePolicy policy;
  EXPECT_EQ(MustRegister("a", "h:1", Millis(0)).entry.ttl, policy.default_ttl);
  EXPECT_EQ(MustRegister("b", "h:1", Millis(1)).entry.ttl, policy.min_ttl);
  EXPECT_EQ(MustRegister("c", "h:1", Millis(1) * 1000000000).entry.ttl,
            policy.max_ttl);
  EXPECT_THAT(store_->Register({"d", "h:1", Millis(-5), ""}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreContractTest, BadNamesAndAddressesChangeNothing) {
  EXPECT_THAT(store_->Register({"", "h:1", Millis(0), ""}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Register({"al ice", "h:1", Millis(0), ""}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Register({"alice", "h", Millis(0), ""}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->PutStatic("alice", "h:99999"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Resolve("-x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(store_->Size(), 0u);
}

TEST_P(StoreContractTest, StaticEntriesNeverExpireAndAreNotLeases) {
  auto entry = store_->PutStatic("LabPeer", "127.0.0.1:8000");
  ASSERT_THAT(entry, IsOk());
  EXPECT_TRUE(entry->is_static);
  clock_.Advance(Millis(1000LL * 3600 * 24 * 365));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  auto resolved = store_->Resolve("labpeer");
  ASSERT_THAT(resolved, IsOk());
  EXPECT_TRUE(resolved->is_static);
  EXPECT_EQ(resolved->expires_in, Millis(0));

  EXPECT_THAT(store_->Register({"labpeer", "h:1", Millis(0), ""}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("static")));
  EXPECT_THAT(store_->KeepAlive("labpeer", RandomHex(16)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Updating keeps the first spelling.
  ASSERT_THAT(store_->PutStatic("labpeer", "127.0.0.1:8001"), IsOk());
  EXPECT_EQ(store_->Resolve("LABPEER")->name, "LabPeer");
  EXPECT_EQ(store_->Resolve("LABPEER")->address, "127.0.0.1:8001");

  EXPECT_THAT(store_->RemoveStatic("labpeer"), IsOk());
  EXPECT_THAT(store_->RemoveStatic("labpeer"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, StaticAndLeasedEntriesDoNotOverwriteEachOther) {
  MustRegister("alice", "h:1");
  EXPECT_THAT(store_->PutStatic("alice", "h:2"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->RemoveStatic("alice"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store_->Resolve("alice")->address, "h:1");
}

TEST_P(StoreContractTest, ListFiltersByPrefixInNameOrderAndPages) {
  for (int i = 0; i < 250; ++i) {
    MustRegister(absl::StrCat("peer", 1000 + i), "h:1");
  }
  MustRegister("other", "h:1");
  ASSERT_THAT(store_->PutStatic("Peer0", "h:2"), IsOk());

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    ListPage page = store_->List("PEER", 100, token);
    for (const Entry& entry : page.entries) seen.push_back(entry.name);
    token = page.next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_THAT(seen, SizeIs(251));
  EXPECT_EQ(seen.front(), "Peer0");
  EXPECT_EQ(seen.back(), "peer1249");
  EXPECT_TRUE(std::is_sorted(seen.begin() + 1, seen.end()));

  EXPECT_THAT(store_->List("", 1000, "").entries, SizeIs(252));
  EXPECT_THAT(store_->List("nobody", 10, "").entries, IsEmpty());
  // A full last page has no next token.
  EXPECT_TRUE(store_->List("other", 1, "").next_page_token.empty());
}

TEST_P(StoreContractTest, WatchSendsTheSnapshotThenEveryChange) {
  Lease alice = MustRegister("alice", "h:1", Millis(2000));
  MustRegister("bob", "h:1");
  int ready_calls = 0;
  auto watch = store_->Subscribe("AL", [&] { ++ready_calls; });
  EXPECT_THAT(
      TakeAll(*watch),
      ElementsAre(EventIs(EventType::kPut, EventReason::kInitial, "alice"),
                  EventIs(EventType::kSynced, EventReason::kNone, "")));

  MustRegister("albert", "h:1", Millis(2000));
  MustRegister("bob2", "h:1");  // Outside the prefix.
  ASSERT_THAT(store_->Register({"alice", "h:9", Millis(2000), alice.lease_id}),
              IsOk());
  // A renewal at the same address is not a change.
  ASSERT_THAT(store_->Register({"alice", "h:9", Millis(2000), alice.lease_id}),
              IsOk());
  ASSERT_THAT(store_->KeepAlive("alice", alice.lease_id), IsOk());
  ASSERT_THAT(store_->Unregister("alice", alice.lease_id), IsOk());
  SKIP_IF_REAL_EXPIRY();
  clock_.Advance(Millis(2000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());

  auto events = TakeAll(*watch);
  EXPECT_THAT(
      events,
      ElementsAre(
          EventIs(EventType::kPut, EventReason::kRegistered, "albert"),
          EventIs(EventType::kPut, EventReason::kAddressChanged, "alice"),
          EventIs(EventType::kDelete, EventReason::kUnregistered, "alice"),
          EventIs(EventType::kDelete, EventReason::kExpired, "albert")));
  EXPECT_EQ(events[1].entry.address, "h:9");
  EXPECT_EQ(events[2].entry.address, "h:9");  // As it was before it left.
  EXPECT_GE(ready_calls, 4);
  EXPECT_THAT(watch->status(), IsOk());
}

MATCHER_P(SyncedAt, resumed, "") {
  return arg.type == EventType::kSynced && arg.resumed == resumed &&
         arg.revision > 0;
}

TEST_P(StoreContractTest, ResumeFromARevisionGetsOnlyLaterChanges) {
  Lease alice = MustRegister("alice", "h:1");
  std::vector<WatchEvent> first = TakeAll(*store_->Subscribe("", [] {}));
  ASSERT_THAT(first, ElementsAre(EventIs(EventType::kPut, EventReason::kInitial,
                                         "alice"),
                                 SyncedAt(false)));
  const int64_t synced = first.back().revision;

  MustRegister("bob", "h:2");
  MustRegister("carol", "h:3");
  ASSERT_THAT(store_->Unregister("alice", alice.lease_id), IsOk());

  // Every change after the revision, then kSynced: no snapshot.
  auto resumed = store_->Subscribe("", synced, [] {});
  std::vector<WatchEvent> events = TakeAll(*resumed);
  ASSERT_THAT(
      events,
      ElementsAre(
          EventIs(EventType::kPut, EventReason::kRegistered, "bob"),
          EventIs(EventType::kPut, EventReason::kRegistered, "carol"),
          EventIs(EventType::kDelete, EventReason::kUnregistered, "alice"),
          SyncedAt(true)));
  EXPECT_GT(events[0].revision, synced);
  EXPECT_GT(events[1].revision, events[0].revision);
  EXPECT_GT(events[2].revision, events[1].revision);
  EXPECT_GE(events[3].revision, events[2].revision);
  // From the middle: only what came after; the scope as usual.
  EXPECT_THAT(
      TakeAll(*store_->Subscribe("", events[0].revision, [] {})),
      ElementsAre(
          EventIs(EventType::kPut, EventReason::kRegistered, "carol"),
          EventIs(EventType::kDelete, EventReason::kUnregistered, "alice"),
          SyncedAt(true)));
  EXPECT_THAT(
      TakeAll(*store_->Subscribe(WatchScope::Names({"ALICE"}), synced, [] {})),
      ElementsAre(
          EventIs(EventType::kDelete, EventReason::kUnregistered, "alice"),
          SyncedAt(true)));
  // Up to date: nothing to replay.
  EXPECT_THAT(TakeAll(*store_->Subscribe("", events[3].revision, [] {})),
              ElementsAre(SyncedAt(true)));

  // Later changes follow kSynced, with later revisions.
  MustRegister("dave", "h:4");
  std::vector<WatchEvent> later = TakeAll(*resumed);
  ASSERT_THAT(later, ElementsAre(EventIs(EventType::kPut,
                                         EventReason::kRegistered, "dave")));
  EXPECT_GT(later[0].revision, events[3].revision);
  EXPECT_THAT(resumed->status(), IsOk());
}

TEST_P(StoreContractTest,
       ResumeFromARevisionTheHistoryNoLongerCoversGetsASnapshot) {
  MustRegister("alice", "h:1");
  std::vector<WatchEvent> first = TakeAll(*store_->Subscribe("", [] {}));
  ASSERT_THAT(first, SizeIs(2));
  const int64_t synced = first.back().revision;
  // More changes than the history keeps.
  for (size_t i = 0; i < kTestWatchHistory + 1; ++i) {
    ASSERT_THAT(
        store_->PutStatic(absl::StrCat("s", i), absl::StrCat("h:", i + 1)),
        IsOk());
  }
  std::vector<WatchEvent> events =
      TakeAll(*store_->Subscribe("", synced, [] {}));
  ASSERT_THAT(events, SizeIs(kTestWatchHistory + 3));
  EXPECT_THAT(events.front(),
              EventIs(EventType::kPut, EventReason::kInitial, "alice"));
  EXPECT_THAT(events.back(), SyncedAt(false));
  EXPECT_GT(events.back().revision, synced);

  // Neither is a revision ahead of the store, nor one that is no revision.
  for (int64_t revision : {events.back().revision + 1000, int64_t{-5}}) {
    SCOPED_TRACE(revision);
    std::vector<WatchEvent> fresh =
        TakeAll(*store_->Subscribe("", revision, [] {}));
    ASSERT_THAT(fresh, SizeIs(kTestWatchHistory + 3));
    EXPECT_THAT(fresh.back(), SyncedAt(false));
  }
}

TEST_P(StoreContractTest, AWatchOfASetOfNamesSeesOnlyThoseNames) {
  MustRegister("Alice", "h:1");
  MustRegister("albert", "h:1");
  MustRegister("bob", "h:1");
  int ready_calls = 0;
  // Any case, duplicates, and a name nobody holds yet.
  auto watch =
      store_->Subscribe(WatchScope::Names({"ALICE", "carol", "alice", "Bob"}),
                        [&] { ++ready_calls; });
  EXPECT_THAT(
      TakeAll(*watch),
      ElementsAre(EventIs(EventType::kPut, EventReason::kInitial, "Alice"),
                  EventIs(EventType::kPut, EventReason::kInitial, "bob"),
                  EventIs(EventType::kSynced, EventReason::kNone, "")));

  MustRegister("Carol", "h:2");
  MustRegister("carl", "h:2");                              // Not watched.
  ASSERT_THAT(store_->PutStatic("alicia", "h:3"), IsOk());  // Not watched.
  Lease dave = MustRegister("dave", "h:1");                 // Not watched.
  ASSERT_THAT(store_->Unregister("dave", dave.lease_id), IsOk());
  SKIP_IF_REAL_EXPIRY();
  clock_.Advance(Millis(10000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(
      TakeAll(*watch),
      ElementsAre(EventIs(EventType::kPut, EventReason::kRegistered, "Carol"),
                  EventIs(EventType::kDelete, EventReason::kExpired, "Alice"),
                  EventIs(EventType::kDelete, EventReason::kExpired, "bob"),
                  EventIs(EventType::kDelete, EventReason::kExpired, "Carol")));
  EXPECT_GE(ready_calls, 4);
  EXPECT_THAT(watch->status(), IsOk());
}

TEST_P(StoreContractTest, AWatchOfNamesUnderAPrefixSeesThoseUnderIt) {
  MustRegister("alice", "h:1");
  MustRegister("bob", "h:1");
  WatchScope scope = WatchScope::Names({"alice", "bob"});
  scope.prefix = "AL";
  auto watch = store_->Subscribe(scope, [] {});
  EXPECT_THAT(
      TakeAll(*watch),
      ElementsAre(EventIs(EventType::kPut, EventReason::kInitial, "alice"),
                  EventIs(EventType::kSynced, EventReason::kNone, "")));
  MustRegister("bob2", "h:1");
  MustRegister("alfred", "h:1");
  EXPECT_THAT(TakeAll(*watch), IsEmpty());
}

TEST_P(StoreContractTest, AWatcherThatFallsBehindIsEndedNotTheStore) {
  auto watch = store_->Subscribe("", [] {});
  EXPECT_THAT(TakeAll(*watch), SizeIs(1));  // kSynced.
  // Each change queues at least sizeof(WatchEvent) bytes.
  const size_t most = kTestWatchBacklogBytes / sizeof(WatchEvent) + 1;
  size_t registered = 0;
  while (watch->status().ok() && registered <= most) {
    EXPECT_LE(store_->WatchBacklogBytes(), kTestWatchBacklogBytes);
    MustRegister(absl::StrCat("peer", registered++), "h:1");
  }
  EXPECT_THAT(
      watch->status(),
      StatusIs(absl::StatusCode::kResourceExhausted,
               HasSubstr(absl::StrCat("(limit ", kTestWatchBacklogBytes / 1024,
                                      ", --max-watch-backlog-kb)"))));
  EXPECT_GT(registered, 1u);
  // Its queue is freed at once and nothing more comes.
  EXPECT_EQ(store_->WatchBacklogBytes(), 0u);
  EXPECT_THAT(TakeAll(*watch), IsEmpty());
  MustRegister("late", "h:1");
  EXPECT_THAT(TakeAll(*watch), IsEmpty());
  EXPECT_EQ(store_->WatchBacklogBytes(), 0u);
  // Other watchers are unaffected: a new one gets all, a page at a time.
  auto fresh = store_->Subscribe("", [] {});
  size_t initial = 0;
  for (std::vector<WatchEvent> page = fresh->Take(3); !page.empty();
       page = fresh->Take(3)) {
    for (const WatchEvent& event : page) {
      if (event.type == EventType::kPut) ++initial;
    }
  }
  EXPECT_EQ(initial, registered + 1);
}

TEST_P(StoreContractTest, AWatchReadsItsSnapshotAPageAtATime) {
  // 2,000 names: a watch holds none of them until they are taken.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_THAT(store_->PutStatic(absl::StrCat("n", 10000 + i), "h:1"), IsOk());
  }
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < 50; ++i) watches.push_back(store_->Subscribe("", [] {}));
  ASSERT_THAT(store_->PutStatic("n10500", "h:2"), IsOk());
  EXPECT_EQ(store_->WatchBacklogBytes(), 0u);
  for (auto& watch : watches) EXPECT_THAT(watch->Take(64), SizeIs(64));
  EXPECT_EQ(store_->WatchBacklogBytes(), 0u);
}

TEST_P(StoreContractTest,
       ChangesDuringTheSnapshotComeOnceInTheSnapshotOrAfter) {
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    ASSERT_THAT(store_->PutStatic(name, "h:1"), IsOk());
  }
  int ready_calls = 0;
  auto watch = store_->Subscribe("", [&] { ++ready_calls; });
  EXPECT_THAT(
      watch->Take(2),
      ElementsAre(EventIs(EventType::kPut, EventReason::kInitial, "a"),
                  EventIs(EventType::kPut, EventReason::kInitial, "b")));
  // Behind the cursor: queued for after kSynced.
  ASSERT_THAT(store_->PutStatic("b", "h:2"), IsOk());
  ASSERT_THAT(store_->PutStatic("aa", "h:1"), IsOk());
  ASSERT_THAT(store_->RemoveStatic("a"), IsOk());
  // Ahead of it: shown by the snapshot as it is when read.
  ASSERT_THAT(store_->PutStatic("c", "h:2"), IsOk());
  ASSERT_THAT(store_->RemoveStatic("d"), IsOk());
  ASSERT_THAT(store_->PutStatic("dd", "h:1"), IsOk());
  EXPECT_EQ(ready_calls, 0);  // The taker is still taking.
  std::vector<WatchEvent> rest = TakeAll(*watch);
  EXPECT_THAT(
      rest, ElementsAre(
                EventIs(EventType::kPut, EventReason::kInitial, "c"),
                EventIs(EventType::kPut, EventReason::kInitial, "dd"),
                EventIs(EventType::kPut, EventReason::kInitial, "e"),
                EventIs(EventType::kSynced, EventReason::kNone, ""),
                EventIs(EventType::kPut, EventReason::kAddressChanged, "b"),
                EventIs(EventType::kPut, EventReason::kRegistered, "aa"),
                EventIs(EventType::kDelete, EventReason::kUnregistered, "a")));
  ASSERT_THAT(rest, SizeIs(7));
  EXPECT_EQ(rest[0].entry.address, "h:2");
  EXPECT_EQ(rest[4].entry.address, "h:2");
  // Live now: every change is queued and announced.
  ASSERT_THAT(store_->PutStatic("f", "h:1"), IsOk());
  EXPECT_EQ(ready_calls, 1);
  EXPECT_THAT(
      TakeAll(*watch),
      ElementsAre(EventIs(EventType::kPut, EventReason::kRegistered, "f")));
}

TEST_P(StoreContractTest, AWatchOfNamesReadsItsSnapshotAPageAtATime) {
  for (const char* name : {"a", "b", "c", "d"}) {
    ASSERT_THAT(store_->PutStatic(name, "h:1"), IsOk());
  }
  auto watch =
      store_->Subscribe(WatchScope::Names({"d", "b", "x", "a"}), [] {});
  EXPECT_THAT(watch->Take(1), ElementsAre(EventIs(EventType::kPut,
                                                  EventReason::kInitial, "a")));
  ASSERT_THAT(store_->RemoveStatic("a"), IsOk());      // Behind: queued.
  ASSERT_THAT(store_->RemoveStatic("b"), IsOk());      // Ahead: not shown.
  ASSERT_THAT(store_->PutStatic("x", "h:1"), IsOk());  // Ahead: shown.
  EXPECT_THAT(TakeAll(*watch),
              ElementsAre(EventIs(EventType::kPut, EventReason::kInitial, "d"),
                          EventIs(EventType::kPut, EventReason::kInitial, "x"),
                          EventIs(EventType::kSynced, EventReason::kNone, ""),
                          EventIs(EventType::kDelete,
                                  EventReason::kUnregistered, "a")));
}

TEST_P(StoreContractTest, CancelWatchesEndsEveryWatch) {
  int ready_calls = 0;
  auto watch = store_->Subscribe("", [&] { ++ready_calls; });
  EXPECT_THAT(TakeAll(*watch), SizeIs(1));  // kSynced.
  // One still reading its snapshot is ended too; its taker sees it next.
  MustRegister("alice", "h:1");
  int reading_ready_calls = 0;
  auto reading = store_->Subscribe("", [&] { ++reading_ready_calls; });
  store_->CancelWatches();
  EXPECT_THAT(watch->status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(ready_calls, 2);  // alice, then the end.
  EXPECT_THAT(reading->status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(TakeAll(*reading), IsEmpty());
  EXPECT_EQ(reading_ready_calls, 0);
}

TEST_P(StoreContractTest, DestroyingAWatchUnsubscribes) {
  int ready_calls = 0;
  auto watch = store_->Subscribe("", [&] { ++ready_calls; });
  EXPECT_THAT(TakeAll(*watch), SizeIs(1));  // kSynced.
  watch.reset();
  MustRegister("alice", "h:1");
  EXPECT_EQ(ready_calls, 0);
}

// Bindings.

TEST_P(StoreContractTest, ARegistrationWithAKeyBindsTheNameAndEntriesShowIt) {
  const PublicKey bob = TestKey(1);
  Lease lease = MustRegisterWithKey("Bob", "h:1", bob);
  EXPECT_EQ(lease.entry.public_key, bob);
  EXPECT_EQ(store_->Resolve("bob")->public_key, bob);
  EXPECT_EQ(store_->List("", 10, "").entries.at(0).public_key, bob);
  auto watch = store_->Subscribe("", [] {});
  std::vector<WatchEvent> initial = TakeAll(*watch);
  ASSERT_THAT(initial, SizeIs(2));
  EXPECT_EQ(initial[0].entry.public_key, bob);
  auto binding = store_->GetBinding("BOB");
  ASSERT_THAT(binding, IsOk());
  EXPECT_EQ(binding->name, "Bob");
  EXPECT_EQ(binding->key, bob);
  EXPECT_TRUE(binding->online);
  EXPECT_EQ(binding->reserved_until, absl::InfiniteFuture());
  // Keyless registrations and static entries carry no key.
  MustRegister("carol", "h:2");
  EXPECT_EQ(store_->Resolve("carol")->public_key, std::nullopt);
  EXPECT_THAT(store_->GetBinding("carol"),
              StatusIs(absl::StatusCode::kNotFound));
  // The holder renews with its key; the binding stays.
  ASSERT_THAT(store_->Register({"bob", "h:3", Millis(0), lease.lease_id, bob}),
              IsOk());
  EXPECT_EQ(store_->Resolve("bob")->address, "h:3");
}

TEST_P(StoreContractTest, AnotherKeyCannotTakeABoundNameLiveOrReserved) {
  const PublicKey bob = TestKey(1);
  const PublicKey thief = TestKey(2);
  Lease lease = MustRegisterWithKey("bob", "h:1", bob, Millis(5000));
  // While bob is online.
  EXPECT_THAT(
      store_->Register({"bob", "h:666", Millis(0), "", thief}),
      StatusIs(absl::StatusCode::kPermissionDenied,
               AllOf(HasSubstr("name bob belongs to another key"),
                     HasSubstr(ShortFingerprint(bob)), HasSubstr("online"))));
  // Not even with bob's lease id: the key must match too.
  EXPECT_THAT(
      store_->Register({"bob", "h:666", Millis(0), lease.lease_id, thief}),
      StatusIs(absl::StatusCode::kPermissionDenied));
  // Nor without a key.
  EXPECT_THAT(store_->Register({"bob", "h:666", Millis(0), ""}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  SKIP_IF_REAL_EXPIRY();
  // bob goes offline: his lease expires, his name stays reserved.
  clock_.Advance(Millis(5000));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  // Refused even before the expiry loop has run.
  const absl::Time until = clock_.Wall() + kTestReserve;
  auto refused = store_->Register({"bob", "h:666", Millis(0), "", thief});
  EXPECT_THAT(
      refused,
      StatusIs(absl::StatusCode::kPermissionDenied,
               HasSubstr(absl::FormatTime("until %Y-%m-%d %H:%M UTC", until,
                                          absl::UTCTimeZone()))));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  clock_.Advance(absl::ToChronoMilliseconds(kTestReserve) - Millis(1000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(store_->Register({"bob", "h:666", Millis(0), "", thief}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(store_->Register({"bob", "h:666", Millis(0), ""}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  auto binding = store_->GetBinding("bob");
  ASSERT_THAT(binding, IsOk());
  EXPECT_FALSE(binding->online);
  EXPECT_EQ(binding->reserved_until, until);
  // bob himself comes back at any time within it.
  MustRegisterWithKey("bob", "h:2", bob);
  EXPECT_TRUE(store_->GetBinding("bob")->online);
}

TEST_P(StoreContractTest, UnregisteringStartsTheReservation) {
  const PublicKey bob = TestKey(1);
  Lease lease = MustRegisterWithKey("bob", "h:1", bob);
  ASSERT_THAT(store_->Unregister("bob", lease.lease_id), IsOk());
  auto binding = store_->GetBinding("bob");
  ASSERT_THAT(binding, IsOk());
  EXPECT_FALSE(binding->online);
  EXPECT_EQ(binding->reserved_until, clock_.Wall() + kTestReserve);
  EXPECT_THAT(
      store_->Register({"bob", "h:666", Millis(0), "", TestKey(2)}),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("until")));
}

TEST_P(StoreContractTest, WhenTheReservationEndsANewKeyMayBind) {
  SKIP_IF_REAL_EXPIRY();
  const PublicKey bob = TestKey(1);
  const PublicKey newcomer = TestKey(2);
  MustRegisterWithKey("bob", "h:1", bob, Millis(2000));
  clock_.Advance(Millis(2000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  clock_.Advance(absl::ToChronoMilliseconds(kTestReserve));
  // Over even before the expiry loop forgets it.
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  MustRegisterWithKey("bob", "h:2", newcomer);
  EXPECT_EQ(store_->GetBinding("bob")->key, newcomer);
  EXPECT_THAT(store_->Register({"bob", "h:3", Millis(0), "", bob}),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_P(StoreContractTest, AWallClockStepMovesTheEndOfAReservation) {
  const PublicKey bob = TestKey(1);
  Lease lease = MustRegisterWithKey("bob", "h:1", bob);
  ASSERT_THAT(store_->Unregister("bob", lease.lease_id), IsOk());
  clock_.JumpWall(kTestReserve + absl::Seconds(1));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, ReleaseEndsTheBindingAndTheLease) {
  const PublicKey bob = TestKey(1);
  MustRegisterWithKey("bob", "h:1", bob);
  auto watch = store_->Subscribe("", [] {});
  EXPECT_THAT(TakeAll(*watch), SizeIs(2));
  ASSERT_THAT(store_->Release("Bob"), IsOk());
  EXPECT_THAT(TakeAll(*watch),
              ElementsAre(EventIs(EventType::kDelete,
                                  EventReason::kUnregistered, "bob")));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Release("bob"), StatusIs(absl::StatusCode::kNotFound));
  MustRegisterWithKey("bob", "h:2", TestKey(2));
  // A reserved binding is released just the same.
  Lease lease = MustRegisterWithKey("carol", "h:1", TestKey(3));
  ASSERT_THAT(store_->Unregister("carol", lease.lease_id), IsOk());
  ASSERT_THAT(store_->Release("carol"), IsOk());
  MustRegister("carol", "h:2");
  EXPECT_THAT(store_->Release("nobody"), StatusIs(absl::StatusCode::kNotFound));
  watch.reset();
}

TEST_P(StoreContractTest, AStaticEntryCannotTakeABoundName) {
  Lease lease = MustRegisterWithKey("bob", "h:1", TestKey(1));
  EXPECT_THAT(store_->PutStatic("bob", "h:666"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bound to a key")));
  ASSERT_THAT(store_->Unregister("bob", lease.lease_id), IsOk());
  // Reserved: still refused.
  EXPECT_THAT(store_->PutStatic("bob", "h:666"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("chatctl release bob")));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(store_->Release("bob"), IsOk());
  EXPECT_THAT(store_->PutStatic("bob", "h:7"), IsOk());
}

// Freshness of a chat-register-v2 proof (RegisterRequest::proof_unix_ms):
// the store checks it against its wall clock and the binding's last proof,
// in the same step that registers.

TEST_P(StoreContractTest, ANewerProofIsTakenAndRecorded) {
  const PublicKey bob = TestKey(1);
  const int64_t t = absl::ToUnixMillis(clock_.Wall());
  auto lease = store_->Register(ProvenRequest("bob", "h:1", bob, t));
  ASSERT_THAT(lease, IsOk());
  // The holder moves with a later proof; one millisecond later is enough.
  RegisterRequest move = ProvenRequest("bob", "h:2", bob, t + 1);
  move.lease_id = lease->lease_id;
  ASSERT_THAT(store_->Register(move), IsOk());
  EXPECT_EQ(store_->Resolve("bob")->address, "h:2");
  // After its lease ended (reserved), a later proof takes it back.
  ASSERT_THAT(store_->Unregister("bob", lease->lease_id), IsOk());
  clock_.Advance(Millis(1000));
  ASSERT_THAT(store_->Register(ProvenRequest(
                  "bob", "h:3", bob, absl::ToUnixMillis(clock_.Wall()))),
              IsOk());
  EXPECT_EQ(store_->Resolve("bob")->address, "h:3");
}

TEST_P(StoreContractTest, AReplayedProofIsRefusedAndChangesNothing) {
  const PublicKey bob = TestKey(1);
  const RegisterRequest request =
      ProvenRequest("bob", "h:1", bob, absl::ToUnixMillis(clock_.Wall()));
  Lease lease = store_->Register(request).value_or(Lease{});
  ASSERT_FALSE(lease.lease_id.empty());
  auto watch = store_->Subscribe("", [] {});
  EXPECT_THAT(TakeAll(*watch), SizeIs(2));
  EXPECT_THAT(store_->Register(request),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("not later than the last"),
                             HasSubstr("replayed"))));
  // Also once the lease is gone: the proof stays used.
  ASSERT_THAT(store_->Unregister("bob", lease.lease_id), IsOk());
  EXPECT_THAT(TakeAll(*watch), SizeIs(1));
  EXPECT_THAT(store_->Register(request),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(TakeAll(*watch), IsEmpty());
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  watch.reset();
}

TEST_P(StoreContractTest, AnOlderProofIsRefused) {
  const PublicKey bob = TestKey(1);
  const int64_t t = absl::ToUnixMillis(clock_.Wall());
  ASSERT_THAT(store_->Register(ProvenRequest("bob", "h:1", bob, t)), IsOk());
  // Captured before the last one, sent after it: refused, saying by how much.
  EXPECT_THAT(store_->Register(ProvenRequest("bob", "h:666", bob, t - 1500)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("(1500 ms older)")));
  EXPECT_EQ(store_->Resolve("bob")->address, "h:1");
  // Another name's proofs are its own.
  EXPECT_THAT(store_->Register(ProvenRequest("carol", "h:2", bob, t - 1500)),
              IsOk());
}

TEST_P(StoreContractTest, AProofOutsideTheSkewIsRefusedSayingByHowMuch) {
  const PublicKey bob = TestKey(1);
  const int64_t now = absl::ToUnixMillis(clock_.Wall());
  const int64_t skew = absl::ToInt64Milliseconds(absl::Minutes(5));
  EXPECT_THAT(
      store_->Register(ProvenRequest("bob", "h:1", bob, now - skew - 42000)),
      StatusIs(absl::StatusCode::kUnauthenticated,
               AllOf(HasSubstr("5m42s behind the registry's clock"),
                     HasSubstr("at most 5m either way"),
                     HasSubstr("set this machine's clock right"))));
  EXPECT_THAT(
      store_->Register(ProvenRequest("bob", "h:1", bob, now + skew + 1)),
      StatusIs(absl::StatusCode::kUnauthenticated,
               HasSubstr("5m0.001s ahead of the registry's clock")));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  // At the edge of the window, either way, it is taken.
  ASSERT_THAT(store_->Register(ProvenRequest("bob", "h:1", bob, now - skew)),
              IsOk());
  ASSERT_THAT(store_->Register(ProvenRequest("dave", "h:1", bob, now + skew)),
              IsOk());
}

TEST_P(StoreContractTest, OfTwoRegistrationsWithOneProofOneSucceeds) {
  const RegisterRequest request = ProvenRequest(
      "bob", "h:1", TestKey(1), absl::ToUnixMillis(clock_.Wall()));
  absl::Mutex mu;
  std::vector<absl::Status> answers;
  // Both in flight at once: the second is decided before the first's
  // write is committed.
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      store_->RegisterAsync(request, [&](absl::StatusOr<Lease> lease) {
        absl::MutexLock lock(&mu);
        answers.push_back(lease.status());
      });
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](std::vector<absl::Status>* a) { return a->size() == 2; }, &answers));
  EXPECT_THAT(answers,
              UnorderedElementsAre(
                  IsOk(), StatusIs(absl::StatusCode::kUnauthenticated)));
}

TEST_P(StoreContractTest, AChallengeProofLeavesTheLastTimedProofStanding) {
  const PublicKey bob = TestKey(1);
  const int64_t t = absl::ToUnixMillis(clock_.Wall());
  Lease lease =
      store_->Register(ProvenRequest("bob", "h:1", bob, t)).value_or(Lease{});
  // A registration whose proof the service checked otherwise (a challenge).
  RegisterRequest v1{"bob", "h:2", Millis(0), lease.lease_id, bob};
  ASSERT_THAT(store_->Register(v1), IsOk());
  EXPECT_THAT(store_->Register(ProvenRequest("bob", "h:3", bob, t)),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_P(StoreContractTest, ReleaseKeepsTheLastProofForTheSkewWindow) {
  const PublicKey old_key = TestKey(1);
  const RegisterRequest captured =
      ProvenRequest("bob", "h:1", old_key, absl::ToUnixMillis(clock_.Wall()));
  ASSERT_THAT(store_->Register(captured), IsOk());
  clock_.Advance(Millis(1000));
  ASSERT_THAT(store_->Release("bob"), IsOk());
  // The name is free: not bound, nothing to release, any key may bind it.
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Release("bob"), StatusIs(absl::StatusCode::kNotFound));
  // But the proof captured before the release does not bind it to the old
  // key again.
  EXPECT_THAT(store_->Register(captured),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(store_->Register(captured),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Past the window the clock refuses it; the store forgets the rest.
  clock_.Advance(absl::ToChronoMilliseconds(absl::Minutes(5)));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_THAT(store_->Register(captured),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("behind the registry's clock")));
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  // A new key, or the old one with a fresh proof, may bind it.
  MustRegisterWithKey("bob", "h:2", TestKey(2));
  EXPECT_EQ(store_->GetBinding("bob")->key, TestKey(2));
}

TEST_P(StoreContractTest, ReleaseThenANewKeyThenTheOldProofIsRefused) {
  const RegisterRequest captured = ProvenRequest(
      "bob", "h:1", TestKey(1), absl::ToUnixMillis(clock_.Wall()));
  ASSERT_THAT(store_->Register(captured), IsOk());
  ASSERT_THAT(store_->Release("bob"), IsOk());
  Lease lease = MustRegisterWithKey("bob", "h:2", TestKey(2));
  EXPECT_THAT(store_->Register(captured),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(store_->Resolve("bob")->address, "h:2");
  EXPECT_FALSE(lease.lease_id.empty());
}

TEST_P(StoreContractTest, TheLastProofSurvivesAReopen) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable store";
  const RegisterRequest first = ProvenRequest(
      "bob", "h:1", TestKey(1), absl::ToUnixMillis(clock_.Wall()));
  ASSERT_THAT(store_->Register(first), IsOk());
  const RegisterRequest released = ProvenRequest(
      "carol", "h:1", TestKey(1), absl::ToUnixMillis(clock_.Wall()));
  ASSERT_THAT(store_->Register(released), IsOk());
  ASSERT_THAT(store_->Release("carol"), IsOk());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_THAT(store_->Register(first),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(store_->Register(released),
              StatusIs(absl::StatusCode::kUnauthenticated));
  RegisterRequest later = first;
  later.proof_unix_ms += 1;
  EXPECT_THAT(store_->Register(later),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_P(StoreContractTest, AProofTimeNeedsAKeyAndMustNotBeNegative) {
  RegisterRequest keyless{"bob", "h:1"};
  keyless.proof_unix_ms = absl::ToUnixMillis(clock_.Wall());
  EXPECT_THAT(store_->Register(keyless),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("public_key is required")));
  EXPECT_THAT(
      store_->Register(ProvenRequest("bob", "h:1", TestKey(1), -5)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("proof_unix_ms")));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, BindingsSurviveAReopen) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable store";
  const PublicKey alice = TestKey(1);
  const PublicKey bob = TestKey(2);
  Lease alice_lease = MustRegisterWithKey("Alice", "h:1", alice);
  Lease bob_lease = MustRegisterWithKey("bob", "h:2", bob);
  ASSERT_THAT(store_->Unregister("bob", bob_lease.lease_id), IsOk());
  const absl::Time bob_until = clock_.Wall() + kTestReserve;
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Resolve("alice")->public_key, alice);
  EXPECT_TRUE(store_->GetBinding("alice")->online);
  EXPECT_THAT(store_->KeepAlive("alice", alice_lease.lease_id), IsOk());
  auto binding = store_->GetBinding("bob");
  ASSERT_THAT(binding, IsOk());
  EXPECT_EQ(binding->key, bob);
  EXPECT_EQ(binding->reserved_until, bob_until);
  EXPECT_THAT(store_->Register({"bob", "h:666", Millis(0), "", alice}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  SKIP_IF_REAL_EXPIRY();
  // Alice's lease ends after the restart: her reservation starts then.
  clock_.Advance(Millis(10000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  EXPECT_FALSE(store_->GetBinding("alice")->online);
  EXPECT_EQ(store_->GetBinding("alice")->reserved_until,
            clock_.Wall() + kTestReserve);
}

TEST_P(StoreContractTest, AReopenedStoreKeepsEverythingAndRenewsLeases) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable store";
  Lease alice = MustRegister("Alice", "h:1", Millis(5000));
  Lease gone = MustRegister("gone", "h:1", Millis(5000));
  ASSERT_THAT(store_->Unregister("gone", gone.lease_id), IsOk());
  MustRegister("expired", "h:1", Millis(2000));
  ASSERT_THAT(store_->PutStatic("lab", "h:8000"), IsOk());
  SKIP_IF_REAL_EXPIRY();
  clock_.Advance(Millis(4000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());

  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  auto entry = store_->Resolve("alice");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->name, "Alice");
  EXPECT_EQ(entry->expires_in, Millis(5000));  // A full TTL again.
  EXPECT_THAT(store_->KeepAlive("alice", alice.lease_id), IsOk());
  EXPECT_TRUE(store_->Resolve("lab")->is_static);
  EXPECT_THAT(store_->Resolve("gone"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Resolve("expired"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->Size(), 2u);
}

// An entry says what it offers; List filters by it.
TEST_P(StoreContractTest, EntriesKeepTheServicesTheyOffer) {
  RegisterRequest peer{"alice", "h:1", Millis(5000)};
  peer.services = {"chat"};
  RegisterRequest greeter{"greeter", "h:2", Millis(5000)};
  greeter.services = {"greet", "greet"};  // Duplicates are dropped.
  ASSERT_THAT(store_->Register(peer), IsOk());
  auto lease = store_->Register(greeter);
  ASSERT_THAT(lease, IsOk());
  EXPECT_EQ(lease->entry.services, std::vector<std::string>{"greet"});
  ASSERT_THAT(store_->Register({"old", "h:3", Millis(5000)}), IsOk());
  auto lab = store_->PutStatic("lab", "h:8000");  // Static: "chat".
  ASSERT_THAT(lab, IsOk());
  EXPECT_EQ(lab->services, std::vector<std::string>{"chat"});
  ASSERT_THAT(store_->PutStatic("printer", "h:9", {"print", "scan"}), IsOk());

  EXPECT_EQ(store_->Resolve("alice")->services,
            std::vector<std::string>{"chat"});
  EXPECT_TRUE(store_->Resolve("old")->services.empty());
  EXPECT_EQ(store_->Resolve("printer")->services,
            (std::vector<std::string>{"print", "scan"}));

  // An entry that says nothing (a client older than services) counts as chat.
  ListPage chat = store_->List("", 10, "", "chat");
  std::vector<std::string> names;
  for (const Entry& entry : chat.entries) names.push_back(entry.name);
  EXPECT_EQ(names, (std::vector<std::string>{"alice", "lab", "old"}));
  EXPECT_EQ(chat.service, "chat");
  EXPECT_EQ(store_->CountOffering("chat"), 3u);
  EXPECT_EQ(store_->CountOffering("greet"), 1u);
  EXPECT_EQ(store_->CountOffering("nothing"), 0u);
  EXPECT_EQ(store_->List("", 10, "").entries.size(), 5u);

  // Pages of a filtered list are full and their tokens resume it.
  ListPage first = store_->List("", 2, "", "chat");
  ASSERT_EQ(first.entries.size(), 2u);
  ListPage second = store_->List("", 2, first.next_page_token, "chat");
  ASSERT_EQ(second.entries.size(), 1u);
  EXPECT_EQ(second.entries[0].name, "old");
  EXPECT_TRUE(second.next_page_token.empty());

  SKIP_IF_REAL_EXPIRY();
  // An expired lease leaves the count at once.
  clock_.Advance(Millis(6000));
  EXPECT_EQ(store_->CountOffering("chat"), 1u);  // lab
  EXPECT_EQ(store_->CountOffering("greet"), 0u);
}

TEST_P(StoreContractTest,
       ARenewalByRegisterReplacesTheServicesAndTellsWatchers) {
  Lease lease = MustRegister("bob", "h:1");
  EXPECT_TRUE(lease.entry.services.empty());
  auto watch = store_->Subscribe("", [] {});
  TakeAll(*watch);  // The snapshot and kSynced.
  RegisterRequest again{"bob", "h:1", Millis(10000), lease.lease_id};
  again.services = {"chat"};
  ASSERT_THAT(store_->Register(again), IsOk());
  std::vector<WatchEvent> events = TakeAll(*watch);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0],
              EventIs(EventType::kPut, EventReason::kAddressChanged, "bob"));
  EXPECT_EQ(events[0].entry.services, std::vector<std::string>{"chat"});
}

TEST_P(StoreContractTest, BadServicesAreRefusedAndChangeNothing) {
  for (std::vector<std::string> services :
       {std::vector<std::string>{"Chat"}, std::vector<std::string>{""},
        std::vector<std::string>{"has space"},
        std::vector<std::string>{std::string(33, 'a')},
        std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h",
                                 "i"}}) {
    RegisterRequest request{"alice", "h:1"};
    request.services = services;
    EXPECT_THAT(
        store_->Register(request),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("services")));
    EXPECT_THAT(store_->PutStatic("lab", "h:1", services),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(store_->Size(), 0u);
}

TEST_P(StoreContractTest, ServicesSurviveAReopen) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable store";
  RegisterRequest greeter{"greeter", "h:2", Millis(5000)};
  greeter.services = {"greet"};
  ASSERT_THAT(store_->Register(greeter), IsOk());
  MustRegister("old", "h:3");
  ASSERT_THAT(store_->PutStatic("printer", "h:9", {"print"}), IsOk());
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Resolve("greeter")->services,
            std::vector<std::string>{"greet"});
  EXPECT_TRUE(store_->Resolve("old")->services.empty());
  EXPECT_EQ(store_->Resolve("printer")->services,
            std::vector<std::string>{"print"});
  EXPECT_EQ(store_->CountOffering("chat"), 1u);
}

// One client registers 100,000 names. Each key holds at most
// max_per_key live names; others are served all the while.
TEST_P(StoreContractTest, NamesPerKeyAreBounded) {
  const PublicKey greedy = TestKey(1);
  std::vector<Lease> leases;
  for (size_t i = 0; i < kTestQuota; ++i) {
    leases.push_back(
        MustRegisterWithKey(absl::StrCat("n", i), "h:1", greedy, Millis(2000)));
  }
  EXPECT_THAT(store_->Register({"one-more", "h:1", Millis(0), "", greedy}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("too many names for key"),
                             HasSubstr("limit 5, --max-names-per-key"))));
  EXPECT_THAT(store_->Resolve("one-more"),
              StatusIs(absl::StatusCode::kNotFound));
  // Others are served; the holder still renews and moves its own.
  MustRegisterWithKey("one-more", "h:2", TestKey(2));
  EXPECT_THAT(
      store_->Register({"n0", "h:3", Millis(2000), leases[0].lease_id, greedy}),
      IsOk());
  // A name it gives up, or one that expires, makes room again.
  ASSERT_THAT(store_->Unregister("n0", leases[0].lease_id), IsOk());
  MustRegisterWithKey("again", "h:1", greedy);
  SKIP_IF_REAL_EXPIRY();
  EXPECT_THAT(store_->Register({"later", "h:1", Millis(0), "", greedy}),
              StatusIs(absl::StatusCode::kResourceExhausted));
  clock_.Advance(Millis(2000));
  ASSERT_THAT(store_->ExpireDue(), IsOk());
  MustRegisterWithKey("later", "h:1", greedy);
}

TEST_P(StoreContractTest, KeylessNamesPerClientHostAreBounded) {
  auto keyless = [](const std::string& name, const std::string& client) {
    RegisterRequest request{name, "h:1"};
    request.client = client;
    return request;
  };
  for (size_t i = 0; i < kTestQuota; ++i) {
    ASSERT_THAT(store_->Register(keyless(absl::StrCat("n", i), "10.0.0.7")),
                IsOk());
  }
  EXPECT_THAT(store_->Register(keyless("one-more", "10.0.0.7")),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("without a key from 10.0.0.7"),
                             HasSubstr("--max-names-per-client"))));
  EXPECT_THAT(store_->Register(keyless("one-more", "10.0.0.8")), IsOk());
  // A key is counted against itself, not against the host.
  RegisterRequest with_key = keyless("keyed", "10.0.0.7");
  with_key.public_key = TestKey(3);
  EXPECT_THAT(store_->Register(with_key), IsOk());
}

TEST_P(StoreContractTest, StaticEntriesAreBounded) {
  for (size_t i = 0; i < kTestStaticQuota; ++i) {
    ASSERT_THAT(store_->PutStatic(absl::StrCat("s", i), "h:1"), IsOk());
  }
  EXPECT_THAT(store_->PutStatic("one-more", "h:1"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("too many static entries"),
                             HasSubstr("limit 2100, --max-static-names"))));
  EXPECT_THAT(store_->PutStatic("s0", "h:2"), IsOk());  // An update.
  MustRegisterWithKey("peer", "h:3", TestKey(1));
  ASSERT_THAT(store_->RemoveStatic("s1"), IsOk());
  EXPECT_THAT(store_->PutStatic("one-more", "h:1"), IsOk());
}

TEST_P(StoreContractTest, NameQuotasSurviveAReopen) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable store";
  // The longest lease: on etcd the 2,100 static writes below may take longer
  // than a default lease on a loaded machine, and a lease that ran out
  // would free its quota.
  for (size_t i = 0; i < kTestQuota; ++i) {
    MustRegisterWithKey(absl::StrCat("n", i), "h:1", TestKey(1),
                        LeasePolicy{}.max_ttl);
  }
  for (size_t i = 0; i < kTestStaticQuota; ++i) {
    ASSERT_THAT(store_->PutStatic(absl::StrCat("s", i), "h:1"), IsOk());
  }
  store_.reset();
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_THAT(store_->Register({"one-more", "h:1", Millis(0), "", TestKey(1)}),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(store_->PutStatic("one-more", "h:1"),
              StatusIs(absl::StatusCode::kResourceExhausted));
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

etcd::EtcdStoreOptions TestEtcdOptions(const std::string& prefix) {
  etcd::EtcdStoreOptions options;
  if (chat::testing::EtcdCluster* cluster = SharedEtcd()) {
    options.etcd.endpoints = cluster->ClientEndpoints();
  }
  options.prefix = prefix;
  options.max_watch_backlog_bytes = kTestWatchBacklogBytes;
  options.watch_history = kTestWatchHistory;
  options.lease_policy.reserve = kTestReserve;
  options.name_quotas.max_per_key = kTestQuota;
  options.name_quotas.max_per_client = kTestQuota;
  options.name_quotas.max_static = kTestStaticQuota;
  return options;
}

// Each test its own prefix (its temporary directory's path), so tests do
// not see each other's names; a reopen uses the same one.
absl::StatusOr<std::unique_ptr<Store>> OpenTestEtcdStore(const Clock& clock,
                                                         const TempDir& dir) {
  return etcd::OpenEtcdStore(TestEtcdOptions("/test" + dir.File("")), clock);
}
#endif

std::vector<StoreFactory> AllStoreFactories() {
  std::vector<StoreFactory> factories = {
      StoreFactory{"SqliteInMemory", false,
                   [](const Clock& clock, const TempDir&) {
                     return OpenSqliteStore(":memory:", clock, TestOptions());
                   }},
      StoreFactory{"SqliteFile", true,
                   [](const Clock& clock, const TempDir& dir) {
                     return OpenSqliteStore(dir.File("registry.db"), clock,
                                            TestOptions());
                   }},
      StoreFactory{"SqliteFileSyncFull", true,
                   [](const Clock& clock, const TempDir& dir) {
                     SqliteStoreOptions options = TestOptions();
                     options.sync_full = true;
                     return OpenSqliteStore(dir.File("registry.db"), clock,
                                            options);
                   }}};
#ifdef CHAT_ETCD
  factories.push_back(StoreFactory{"Etcd", true, OpenTestEtcdStore,
                                   /*fake_expiry=*/false,
                                   /*lease_id_size=*/16 + 1 + 64,
                                   /*longer_renewal_keeps_id=*/false});
#endif
  return factories;
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, StoreContractTest, ::testing::ValuesIn(AllStoreFactories()),
    [](const ::testing::TestParamInfo<StoreFactory>& param_info) {
      return param_info.param.name;
    });

// What only the SQLite store does.

TEST(SqliteStoreTest, ASecondRegistryCannotOpenTheSameFile) {
  TempDir dir;
  FakeClock clock;
  auto first = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(OpenSqliteStore(dir.File("r.db"), clock),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("in use")));
  first->reset();
  EXPECT_THAT(OpenSqliteStore(dir.File("r.db"), clock), IsOk());
}

TEST(SqliteStoreTest, AFileFromANewerBuildIsRefused) {
  TempDir dir;
  FakeClock clock;
  {
    SQLite::Database db(dir.File("r.db"),
                        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(absl::StrCat("PRAGMA user_version = ", kSqliteSchemaVersion + 1));
  }
  EXPECT_THAT(OpenSqliteStore(dir.File("r.db"), clock),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("newer build")));
}

TEST(SqliteStoreTest, AFileThatIsNotADatabaseIsAnErrorNotACrash) {
  TempDir dir;
  FakeClock clock;
  std::ofstream(dir.File("r.db")) << std::string(4096, 'x');
  EXPECT_THAT(OpenSqliteStore(dir.File("r.db"), clock),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(SqliteStoreTest, AnUnwritableDirectoryIsAnErrorNotACrash) {
  FakeClock clock;
  EXPECT_THAT(OpenSqliteStore("/nonexistent-dir/r.db", clock),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Concurrent writes share commits (group commit); each acknowledged one must
// be in the file, whichever batch it rode in.
TEST(SqliteStoreTest, ConcurrentWritesAreAllCommitted) {
  for (bool sync_full : {false, true}) {
    SCOPED_TRACE(sync_full ? "synchronous=FULL" : "synchronous=NORMAL");
    TempDir dir;
    FakeClock clock;
    SqliteStoreOptions options;
    options.sync_full = sync_full;
    auto store = OpenSqliteStore(dir.File("r.db"), clock, options);
    ASSERT_THAT(store, IsOk());
    constexpr int kThreads = 8;
    constexpr int kPerThread = 40;
    std::vector<std::thread> threads;
    std::vector<absl::Status> failures[kThreads];
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto kept = (*store)->Register(
              {absl::StrCat("kept", t, "x", i), "h:1", Millis(60000), ""});
          auto gone = (*store)->Register(
              {absl::StrCat("gone", t, "x", i), "h:1", Millis(60000), ""});
          if (!kept.ok()) failures[t].push_back(kept.status());
          if (!gone.ok()) {
            failures[t].push_back(gone.status());
            continue;
          }
          absl::Status unregistered = (*store)->Unregister(
              absl::StrCat("gone", t, "x", i), gone->lease_id);
          if (!unregistered.ok()) failures[t].push_back(unregistered);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (const auto& thread_failures : failures) {
      EXPECT_THAT(thread_failures, IsEmpty());
    }
    EXPECT_EQ((*store)->Size(), size_t{kThreads * kPerThread});

    store->reset();
    store = OpenSqliteStore(dir.File("r.db"), clock, options);
    ASSERT_THAT(store, IsOk());
    EXPECT_EQ((*store)->Size(), size_t{kThreads * kPerThread});
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_THAT((*store)->Resolve(absl::StrCat("kept", t, "x", i)), IsOk());
        EXPECT_THAT((*store)->Resolve(absl::StrCat("gone", t, "x", i)),
                    StatusIs(absl::StatusCode::kNotFound));
      }
    }
  }
}

// Storage failures are provoked with triggers that a second connection adds
// to the file: real SQLite errors, with no hook in the store.
class SqliteStoreFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.File("r.db"), clock_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  // Makes every `operation` (INSERT, UPDATE, DELETE) of a row matching
  // `when` (on NEW or OLD) fail.
  void FailWrites(const std::string& operation, const std::string& when) {
    SQLite::Database db(dir_.File("r.db"), SQLite::OPEN_READWRITE);
    db.exec(absl::StrCat("CREATE TRIGGER fail_", operation, " BEFORE ",
                         operation, " ON names WHEN ", when,
                         " BEGIN SELECT RAISE(ABORT, 'injected failure'); "
                         "END"));
  }

  void HealWrites(const std::string& operation) {
    SQLite::Database db(dir_.File("r.db"), SQLite::OPEN_READWRITE);
    db.exec(absl::StrCat("DROP TRIGGER fail_", operation));
  }

  void Reopen() {
    store_.reset();
    auto store = OpenSqliteStore(dir_.File("r.db"), clock_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreFailureTest, AFailedRegistrationIsUndone) {
  auto watch = store_->Subscribe("", [] {});
  EXPECT_THAT(watch->Take(10), SizeIs(1));  // kSynced.
  FailWrites("INSERT", "NEW.name_key = 'bob'");
  EXPECT_THAT(
      store_->Register({"Bob", "h:1", Millis(0), ""}),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected failure")));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->Size(), 0u);
  // Watchers see only what is committed: nothing came.
  EXPECT_THAT(watch->Take(10), IsEmpty());
  // The name is free, and the store still writes.
  HealWrites("INSERT");
  ASSERT_THAT(store_->Register({"bob", "h:2", Millis(0), ""}), IsOk());
  watch.reset();  // A watch must not outlive its store.
  Reopen();
  EXPECT_EQ(store_->Resolve("BOB")->address, "h:2");
}

// A watch's snapshot shows what is committed; a write still in flight
// (here: one that will fail) is not in it, and never comes after it.
TEST_F(SqliteStoreFailureTest, AWriteThatFailsIsNeverSeenByWatchers) {
  ASSERT_THAT(store_->Register({"alice", "h:1", Millis(5000), ""}), IsOk());
  auto watch = store_->Subscribe("", [] {});
  std::vector<WatchEvent> before = watch->Take(10);
  ASSERT_THAT(before, SizeIs(2));
  FailWrites("INSERT", "NEW.name_key = 'bob'");
  EXPECT_THAT(store_->Register({"bob", "h:1", Millis(0), ""}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(watch->Take(10), IsEmpty());
  // Nor does a watch resumed from before it replay it.
  EXPECT_THAT(store_->Subscribe("", before.back().revision, [] {})->Take(10),
              ElementsAre(EventIs(EventType::kSynced, EventReason::kNone, "")));
}

TEST_F(SqliteStoreFailureTest, ARevisionFromBeforeARestartGetsASnapshot) {
  ASSERT_THAT(store_->Register({"alice", "h:1", Millis(5000), ""}), IsOk());
  int64_t synced = 0;
  {
    std::vector<WatchEvent> events = store_->Subscribe("", [] {})->Take(10);
    ASSERT_THAT(events, SizeIs(2));
    synced = events.back().revision;
  }
  Reopen();
  std::vector<WatchEvent> events =
      store_->Subscribe("", synced, [] {})->Take(10);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_THAT(events[0],
              EventIs(EventType::kPut, EventReason::kInitial, "alice"));
  EXPECT_FALSE(events[1].resumed);
  // The new epoch's revisions are all above the old ones.
  EXPECT_GT(events[1].revision, synced);
}

TEST_F(SqliteStoreFailureTest, AFailedMoveOrUnregisterIsUndone) {
  auto lease = store_->Register({"alice", "h:1", Millis(5000), ""});
  ASSERT_THAT(lease, IsOk());
  auto watch = store_->Subscribe("", [] {});
  EXPECT_THAT(watch->Take(10), SizeIs(2));  // alice, kSynced.

  FailWrites("UPDATE", "NEW.address = 'h:666'");
  EXPECT_THAT(
      store_->Register({"alice", "h:666", Millis(9000), lease->lease_id}),
      StatusIs(absl::StatusCode::kUnavailable));
  auto entry = store_->Resolve("alice");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "h:1");
  EXPECT_EQ(entry->ttl, Millis(5000));

  FailWrites("DELETE", "OLD.name_key = 'alice'");
  EXPECT_THAT(store_->Unregister("alice", lease->lease_id),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_->KeepAlive("alice", lease->lease_id), IsOk());
  EXPECT_EQ(store_->Resolve("alice")->address, "h:1");

  // Neither was committed: watchers heard of neither.
  EXPECT_THAT(watch->Take(10), IsEmpty());

  watch.reset();  // A watch must not outlive its store.
  Reopen();
  EXPECT_EQ(store_->Resolve("alice")->address, "h:1");
}

TEST_F(SqliteStoreFailureTest, AFailedExpiryIsRetriedAndReportedOnce) {
  ASSERT_THAT(store_->Register({"alice", "h:1", Millis(2000), ""}), IsOk());
  auto watch = store_->Subscribe("", [] {});
  EXPECT_THAT(watch->Take(10), SizeIs(2));
  FailWrites("DELETE", "OLD.name_key = 'alice'");
  clock_.Advance(Millis(2000));
  EXPECT_THAT(store_->ExpireDue(), StatusIs(absl::StatusCode::kUnavailable));
  // Expired all the same, for readers.
  EXPECT_THAT(store_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->Size(), 0u);
  HealWrites("DELETE");
  auto expired = store_->ExpireDue();
  ASSERT_THAT(expired, IsOk());
  EXPECT_THAT(*expired, ElementsAre(Field(&Entry::name, "alice")));
  EXPECT_THAT(
      watch->Take(10),
      ElementsAre(EventIs(EventType::kDelete, EventReason::kExpired, "alice")));
  watch.reset();  // A watch must not outlive its store.
  Reopen();
  EXPECT_THAT(store_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
}

// One failing write fails alone with those decided after it (they were
// decided on top of it); those decided before it are kept, whichever batch
// they share with it.
TEST_F(SqliteStoreFailureTest, WritesDecidedBeforeAFailedOneAreKept) {
  FailWrites("INSERT", "NEW.name_key = 'bob'");
  absl::Mutex mu;
  std::vector<std::pair<std::string, absl::Status>> outcomes;
  auto note = [&](const std::string& name) {
    return [&mu, &outcomes, name](absl::StatusOr<Lease> lease) {
      absl::MutexLock lock(&mu);
      outcomes.emplace_back(name, lease.status());
    };
  };
  for (int round = 0; round < 20; ++round) {
    const std::string a = absl::StrCat("a", round);
    const std::string c = absl::StrCat("c", round);
    store_->RegisterAsync({a, "h:1", Millis(60000), ""}, note(a));
    store_->RegisterAsync({"bob", "h:1", Millis(60000), ""}, note("bob"));
    store_->RegisterAsync({c, "h:1", Millis(60000), ""}, note(c));
    ASSERT_TRUE(chat::testing::WaitFor([&] {
      absl::MutexLock lock(&mu);
      return outcomes.size() == static_cast<size_t>(3 * (round + 1));
    }));
  }
  absl::MutexLock lock(&mu);
  size_t kept = 0;
  for (const auto& [name, status] : outcomes) {
    if (name == "bob") {
      EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable)) << name;
    } else if (name[0] == 'a') {
      EXPECT_THAT(status, IsOk()) << name;
    }
    EXPECT_EQ(store_->Resolve(name).ok(), status.ok()) << name;
    if (status.ok()) ++kept;
  }
  EXPECT_EQ(store_->Size(), kept);
  Reopen();
  EXPECT_EQ(store_->Size(), kept);
  for (const auto& [name, status] : outcomes) {
    EXPECT_EQ(store_->Resolve(name).ok(), status.ok()) << name;
  }
}

// Whatever batches the writes fall into, and whichever fail with them:
// every acknowledged write is in the file, and memory matches the file.
TEST_F(SqliteStoreFailureTest, UnderConcurrencyMemoryMatchesTheFile) {
  // Fails every tenth registration; with it, its batch and every write
  // decided after it fail too, so many others do, wherever they come.
  FailWrites("INSERT", "NEW.name_key LIKE '%3'");
  constexpr int kThreads = 6;
  constexpr int kPerThread = 40;
  auto name = [](int t, int i) { return absl::StrCat("n", t, "x", i); };
  // Whether each name should be there: registered, and not unregistered.
  std::vector<std::vector<bool>> present(kThreads,
                                         std::vector<bool>(kPerThread));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto lease = store_->Register({name(t, i), "h:1", Millis(60000), ""});
        if (!lease.ok()) continue;
        present[t][i] = true;
        if (i % 2 == 0 &&
            store_->Unregister(name(t, i), lease->lease_id).ok()) {
          present[t][i] = false;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto check = [&](const std::string& when) {
    SCOPED_TRACE(when);
    size_t count = 0;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_EQ(store_->Resolve(name(t, i)).ok(), present[t][i])
            << name(t, i);
        if (i % 10 == 3) {
          EXPECT_FALSE(present[t][i]) << name(t, i);
        }
        if (present[t][i]) ++count;
      }
    }
    EXPECT_EQ(store_->Size(), count);
  };
  check("before reopening");
  Reopen();
  check("after reopening");
}

TEST_F(SqliteStoreFailureTest, AFailedBindingWriteIsUndone) {
  const PublicKey bob = TestKey(1);
  {
    SQLite::Database db(dir_.File("r.db"), SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER fail_binding BEFORE INSERT ON bindings BEGIN SELECT "
        "RAISE(ABORT, 'injected failure'); END");
  }
  EXPECT_THAT(
      store_->Register({"bob", "h:1", Millis(0), "", bob}),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected failure")));
  EXPECT_THAT(store_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetBinding("bob"), StatusIs(absl::StatusCode::kNotFound));
  {
    SQLite::Database db(dir_.File("r.db"), SQLite::OPEN_READWRITE);
    db.exec("DROP TRIGGER fail_binding");
  }
  // A failed release keeps the binding and the lease.
  auto lease = store_->Register({"bob", "h:1", Millis(0), "", bob});
  ASSERT_THAT(lease, IsOk());
  {
    SQLite::Database db(dir_.File("r.db"), SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER fail_release BEFORE DELETE ON bindings BEGIN SELECT "
        "RAISE(ABORT, 'injected failure'); END");
  }
  EXPECT_THAT(store_->Release("bob"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store_->KeepAlive("bob", lease->lease_id), IsOk());
  EXPECT_EQ(store_->GetBinding("bob")->key, bob);
  Reopen();
  EXPECT_EQ(store_->GetBinding("bob")->key, bob);
  EXPECT_EQ(store_->Resolve("bob")->public_key, bob);
}

// A file of the schema before bindings (version 2) opens, upgraded: its
// names are kept, without keys.
TEST(SqliteStoreTest, AVersion2FileIsUpgraded) {
  TempDir dir;
  FakeClock clock;
  {
    SQLite::Database db(dir.File("r.db"),
                        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(R"sql(
      CREATE TABLE names (
        name_key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
        address TEXT NOT NULL, lease_id TEXT,
        ttl_ms INTEGER NOT NULL DEFAULT 0, updated_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE mail (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, recipient_key TEXT NOT NULL,
        id TEXT NOT NULL, kind INTEGER NOT NULL, sender TEXT NOT NULL,
        recipient TEXT NOT NULL, payload BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL, UNIQUE (recipient_key, id));
      INSERT INTO names VALUES ('lab', 'Lab', 'h:8000', NULL, 0, 1);
      INSERT INTO names VALUES ('alice', 'alice', 'h:1', 'abc', 5000, 1);
      PRAGMA user_version = 2;
    )sql");
  }
  auto store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  EXPECT_TRUE((*store)->Resolve("lab")->is_static);
  EXPECT_EQ((*store)->Resolve("alice")->public_key, std::nullopt);
  EXPECT_THAT((*store)->KeepAlive("alice", "abc"), IsOk());
  ASSERT_THAT((*store)->Register({"bob", "h:2", Millis(0), "", TestKey(1)}),
              IsOk());
  store->reset();
  store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->GetBinding("bob")->key, TestKey(1));
}

// A file from before services gets them: static entries "chat",
// leases nothing (read as chat) until they register again.
TEST(SqliteStoreTest, AVersion3FileGetsServices) {
  TempDir dir;
  FakeClock clock;
  {
    SQLite::Database db(dir.File("r.db"),
                        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(R"sql(
      CREATE TABLE names (
        name_key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
        address TEXT NOT NULL, lease_id TEXT,
        ttl_ms INTEGER NOT NULL DEFAULT 0, updated_at_ms INTEGER NOT NULL,
        public_key BLOB
      ) WITHOUT ROWID;
      CREATE TABLE mail (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, recipient_key TEXT NOT NULL,
        id TEXT NOT NULL, kind INTEGER NOT NULL, sender TEXT NOT NULL,
        recipient TEXT NOT NULL, payload BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL, UNIQUE (recipient_key, id));
      CREATE TABLE bindings (
        name_key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
        public_key BLOB NOT NULL, reserved_until_ms INTEGER,
        updated_at_ms INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO names VALUES ('lab', 'Lab', 'h:8000', NULL, 0, 1, NULL);
      INSERT INTO names VALUES ('alice', 'alice', 'h:1', 'abc', 5000, 1, NULL);
      PRAGMA user_version = 3;
    )sql");
  }
  auto store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->Resolve("lab")->services,
            std::vector<std::string>{"chat"});
  EXPECT_TRUE((*store)->Resolve("alice")->services.empty());
  EXPECT_EQ((*store)->CountOffering("chat"), 2u);
  RegisterRequest again{"alice", "h:1", Millis(5000), "abc"};
  again.services = {"chat", "greet"};
  ASSERT_THAT((*store)->Register(again), IsOk());
  store->reset();
  store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->Resolve("alice")->services,
            (std::vector<std::string>{"chat", "greet"}));
}

// A file of the schema before proof times (version 4) opens, upgraded: its
// bindings keep their keys and have no last proof (0) until a timed proof
// registers them.
TEST(SqliteStoreTest, AVersion4FileGetsLastProofTimes) {
  TempDir dir;
  FakeClock clock;
  const PublicKey bob = TestKey(1);
  {
    SQLite::Database db(dir.File("r.db"),
                        SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(R"sql(
      CREATE TABLE names (
        name_key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
        address TEXT NOT NULL, lease_id TEXT,
        ttl_ms INTEGER NOT NULL DEFAULT 0, updated_at_ms INTEGER NOT NULL,
        public_key BLOB, services TEXT
      ) WITHOUT ROWID;
      CREATE TABLE mail (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, recipient_key TEXT NOT NULL,
        id TEXT NOT NULL, kind INTEGER NOT NULL, sender TEXT NOT NULL,
        recipient TEXT NOT NULL, payload BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL, UNIQUE (recipient_key, id));
      CREATE TABLE bindings (
        name_key TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
        public_key BLOB NOT NULL, reserved_until_ms INTEGER,
        updated_at_ms INTEGER NOT NULL) WITHOUT ROWID;
      PRAGMA user_version = 4;
    )sql");
    SQLite::Statement insert(
        db, "INSERT INTO bindings VALUES ('bob', 'Bob', ?1, ?2, 1)");
    insert.bind(1, bob.bytes.data(), static_cast<int>(bob.bytes.size()));
    insert.bind(2, absl::ToUnixMillis(clock.Wall() + absl::Hours(1)));
    insert.exec();
  }
  auto store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  EXPECT_EQ((*store)->GetBinding("bob")->key, bob);
  EXPECT_THAT((*store)->Register({"bob", "h:2", Millis(0), "", TestKey(2)}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // Any fresh proof passes the empty last proof; then it is recorded.
  RegisterRequest proven{"bob", "h:1", Millis(0), "", bob};
  proven.proof_unix_ms = absl::ToUnixMillis(clock.Wall()) - 1000;
  ASSERT_THAT((*store)->Register(proven), IsOk());
  store->reset();
  {
    SQLite::Database db(dir.File("r.db"), SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(),
              kSqliteSchemaVersion);
    EXPECT_EQ(db.execAndGet("SELECT last_proof_ms FROM bindings").getInt64(),
              proven.proof_unix_ms);
  }
  store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT((*store)->Register(proven),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(SqliteStoreTest, UsesWriteAheadLogging) {
  TempDir dir;
  FakeClock clock;
  auto store = OpenSqliteStore(dir.File("r.db"), clock);
  ASSERT_THAT(store, IsOk());
  ASSERT_THAT((*store)->Register({"alice", "h:1", Millis(0), ""}), IsOk());
  EXPECT_TRUE(std::filesystem::exists(dir.File("r.db-wal")));
}

#ifdef CHAT_ETCD
// What only the etcd store does: several registries on one etcd, and
// expiry on etcd's clock (real short TTLs: etcd's minimum is a second, so
// these wait a few seconds at most, on a condition with a deadline).
class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(SharedEtcd(), nullptr);
    a_ = Open();
    b_ = Open();
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  // Another registry of the same deployment (this test's prefix).
  std::unique_ptr<Store> Open() {
    auto store = OpenTestEtcdStore(clock_, dir_);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  FakeClock clock_;
  TempDir dir_;
  std::unique_ptr<Store> a_;
  std::unique_ptr<Store> b_;
};

TEST_F(EtcdStoreTest, ANameRegisteredAtOneRegistryResolvesAtAnother) {
  ASSERT_THAT(a_->Register({"alice", "h:1", Millis(10000), ""}), IsOk());
  // Served at once where it was registered.
  EXPECT_EQ(a_->Resolve("alice")->address, "h:1");
  ASSERT_TRUE(
      chat::testing::WaitFor([&] { return b_->Resolve("alice").ok(); }));
  EXPECT_EQ(b_->Resolve("alice")->address, "h:1");
  EXPECT_EQ(b_->Size(), 1u);
}

TEST_F(EtcdStoreTest, AnotherRegistryRenewsChecksAndEndsALease) {
  auto lease = a_->Register({"alice", "h:1", Millis(10000), ""});
  ASSERT_THAT(lease, IsOk());
  // At once: b catches up with etcd before it refuses an unknown lease.
  auto ttl = b_->KeepAlive("alice", lease->lease_id);
  ASSERT_THAT(ttl, IsOk());
  EXPECT_EQ(*ttl, Millis(10000));
  EXPECT_THAT(b_->KeepAlive("alice", "0000000000000001.00"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(b_->VerifyLease("alice", lease->lease_id), IsOk());
  EXPECT_THAT(b_->Unregister("alice", lease->lease_id), IsOk());
  ASSERT_TRUE(chat::testing::WaitFor([&] {
    return a_->Resolve("alice").status().code() == absl::StatusCode::kNotFound;
  }));
  EXPECT_THAT(a_->KeepAlive("alice", lease->lease_id),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EtcdStoreTest, RacingRegistrationsOfOneNameHaveOneWinner) {
  constexpr int kNames = 20;
  std::vector<absl::StatusOr<Lease>> at_a(kNames, absl::UnknownError(""));
  std::vector<absl::StatusOr<Lease>> at_b(kNames, absl::UnknownError(""));
  std::thread racer_a([&] {
    for (int i = 0; i < kNames; ++i) {
      at_a[i] = a_->Register({absl::StrCat("n", i), "h:1", Millis(10000), ""});
    }
  });
  std::thread racer_b([&] {
    for (int i = 0; i < kNames; ++i) {
      at_b[i] = b_->Register({absl::StrCat("n", i), "h:2", Millis(10000), ""});
    }
  });
  racer_a.join();
  racer_b.join();
  for (int i = 0; i < kNames; ++i) {
    SCOPED_TRACE(absl::StrCat("n", i));
    EXPECT_NE(at_a[i].ok(), at_b[i].ok());
    const absl::StatusOr<Lease>& loser = at_a[i].ok() ? at_b[i] : at_a[i];
    EXPECT_THAT(loser, StatusIs(absl::StatusCode::kAlreadyExists));
    const std::string winner = at_a[i].ok() ? "h:1" : "h:2";
    ASSERT_TRUE(chat::testing::WaitFor([&] {
      auto at_b_now = b_->Resolve(absl::StrCat("n", i));
      return at_b_now.ok() && at_b_now->address == winner;
    }));
    EXPECT_EQ(a_->Resolve(absl::StrCat("n", i))->address, winner);
  }
}

TEST_F(EtcdStoreTest, NamesPerKeyAreCountedAcrossRegistries) {
  const PublicKey greedy = TestKey(1);
  std::vector<absl::Status> answers(2 * kTestQuota);
  std::thread racer_a([&] {
    for (size_t i = 0; i < kTestQuota; ++i) {
      answers[i] =
          a_->Register({absl::StrCat("a", i), "h:1", Millis(10000), "", greedy})
              .status();
    }
  });
  std::thread racer_b([&] {
    for (size_t i = 0; i < kTestQuota; ++i) {
      answers[kTestQuota + i] =
          b_->Register({absl::StrCat("b", i), "h:1", Millis(10000), "", greedy})
              .status();
    }
  });
  racer_a.join();
  racer_b.join();
  size_t granted = 0;
  for (const absl::Status& answer : answers) {
    if (answer.ok()) {
      ++granted;
    } else {
      EXPECT_THAT(answer, StatusIs(absl::StatusCode::kResourceExhausted));
    }
  }
  EXPECT_EQ(granted, kTestQuota);
}

// Registrations made at the same moment at one registry go to etcd in
// shared Txns (group commit): each keeps its own compares, so every rule
// holds as it does one by one.
TEST_F(EtcdStoreTest, RegistrationsMadeAtOnceKeepEveryRule) {
  constexpr int kFresh = 24;
  constexpr int kRacers = 6;
  const PublicKey greedy = TestKey(1);
  std::vector<RegisterRequest> requests;
  for (int i = 0; i < kFresh; ++i) {
    requests.push_back({absl::StrCat("fresh", i), "h:1", Millis(10000), ""});
  }
  for (int i = 0; i < kRacers; ++i) {
    requests.push_back(
        {"contested", absl::StrCat("h:", i + 1), Millis(10000), ""});
  }
  for (size_t i = 0; i < 2 * kTestQuota; ++i) {
    requests.push_back(
        {absl::StrCat("greedy", i), "h:1", Millis(10000), "", greedy});
  }
  std::vector<absl::StatusOr<Lease>> answers(requests.size(),
                                             absl::UnknownError("none"));
  absl::BlockingCounter answered(static_cast<int>(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    a_->RegisterAsync(requests[i], [&, i](absl::StatusOr<Lease> answer) {
      answers[i] = std::move(answer);
      answered.DecrementCount();
    });
  }
  answered.Wait();
  int contested_won = 0;
  size_t greedy_granted = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(requests[i].name);
    if (i < kFresh) {
      EXPECT_THAT(answers[i], IsOk());
    } else if (i < kFresh + kRacers) {
      if (answers[i].ok()) {
        ++contested_won;
      } else {
        EXPECT_THAT(answers[i], StatusIs(absl::StatusCode::kAlreadyExists));
      }
    } else if (answers[i].ok()) {
      ++greedy_granted;
    } else {
      EXPECT_THAT(answers[i], StatusIs(absl::StatusCode::kResourceExhausted));
    }
  }
  EXPECT_EQ(contested_won, 1);
  EXPECT_EQ(greedy_granted, kTestQuota);
  // All of it is in etcd: another registry sees it.
  ASSERT_TRUE(chat::testing::WaitFor(
      [&] { return b_->Size() == kFresh + 1 + kTestQuota; }));
}

// A chat-register-v2 proof is checked and recorded in the Register Txn,
// which compares the binding's revision: a proof used at one registry is
// used for all of them, even at one whose index has not seen it yet.
TEST_F(EtcdStoreTest, AProofUsedAtOneRegistryIsRefusedAtAnother) {
  RegisterRequest request{"bob", "h:1", Millis(10000), "", TestKey(1)};
  request.proof_unix_ms = absl::ToUnixMillis(clock_.Wall());
  ASSERT_THAT(a_->Register(request), IsOk());
  RegisterRequest replayed = request;
  replayed.address = "h:666";
  // At once: b's first decision may read a binding from before a's write;
  // its Txn's compare fails and the decision made again refuses.
  EXPECT_THAT(b_->Register(replayed),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("not later than the last")));
  EXPECT_EQ(b_->Resolve("bob")->address, "h:1");
  EXPECT_EQ(a_->Resolve("bob")->address, "h:1");

  // Sent to both at once: one of them takes it.
  RegisterRequest raced{"carol", "h:1", Millis(10000), "", TestKey(2)};
  raced.proof_unix_ms = absl::ToUnixMillis(clock_.Wall());
  absl::Status at_a;
  absl::Status at_b;
  std::thread racer_a([&] { at_a = a_->Register(raced).status(); });
  std::thread racer_b([&] { at_b = b_->Register(raced).status(); });
  racer_a.join();
  racer_b.join();
  EXPECT_THAT(std::vector<absl::Status>({at_a, at_b}),
              UnorderedElementsAre(
                  IsOk(), StatusIs(absl::StatusCode::kUnauthenticated)));
}

// Revisions are etcd's: a watch begun at one registry resumes at another.
TEST_F(EtcdStoreTest, AWatchBegunAtOneRegistryResumesAtAnother) {
  auto alice = a_->Register({"alice", "h:1", Millis(10000), ""});
  ASSERT_THAT(alice, IsOk());
  std::vector<WatchEvent> first = a_->Subscribe("", [] {})->Take(10);
  ASSERT_THAT(
      first,
      ElementsAre(EventIs(EventType::kPut, EventReason::kInitial, "alice"),
                  EventIs(EventType::kSynced, EventReason::kNone, "")));
  const int64_t synced = first.back().revision;
  ASSERT_THAT(a_->Register({"bob", "h:2", Millis(10000), ""}), IsOk());
  ASSERT_THAT(a_->Unregister("alice", alice->lease_id), IsOk());
  ASSERT_TRUE(chat::testing::WaitFor(
      [&] { return b_->Resolve("bob").ok() && !b_->Resolve("alice").ok(); }));
  std::vector<WatchEvent> resumed = b_->Subscribe("", synced, [] {})->Take(10);
  ASSERT_THAT(
      resumed,
      ElementsAre(
          EventIs(EventType::kPut, EventReason::kRegistered, "bob"),
          EventIs(EventType::kDelete, EventReason::kUnregistered, "alice"),
          EventIs(EventType::kSynced, EventReason::kNone, "")));
  EXPECT_TRUE(resumed.back().resumed);
  EXPECT_GT(resumed[0].revision, synced);
}

TEST_F(EtcdStoreTest, ALeaseEndsAtItsTtlAndWatchersHearItExpired) {
  auto watch = b_->Subscribe("", [] {});
  EXPECT_THAT(watch->Take(10),
              ElementsAre(EventIs(EventType::kSynced, EventReason::kNone, "")));
  ASSERT_THAT(a_->Register({"alice", "h:1", Millis(2000), ""}), IsOk());
  ASSERT_TRUE(chat::testing::WaitFor(
      [&] {
        return a_->Resolve("alice").status().code() ==
                   absl::StatusCode::kNotFound &&
               b_->Resolve("alice").status().code() ==
                   absl::StatusCode::kNotFound;
      },
      std::chrono::seconds(15)));
  EXPECT_THAT(
      watch->Take(1000),
      ElementsAre(EventIs(EventType::kPut, EventReason::kRegistered, "alice"),
                  EventIs(EventType::kDelete, EventReason::kExpired, "alice")));
  // Free for someone else.
  EXPECT_THAT(b_->Register({"alice", "h:2", Millis(10000), ""}), IsOk());
}

TEST_F(EtcdStoreTest,
       TheReservationIsWrittenEvenWhenTheGrantingRegistryIsGone) {
  const PublicKey bob = TestKey(1);
  ASSERT_THAT(a_->Register({"bob", "h:1", Millis(2000), "", bob}), IsOk());
  a_.reset();  // The registry that granted the lease closes; etcd keeps it.
  ASSERT_TRUE(chat::testing::WaitFor(
      [&] {
        auto binding = b_->GetBinding("bob");
        return binding.ok() && !binding->online &&
               binding->reserved_until != absl::InfiniteFuture();
      },
      std::chrono::seconds(15)));
  EXPECT_THAT(b_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(b_->GetBinding("bob")->reserved_until,
            clock_.Wall() + kTestReserve);
  EXPECT_THAT(b_->Register({"bob", "h:666", Millis(0), "", TestKey(2)}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  // A registry started later sees the reservation as written.
  std::unique_ptr<Store> c = Open();
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->GetBinding("bob")->online);
}
// ExpireDue on etcd forgets a binding once its reservation is over and its
// last proof is out of the skew window, as the SQLite store does: its key
// leaves etcd (GetBinding says NotFound before that already, by the rules).
TEST_F(EtcdStoreTest, AnEndedBindingIsForgottenInEtcd) {
  auto lease = a_->Register({"bob", "h:1", Millis(10000), "", TestKey(1)});
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(a_->Unregister("bob", lease->lease_id), IsOk());
  auto client = etcd::EtcdClient::Create(TestEtcdOptions("").etcd);
  ASSERT_THAT(client, IsOk());
  auto bindings_kept = [&]() -> int {
    auto read =
        (*client)->Range(etcd::RangeRequest::Prefix("/test" + dir_.File("")));
    if (!read.ok()) return -1;
    int count = 0;
    for (const etcd::KeyValue& kv : read->kvs) {
      if (absl::StrContains(kv.key, "/bindings/")) ++count;
    }
    return count;
  };
  ASSERT_EQ(bindings_kept(), 1);
  ASSERT_THAT(a_->ExpireDue(), IsOk());
  EXPECT_EQ(bindings_kept(), 1);  // Reserved still.

  clock_.Advance(absl::ToChronoMilliseconds(kTestReserve + absl::Hours(1)));
  ASSERT_THAT(a_->ExpireDue(), IsOk());
  EXPECT_EQ(bindings_kept(), 0);
  EXPECT_THAT(a_->Register({"bob", "h:2", Millis(10000), "", TestKey(2)}),
              IsOk());
}

#endif

}  // namespace
}  // namespace chat::registry
