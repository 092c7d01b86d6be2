// The etcd client layer against a real etcd on loopback (tests/testing/
// etcd_cluster.h): KV, transactions decided by their compares, leases and
// the shared keep-alive stream, watches from a revision and after a
// compaction. Short TTLs (etcd's minimum is about a second); no timed
// assertion: waits are on conditions, with generous deadlines.

#include "registry/etcd/etcd_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "registry/etcd/etcd_keep_alive.h"
#include "registry/etcd/etcd_lease_pool.h"
#include "registry/etcd/etcd_watch.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::registry::etcd {
namespace {

using ::chat::testing::EtcdCluster;
using ::chat::testing::EtcdClusterOptions;
using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::WaitFor;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

// The next batch of `watch`, or kDeadlineExceeded after `timeout` (the
// watch is then cancelled): a broken etcd fails the test, never hangs it.
absl::StatusOr<WatchBatch> NextWithin(
    EtcdWatch& watch, std::chrono::seconds timeout = std::chrono::seconds(20)) {
  absl::Notification done;
  std::atomic<bool> fired{false};
  std::thread watchdog([&] {
    if (!done.WaitForNotificationWithTimeout(absl::FromChrono(timeout))) {
      fired = true;
      watch.Cancel();
    }
  });
  auto batch = watch.Next();
  done.Notify();
  watchdog.join();
  if (fired) return absl::DeadlineExceededError("no watch batch in time");
  return batch;
}

// Batches from `watch` until `count` events came (progress batches skipped).
absl::StatusOr<std::vector<WatchEvent>> Events(EtcdWatch& watch, size_t count) {
  std::vector<WatchEvent> events;
  while (events.size() < count) {
    auto batch = NextWithin(watch);
    if (!batch.ok()) return batch.status();
    for (WatchEvent& event : batch->events) events.push_back(event);
  }
  return events;
}

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = EtcdCluster::Start();
    ASSERT_THAT(cluster, IsOk());
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    EtcdConfig config;
    config.endpoints = cluster_->ClientEndpoints();
    auto client = EtcdClient::Create(config);
    ASSERT_THAT(client, IsOk());
    client_ = std::move(*client);
    // Each test its own keys, on the one etcd the suite shares.
    prefix_ = absl::StrCat(
        "/test/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }

  std::string Key(const std::string& name) const { return prefix_ + name; }

  static EtcdCluster* cluster_;
  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;
};

EtcdCluster* EtcdClientTest::cluster_ = nullptr;

TEST(EtcdHelpersTest, PrefixEndIncrementsTheLastByteBelowFf) {
  EXPECT_EQ(PrefixEnd("/names/"), "/names0");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd("\xff\xff"), std::string(1, '\0'));
}

TEST(EtcdHelpersTest, ParseEndpointsTakesListsAndRefusesJunk) {
  auto endpoints = ParseEndpoints(" a:2379, http://b:2380 ,,[::1]:2379");
  ASSERT_THAT(endpoints, IsOk());
  EXPECT_THAT(*endpoints, ElementsAre("a:2379", "b:2380", "[::1]:2379"));
  EXPECT_THAT(ParseEndpoints(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEndpoints("host"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEndpoints("host:99999"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// What chatctl and a peer show of a full etcd: a sentence that says the
// registry's storage is full and what the operator does, not etcd's words
// alone; etcd's words stay at the end for the logs.
TEST(EtcdHelpersTest, NoSpaceSaysTheStorageIsFullAndWhatToDo) {
  absl::Status full = FromEtcdStatus(
      8, "etcdserver: mvcc: database space exceeded", "etcd Txn");
  EXPECT_THAT(full,
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(StartsWith("the registry's storage is full"),
                             HasSubstr("etcdctl alarm disarm"),
                             HasSubstr("docs/cluster.md"),
                             EndsWith("(etcd Txn: etcdserver: mvcc: database "
                                      "space exceeded)"))));
  // etcd's other kResourceExhausted is no full storage.
  absl::Status busy =
      FromEtcdStatus(8, "etcdserver: too many requests", "etcd Put");
  EXPECT_THAT(busy, StatusIs(absl::StatusCode::kResourceExhausted,
                             Eq("etcd Put: etcdserver: too many requests")));
}

TEST(EtcdHelpersTest, EtcdErrorsMapToOurCodes) {
  // gRPC codes as etcd sends them (rpctypes): NOSPACE, no leader, request
  // timed out, a compacted revision, a missing lease, a request too large.
  EXPECT_THAT(
      FromEtcdStatus(8, "etcdserver: mvcc: database space exceeded",
                     "etcd Put"),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("etcd Put: ")));
  EXPECT_THAT(FromEtcdStatus(14, "etcdserver: no leader", "x"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(FromEtcdStatus(4, "deadline", "x"),
              StatusIs(absl::StatusCode::kUnavailable));
  absl::Status compacted = FromEtcdStatus(
      11, "etcdserver: mvcc: required revision has been compacted", "x");
  EXPECT_THAT(compacted, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_TRUE(IsCompacted(compacted));
  absl::Status future = FromEtcdStatus(
      11, "etcdserver: mvcc: required revision is a future revision", "x");
  EXPECT_THAT(future, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(IsCompacted(future));
  EXPECT_THAT(FromEtcdStatus(5, "etcdserver: requested lease not found", "x"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(FromEtcdStatus(3, "etcdserver: request is too large", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FromEtcdStatus(0, "", "x"), IsOk());
  EXPECT_EQ(CompactRevision(CompactedError("c", 42)), 42);
}

TEST_F(EtcdClientTest, PutRangeDelete) {
  auto first = client_->Put(Key("a"), "1");
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(client_->Put(Key("b"), "2"), IsOk());
  ASSERT_THAT(client_->Put(prefix_ + "c/deeper", "3"), IsOk());

  auto one = client_->Range(RangeRequest::Key(Key("a")));
  ASSERT_THAT(one, IsOk());
  ASSERT_THAT(one->kvs, SizeIs(1));
  EXPECT_EQ(one->kvs[0].value, "1");
  EXPECT_EQ(one->kvs[0].create_revision, *first);
  EXPECT_EQ(one->kvs[0].mod_revision, *first);
  EXPECT_GE(one->revision, *first);

  RangeRequest all = RangeRequest::Prefix(prefix_);
  all.serializable = true;
  auto listed = client_->Range(all);
  ASSERT_THAT(listed, IsOk());
  ASSERT_THAT(listed->kvs, SizeIs(3));
  EXPECT_EQ(listed->kvs[0].key, Key("a"));  // Sorted by key.
  EXPECT_EQ(listed->count, 3);

  RangeRequest limited = RangeRequest::Prefix(prefix_);
  limited.limit = 2;
  auto page = client_->Range(limited);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->kvs, SizeIs(2));
  EXPECT_TRUE(page->more);

  auto deleted = client_->DeleteRange(prefix_, PrefixEnd(prefix_));
  ASSERT_THAT(deleted, IsOk());
  EXPECT_EQ(*deleted, 3);
  auto none = client_->Range(RangeRequest::Prefix(prefix_));
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(none->kvs, SizeIs(0));
}

// "One name, one holder": many writers race to create one key; the compare
// on its create revision lets exactly one win, and every loser is told the
// winner in the same round trip.
TEST_F(EtcdClientTest, CreateIfAbsentRaceHasOneWinner) {
  constexpr int kWriters = 8;
  std::vector<std::thread> writers;
  absl::Mutex mu;
  std::vector<std::string> winners;
  std::vector<std::string> told;
  std::vector<absl::Status> errors;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      TxnRequest txn;
      txn.compares.push_back(Compare::Absent(Key("name")));
      txn.success.push_back(Op::Put(Key("name"), absl::StrCat("key-", i)));
      txn.failure.push_back(Op::Get(Key("name")));
      auto result = client_->Txn(txn);
      absl::MutexLock lock(&mu);
      if (!result.ok()) {
        errors.push_back(result.status());
      } else if (result->succeeded) {
        winners.push_back(absl::StrCat("key-", i));
      } else if (result->results.size() == 1 &&
                 result->results[0].kvs.size() == 1) {
        told.push_back(result->results[0].kvs[0].value);
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  ASSERT_THAT(errors, SizeIs(0));
  ASSERT_THAT(winners, SizeIs(1));
  EXPECT_THAT(told, SizeIs(kWriters - 1));
  for (const std::string& holder : told) EXPECT_EQ(holder, winners[0]);
}

// Read-modify-write by mod revision: a write based on a stale read fails.
TEST_F(EtcdClientTest, StaleModRevisionLosesAndValueCompareHolds) {
  auto created = client_->Put(Key("counter"), "1");
  ASSERT_THAT(created, IsOk());
  ASSERT_THAT(client_->Put(Key("counter"), "2"), IsOk());  // Someone else.

  TxnRequest stale;
  stale.compares.push_back(Compare::ModifiedAt(Key("counter"), *created));
  stale.success.push_back(Op::Put(Key("counter"), "from-stale"));
  auto lost = client_->Txn(stale);
  ASSERT_THAT(lost, IsOk());
  EXPECT_FALSE(lost->succeeded);

  TxnRequest by_value;
  by_value.compares.push_back(Compare::ValueIs(Key("counter"), "2"));
  by_value.compares.push_back(Compare::CreatedAt(Key("counter"), *created));
  by_value.success.push_back(Op::Put(Key("counter"), "3"));
  auto won = client_->Txn(by_value);
  ASSERT_THAT(won, IsOk());
  EXPECT_TRUE(won->succeeded);
  auto now = client_->Range(RangeRequest::Key(Key("counter")));
  ASSERT_THAT(now, IsOk());
  ASSERT_THAT(now->kvs, SizeIs(1));
  EXPECT_EQ(now->kvs[0].value, "3");
  EXPECT_EQ(now->kvs[0].mod_revision, won->revision);
}

TEST_F(EtcdClientTest, TxnOnAMissingLeaseIsNotFound) {
  TxnRequest txn;
  txn.success.push_back(Op::Put(Key("x"), "v", /*lease=*/0x7eadbeef));
  EXPECT_THAT(client_->Txn(txn), StatusIs(absl::StatusCode::kNotFound));
}

// Expiry is etcd's: a lease nobody renews ends, and its key goes with a
// DELETE event that any watcher sees.
TEST_F(EtcdClientTest, ExpiredLeaseDeletesItsKeyWithADeleteEvent) {
  auto lease = client_->GrantLease(1);
  ASSERT_THAT(lease, IsOk());
  auto put = client_->Put(Key("alice"), "addr", lease->id);
  ASSERT_THAT(put, IsOk());
  auto watch =
      EtcdWatch::Open(client_.get(), WatchOptions::Prefix(prefix_, *put));
  ASSERT_THAT(watch, IsOk());

  auto events = Events(**watch, 2);
  ASSERT_THAT(events, IsOk());
  EXPECT_EQ((*events)[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ((*events)[0].kv.lease, lease->id);
  EXPECT_EQ((*events)[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ((*events)[1].kv.key, Key("alice"));
  auto status = client_->LeaseTimeToLive(lease->id);
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->ttl_seconds, -1);
}

TEST_F(EtcdClientTest, RevokeEndsALeaseAndItsKeysAtOnce) {
  auto lease = client_->GrantLease(60);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Put(Key("bob"), "addr", lease->id), IsOk());
  auto alive = client_->LeaseTimeToLive(lease->id, /*keys=*/true);
  ASSERT_THAT(alive, IsOk());
  EXPECT_GT(alive->ttl_seconds, 0);
  EXPECT_THAT(alive->keys, ElementsAre(Key("bob")));

  ASSERT_THAT(client_->RevokeLease(lease->id), IsOk());
  auto gone = client_->Range(RangeRequest::Key(Key("bob")));
  ASSERT_THAT(gone, IsOk());
  EXPECT_THAT(gone->kvs, SizeIs(0));
  EXPECT_THAT(client_->RevokeLease(lease->id),
              StatusIs(absl::StatusCode::kNotFound));
}

// One stream renews a short lease past several of its TTLs. 2 s, not
// etcd's minimum of 1: a renewal every 0.67 s leaves 1.3 s for a loaded
// machine to stall without the lease ending.
TEST_F(EtcdClientTest, KeepAliveKeepsShortLeasesAlive) {
  auto short_lease = client_->GrantLease(2);
  auto other = client_->GrantLease(3);
  ASSERT_THAT(short_lease, IsOk());
  ASSERT_THAT(other, IsOk());
  ASSERT_THAT(client_->Put(Key("kept"), "v", short_lease->id), IsOk());
  auto granted = std::chrono::steady_clock::now();

  EtcdKeepAlive keep_alive(client_.get(), RealClock(), nullptr);
  keep_alive.Keep(short_lease->id, short_lease->ttl_seconds);
  keep_alive.Keep(other->id, other->ttl_seconds);
  // Two TTLs of the short lease and many renewals later, still there.
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::chrono::steady_clock::now() - granted >
                   std::chrono::seconds(4) &&
               keep_alive.renewals() >= 6;
      },
      std::chrono::seconds(30)));
  // Alive: etcd rounds what is left down to whole seconds (0 is alive);
  // -1 once it has ended.
  auto status = client_->LeaseTimeToLive(short_lease->id);
  ASSERT_THAT(status, IsOk());
  EXPECT_GE(status->ttl_seconds, 0);
  auto kept = client_->Range(RangeRequest::Key(Key("kept")));
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(kept->kvs, SizeIs(1));
  EXPECT_EQ(keep_alive.streams_opened(), 1);  // Both on one stream.
  EXPECT_EQ(keep_alive.size(), 2u);
}

class RecordingListener : public LeaseLossListener {
 public:
  void OnLeaseLost(int64_t lease) override {
    absl::MutexLock lock(&mu_);
    lost_.push_back(lease);
  }
  std::vector<int64_t> lost() {
    absl::MutexLock lock(&mu_);
    return lost_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int64_t> lost_ ABSL_GUARDED_BY(mu_);
};

TEST_F(EtcdClientTest, KeepAliveReportsALeaseEtcdNoLongerHas) {
  auto lease = client_->GrantLease(1);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->RevokeLease(lease->id), IsOk());
  RecordingListener listener;
  EtcdKeepAlive keep_alive(client_.get(), RealClock(), &listener);
  keep_alive.Keep(lease->id, 1);
  ASSERT_TRUE(WaitFor([&] { return !listener.lost().empty(); }));
  EXPECT_THAT(listener.lost(), ElementsAre(lease->id));
  EXPECT_EQ(keep_alive.size(), 0u);
}

// Renewals a client asks for (the registry's KeepAlive) share the stream
// of the kept leases; each gets its own answer.
TEST_F(EtcdClientTest, RenewOnceAnswersEachRenewal) {
  auto live = client_->GrantLease(30);
  auto kept = client_->GrantLease(30);
  auto gone = client_->GrantLease(30);
  ASSERT_THAT(live, IsOk());
  ASSERT_THAT(kept, IsOk());
  ASSERT_THAT(gone, IsOk());
  ASSERT_THAT(client_->RevokeLease(gone->id), IsOk());

  EtcdKeepAlive keep_alive(client_.get(), RealClock(), nullptr);
  keep_alive.Keep(kept->id, kept->ttl_seconds);
  absl::Mutex mu;
  std::vector<absl::StatusOr<int64_t>> live_answers;
  std::vector<absl::StatusOr<int64_t>> kept_answers;
  std::vector<absl::StatusOr<int64_t>> gone_answers;
  constexpr int kEach = 20;
  for (int i = 0; i < kEach; ++i) {
    for (const auto& target : {std::pair(live->id, &live_answers),
                               std::pair(kept->id, &kept_answers),
                               std::pair(gone->id, &gone_answers)}) {
      auto* answers = target.second;
      keep_alive.RenewOnce(target.first,
                           [&mu, answers](absl::StatusOr<int64_t> ttl) {
                             absl::MutexLock lock(&mu);
                             answers->push_back(ttl);
                           });
    }
  }
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return live_answers.size() == kEach && kept_answers.size() == kEach &&
           gone_answers.size() == kEach;
  }));
  absl::MutexLock lock(&mu);
  for (const auto& ttl : live_answers) {
    ASSERT_THAT(ttl, IsOk());
    EXPECT_GT(*ttl, 0);
  }
  for (const auto& ttl : kept_answers) EXPECT_THAT(ttl, IsOk());
  for (const auto& ttl : gone_answers) {
    EXPECT_THAT(ttl, StatusIs(absl::StatusCode::kNotFound));
  }
  EXPECT_EQ(keep_alive.streams_opened(), 1);
  EXPECT_EQ(keep_alive.size(), 1u);  // RenewOnce keeps nothing.
}

// A watcher that saw revision R resumes from R + 1 and misses nothing; it
// sees the old value of each change when it asks.
TEST_F(EtcdClientTest, WatchResumesFromARevision) {
  auto a = client_->Put(Key("a"), "1");
  ASSERT_THAT(a, IsOk());
  auto b = client_->Put(Key("b"), "2");
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(client_->Put(Key("a"), "3"), IsOk());
  ASSERT_THAT(client_->DeleteRange(Key("b")), IsOk());

  WatchOptions options = WatchOptions::Prefix(prefix_, *a + 1);
  options.prev_kv = true;
  auto watch = EtcdWatch::Open(client_.get(), options);
  ASSERT_THAT(watch, IsOk());
  auto events = Events(**watch, 3);
  ASSERT_THAT(events, IsOk());
  ASSERT_THAT(*events, SizeIs(3));
  EXPECT_EQ((*events)[0].kv.key, Key("b"));
  EXPECT_EQ((*events)[0].kv.mod_revision, *b);
  EXPECT_EQ((*events)[1].kv.value, "3");
  ASSERT_TRUE((*events)[1].prev_kv.has_value());
  EXPECT_EQ((*events)[1].prev_kv->value, "1");
  EXPECT_EQ((*events)[2].type, WatchEvent::Type::kDelete);
  ASSERT_TRUE((*events)[2].prev_kv.has_value());
  EXPECT_EQ((*events)[2].prev_kv->value, "2");
}

TEST_F(EtcdClientTest, ProgressNotificationCarriesTheRevision) {
  auto put = client_->Put(Key("p"), "1");
  ASSERT_THAT(put, IsOk());
  WatchOptions options = WatchOptions::Prefix(prefix_);
  options.progress_notify = true;
  auto watch = EtcdWatch::Open(client_.get(), options);
  ASSERT_THAT(watch, IsOk());
  ASSERT_THAT((*watch)->RequestProgress(), IsOk());
  auto batch = NextWithin(**watch);
  ASSERT_THAT(batch, IsOk());
  EXPECT_THAT(batch->events, SizeIs(0));
  EXPECT_GE(batch->revision, *put);
}

// A quiet watch on a member that answers: its hang check asks for progress
// now and then, gets batches without events, and the watch lives on (the
// mailbox's watch has no progress_notify; etcd answers the request anyway).
TEST_F(EtcdClientTest, AQuietWatchOnALiveMemberLivesOn) {
  EtcdConfig config;
  config.endpoints = cluster_->ClientEndpoints();
  config.call_timeout = absl::Seconds(1);  // The check's patience: 1 s.
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  auto watch = EtcdWatch::Open(client->get(), WatchOptions::Prefix(prefix_));
  ASSERT_THAT(watch, IsOk());
  while ((*watch)->progress_requests() < 3) {
    auto batch = NextWithin(**watch);
    ASSERT_THAT(batch, IsOk());
    EXPECT_THAT(batch->events, SizeIs(0));
  }
}

// After a compaction past a watcher's revision, etcd cannot replay what it
// missed: the watch ends with the distinct "compacted" error (resync from a
// snapshot), and so does a read at that revision.
TEST_F(EtcdClientTest, CompactionGivesTheDistinctError) {
  auto old = client_->Put(Key("v"), "1");
  ASSERT_THAT(old, IsOk());
  ASSERT_THAT(client_->Put(Key("v"), "2"), IsOk());
  auto latest = client_->Put(Key("v"), "3");
  ASSERT_THAT(latest, IsOk());
  ASSERT_THAT(client_->Compact(*latest), IsOk());

  RangeRequest at_old = RangeRequest::Key(Key("v"));
  at_old.revision = *old;
  absl::Status read = client_->Range(at_old).status();
  EXPECT_THAT(read, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_TRUE(IsCompacted(read)) << read;

  auto watch =
      EtcdWatch::Open(client_.get(), WatchOptions::Prefix(prefix_, *old));
  absl::Status ended;
  if (!watch.ok()) {
    ended = watch.status();
  } else {
    ended = NextWithin(**watch).status();
  }
  EXPECT_THAT(ended, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_TRUE(IsCompacted(ended)) << ended;
  EXPECT_EQ(CompactRevision(ended), *latest);
}

TEST_F(EtcdClientTest, CancelEndsABlockedNext) {
  auto watch = EtcdWatch::Open(client_.get(), WatchOptions::Prefix(prefix_));
  ASSERT_THAT(watch, IsOk());
  std::thread canceller([&] { (*watch)->Cancel(); });
  absl::Status ended = (*watch)->Next().status();
  canceller.join();
  EXPECT_THAT(ended, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT((*watch)->RequestProgress(),
              StatusIs(absl::StatusCode::kUnavailable));
}

// The NOSPACE alarm: a full backend refuses writes with kResourceExhausted,
// keeps what it has, still serves reads and still renews leases.
TEST(EtcdQuotaTest, FullBackendIsResourceExhausted) {
  EtcdClusterOptions options;
  options.quota_backend_bytes = 2 << 20;
  auto cluster = EtcdCluster::Start(options);
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());

  auto lease = (*client)->GrantLease(2);
  ASSERT_THAT(lease, IsOk());
  const std::string value(512 << 10, 'x');
  absl::Status status;
  int written = 0;
  for (int i = 0; i < 64 && status.ok(); ++i) {
    status = (*client)->Put(absl::StrCat("/fill/", i), value).status();
    if (status.ok()) ++written;
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_GT(written, 0);
  auto kept = (*client)->Range(RangeRequest::Prefix("/fill/"));
  ASSERT_THAT(kept, IsOk());
  // Every acknowledged write is kept. The write that crossed the quota may
  // be kept too although it was refused: etcd applies it, then answers
  // NOSPACE when its apply finds the backend over the quota (the gRPC
  // layer's check before proposing catches it only when the size is
  // already known to be over; etcdserver/apply.go, quotaApplierV3). So a
  // kResourceExhausted from etcd is, like kUnavailable, "maybe applied".
  EXPECT_THAT(kept->count, AnyOf(Eq(written), Eq(written + 1)));
  // Renewals are no writes to the backend: a full etcd still keeps names
  // alive.
  EtcdKeepAlive keep_alive(client->get(), RealClock(), nullptr);
  keep_alive.Keep(lease->id, lease->ttl_seconds);
  ASSERT_TRUE(WaitFor([&] { return keep_alive.renewals() >= 1; },
                      std::chrono::seconds(30)));
}

// TLS to etcd, with a client certificate etcd checks against its CA.
TEST(EtcdTlsTest, TalksTlsWithAClientCertificateAndNotWithout) {
  const std::string dir = CHAT_TLS_TESTDATA;
  TlsClientFiles ours{dir + "/ca.crt", dir + "/client.crt",
                      dir + "/client.key"};
  EtcdClusterOptions options;
  options.client_tls = {dir + "/server.crt", dir + "/server.key",
                        dir + "/ca.crt"};
  options.probe_tls = ours;
  auto cluster = EtcdCluster::Start(options);
  ASSERT_THAT(cluster, IsOk());

  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  config.tls = ours;
  config.call_timeout = absl::Seconds(3);
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  EXPECT_THAT((*client)->Put("/tls", "v"), IsOk());

  // A CA alone: etcd wants a certificate and ends the handshake.
  config.tls = {dir + "/ca.crt", "", ""};
  auto anonymous = EtcdClient::Create(config);
  ASSERT_THAT(anonymous, IsOk());
  EXPECT_THAT((*anonymous)->Put("/tls", "w"),
              StatusIs(absl::StatusCode::kUnavailable));
  // Plaintext to a TLS port fails the same way, never silently.
  config.tls = {};
  auto plain = EtcdClient::Create(config);
  ASSERT_THAT(plain, IsOk());
  EXPECT_THAT((*plain)->Put("/tls", "w"),
              StatusIs(absl::StatusCode::kUnavailable));
}

// A pooled lease: taken after the pool refilled in the background, with
// at least the seconds asked left; a stale one is not handed out.
TEST_F(EtcdClientTest, LeasePoolHandsOutFreshLeasesGrantedAhead) {
  FakeClock clock;
  EtcdLeasePool pool(client_.get(), clock);
  auto first = pool.Take(5);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(pool.misses(), 1);
  // The miss asked the background for more.
  ASSERT_TRUE(WaitFor([&] { return pool.ready(5) >= 1; }));
  auto second = pool.Take(5);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(pool.hits(), 1);
  EXPECT_NE(second->id, first->id);
  auto left = client_->LeaseTimeToLive(second->id);
  ASSERT_THAT(left, IsOk());
  EXPECT_GE(left->ttl_seconds, 5);
  ASSERT_THAT(client_->Put(Key("on-pooled"), "v", second->id), IsOk());

  // Too old to cover 5 s more: dropped, and the lease is granted now.
  ASSERT_TRUE(WaitFor([&] { return pool.ready(5) >= 1; }));
  clock.Advance(std::chrono::seconds(2));
  auto third = pool.Take(5);
  ASSERT_THAT(third, IsOk());
  EXPECT_EQ(pool.hits(), 1);
  EXPECT_EQ(pool.misses(), 2);
}

// Discard revokes in the background: what hangs on the lease goes.
TEST_F(EtcdClientTest, LeasePoolDiscardRevokesInTheBackground) {
  EtcdLeasePool pool(client_.get(), RealClock());
  auto lease = pool.Take(30);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Put(Key("k"), "v", lease->id), IsOk());
  pool.Discard(lease->id);
  ASSERT_TRUE(WaitFor([&] {
    auto read = client_->Range(RangeRequest::Key(Key("k")));
    return read.ok() && read->kvs.empty();
  }));
}

// The keep-alive stream breaks when its member restarts; the next one
// takes over the renewals and the lease lives on.
TEST(EtcdKeepAliveRestartTest, KeepAliveReopensItsStreamAfterARestart) {
  auto cluster = EtcdCluster::Start();
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  auto lease = (*client)->GrantLease(5);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT((*client)->Put("/kept", "v", lease->id), IsOk());
  EtcdKeepAlive keep_alive(client->get(), RealClock(), nullptr);
  keep_alive.Keep(lease->id, lease->ttl_seconds);
  ASSERT_TRUE(WaitFor([&] { return keep_alive.renewals() >= 1; },
                      std::chrono::seconds(30)));

  ASSERT_THAT((*cluster)->Stop(0), IsOk());
  ASSERT_THAT((*cluster)->Restart(0), IsOk());
  const int64_t before = keep_alive.renewals();
  ASSERT_TRUE(WaitFor(
      [&] {
        return keep_alive.streams_opened() >= 2 &&
               keep_alive.renewals() > before;
      },
      std::chrono::seconds(30)));
  auto kept = (*client)->Range(RangeRequest::Key("/kept"));
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(kept->kvs, SizeIs(1));
}

// The fixture's three-member cluster: one member down, the others serve
// through the same client; it comes back on its own data.
TEST(EtcdClusterTest, ThreeMembersSurviveOneDown) {
  EtcdClusterOptions options;
  options.members = 3;
  auto cluster = EtcdCluster::Start(options);
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  config.call_timeout = absl::Seconds(2);
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  ASSERT_THAT((*client)->Put("/k", "before"), IsOk());

  ASSERT_THAT((*cluster)->Kill(0), IsOk());
  // Calls that reach the dead member fail until its channel says so; a
  // write goes through within a few tries.
  ASSERT_TRUE(WaitFor([&] { return (*client)->Put("/k", "during").ok(); },
                      std::chrono::seconds(30)));
  ASSERT_THAT((*cluster)->Restart(0), IsOk());
  EtcdConfig only_first;
  only_first.endpoints = {(*cluster)->ClientEndpoint(0)};
  auto first = EtcdClient::Create(only_first);
  ASSERT_THAT(first, IsOk());
  // The restarted member may not listen yet, or not have caught up.
  absl::StatusOr<RangeResult> read;
  ASSERT_TRUE(WaitFor(
      [&] {
        read = (*first)->Range(RangeRequest::Key("/k"));
        return read.ok() && read->kvs.size() == 1 &&
               read->kvs[0].value == "during";
      },
      std::chrono::seconds(30)))
      << (read.ok() ? "" : read.status().ToString());
}

// An endpoint whose name does not resolve (a member's container gone) is
// passed over: once a live member is connected, every call goes through.
TEST(EtcdClusterTest, AnEndpointThatDoesNotResolveIsPassedOver) {
  auto cluster = EtcdCluster::Start();
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = {"etcd-gone.invalid:2379", (*cluster)->ClientEndpoint(0)};
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  // Reads are tried on the next member after any failure.
  ASSERT_THAT((*client)->Range(RangeRequest::Key("/k")), IsOk());
  ASSERT_TRUE(WaitFor([&] { return (*client)->Put("/k", "first").ok(); }));
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT((*client)->Put("/k", absl::StrCat(i)), IsOk()) << i;
    ASSERT_THAT((*client)->Range(RangeRequest::Key("/k")), IsOk()) << i;
  }
}

// A member killed under a client with every member's endpoint: once the
// others have a leader, every write and read goes through, none failing
// on the dead member, and the keep-alive stream moves off it.
TEST(EtcdClusterTest, CallsAndKeepAlivesMoveOffAKilledMember) {
  EtcdClusterOptions options;
  options.members = 3;
  auto cluster = EtcdCluster::Start(options);
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  // A TTL longer than the client's call deadline: the keep-alive stream
  // may sit on the member killed below until a renewal goes unanswered for
  // a whole deadline, and the lease must outlive that on a loaded machine.
  auto lease = (*client)->GrantLease(10);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT((*client)->Put("/kept", "v", lease->id), IsOk());
  EtcdKeepAlive keep_alive(client->get(), RealClock(), nullptr);
  keep_alive.Keep(lease->id, lease->ttl_seconds);
  // Every member's channel connected.
  for (int i = 0; i < 6; ++i) {
    ASSERT_THAT((*client)->Put("/k", absl::StrCat(i)), IsOk());
  }

  ASSERT_THAT((*cluster)->Kill(0), IsOk());
  EtcdConfig survivor;
  survivor.endpoints = {(*cluster)->ClientEndpoint(1)};
  auto direct = EtcdClient::Create(survivor);
  ASSERT_THAT(direct, IsOk());
  ASSERT_TRUE(WaitFor([&] { return (*direct)->Put("/leader", "").ok(); },
                      std::chrono::seconds(30)));
  for (int i = 0; i < 30; ++i) {
    ASSERT_THAT((*client)->Put("/k", absl::StrCat("after ", i)), IsOk()) << i;
    ASSERT_THAT((*client)->Range(RangeRequest::Key("/k")), IsOk()) << i;
  }
  // Renewals go on past the lease's TTL.
  const int64_t before = keep_alive.renewals();
  ASSERT_TRUE(WaitFor([&] { return keep_alive.renewals() >= before + 3; },
                      std::chrono::seconds(30)));
  auto kept = (*client)->Range(RangeRequest::Key("/kept"));
  ASSERT_THAT(kept, IsOk());
  EXPECT_THAT(kept->kvs, SizeIs(1));
}

}  // namespace
}  // namespace chat::registry::etcd
