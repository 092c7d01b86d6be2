// The etcd mailbox: the Mailbox contract (../mailbox/mailbox_test.cc) against a
// real etcd on loopback, and what only a shared mailbox does: several
// registries on one etcd, racing for the same limits, and a full etcd.
//
// Where the contract suite's tests run: all of them run here too. Expiry
// needs no real time: the injected FakeClock stamps each item
// (deposited_at is in the stored value) and ExpireOld() compares with it,
// so the tests that move the clock run as on SQLite. Each test has its own
// key prefix (made of its temporary directory) on one etcd per binary.

#include "registry/etcd/etcd_mailbox.h"

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
#include "common/clock.h"
#include "registry/mailbox/mailbox_rules.h"
#include "tests/registry/mailbox/mailbox_contract.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace chat::registry::etcd {
namespace {

using ::chat::testing::EtcdCluster;
using ::chat::testing::EtcdClusterOptions;
using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::chat::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// One etcd for the whole binary, started by gtest on its main thread (the
// members die with the thread that started them).
class EtcdEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    auto cluster = EtcdCluster::Start();
    ASSERT_THAT(cluster, IsOk());
    cluster_ = *std::move(cluster);
    client_ = NewClient();
  }
  void TearDown() override {
    client_.reset();
    cluster_.reset();
  }

  // A client of its own: what another registry process would have.
  static std::unique_ptr<EtcdClient> NewClient() {
    EtcdConfig config;
    config.endpoints = cluster_->ClientEndpoints();
    auto client = EtcdClient::Create(config);
    EXPECT_THAT(client, IsOk());
    return client.ok() ? *std::move(client) : nullptr;
  }
  static EtcdClient* client() { return client_.get(); }

 private:
  static std::unique_ptr<EtcdCluster> cluster_;
  static std::unique_ptr<EtcdClient> client_;
};
std::unique_ptr<EtcdCluster> EtcdEnvironment::cluster_;
std::unique_ptr<EtcdClient> EtcdEnvironment::client_;

::testing::Environment* const kEtcd =
    ::testing::AddGlobalTestEnvironment(new EtcdEnvironment);

INSTANTIATE_TEST_SUITE_P(
    Etcd, MailboxContractTest,
    ::testing::Values(MailboxFactory{
        "Etcd", true,
        [](const Clock& clock, const std::string& path,
           const MailboxLimits& limits) {
          return OpenEtcdMailbox(EtcdEnvironment::client(),
                                 absl::StrCat("/test", path, "/"), clock,
                                 limits);
        }}),
    [](const ::testing::TestParamInfo<MailboxFactory>& param_info) {
      return param_info.param.name;
    });

// Two registries on one etcd: each with its own client, as two processes.
class TwoRegistriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    limits_.max_items = 100;
    limits_.max_bytes = 1 << 20;
    limits_.max_age = absl::Hours(1);
    client_a_ = EtcdEnvironment::NewClient();
    client_b_ = EtcdEnvironment::NewClient();
    ASSERT_NE(client_a_, nullptr);
    ASSERT_NE(client_b_, nullptr);
    Open();
  }

  void Open() {
    a_.reset();
    b_.reset();
    const std::string root = absl::StrCat("/test", dir_.File("mail"), "/");
    auto a = OpenEtcdMailbox(client_a_.get(), root, clock_, limits_);
    ASSERT_THAT(a, IsOk());
    a_ = *std::move(a);
    auto b = OpenEtcdMailbox(client_b_.get(), root, clock_, limits_);
    ASSERT_THAT(b, IsOk());
    b_ = *std::move(b);
  }

  std::vector<std::string> Ids(Mailbox& mailbox, const std::string& recipient) {
    std::vector<std::string> ids;
    auto items = mailbox.Peek(recipient, 0, 10000);
    EXPECT_THAT(items, IsOk());
    for (const MailItem& item : items.value_or(std::vector<MailItem>())) {
      ids.push_back(item.id);
    }
    return ids;
  }

  FakeClock clock_;
  TempDir dir_;
  MailboxLimits limits_;
  std::unique_ptr<EtcdClient> client_a_;
  std::unique_ptr<EtcdClient> client_b_;
  std::unique_ptr<Mailbox> a_;
  std::unique_ptr<Mailbox> b_;
};

TEST_F(TwoRegistriesTest, ADepositAtOneIsServedAndAcknowledgedAtTheOther) {
  ASSERT_THAT(a_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(a_->Deposit(Message("alice", "bob", "m2")), IsOk());
  // A retransmission through the other registry is the same item.
  ASSERT_THAT(b_->Deposit(Message("alice", "bob", "m1")), IsOk());
  auto items = b_->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(2));
  EXPECT_EQ((*items)[0].id, "m1");
  EXPECT_EQ((*items)[0].deposited_at, clock_.Wall());
  auto removed = b_->Ack("bob", {MailRef{"m1", (*items)[0].digest}},
                         {Receipt("bob", "alice", "m1")});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 1u);
  EXPECT_THAT(Ids(*a_, "bob"), ElementsAre("m2"));
  EXPECT_THAT(Ids(*a_, "alice"), ElementsAre("m1"));  // The receipt.
  auto stats = a_->Stat("bob");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->count, 1u);
  // Acknowledged again at the first: nothing more happens.
  removed = a_->AckIds("bob", {"m1"}, {Receipt("bob", "alice", "m1")});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 0u);
  EXPECT_THAT(Ids(*b_, "alice"), ElementsAre("m1"));
}

TEST_F(TwoRegistriesTest, ArrivalsAtOneWakeListenersAtTheOther) {
  std::atomic<int> bob_calls{0};
  std::atomic<int> marks{0};
  auto bob = b_->OnArrival("Bob", [&] { ++bob_calls; });
  auto mark = b_->OnArrival("mark", [&] { ++marks; });
  ASSERT_THAT(a_->Deposit(Message("alice", "bob", "m1")), IsOk());
  EXPECT_TRUE(WaitFor([&] { return bob_calls.load() >= 1; }));
  // A deposit at B itself is told at once, and once: not again when B's
  // watch sees it.
  ASSERT_THAT(b_->Deposit(Message("alice", "bob", "m2")), IsOk());
  EXPECT_GE(bob_calls.load(), 2);
  // Receipts an Ack at A deposits wake their recipient at B as well.
  ASSERT_THAT(a_->Deposit(Message("bob", "alice", "m3")), IsOk());
  ASSERT_THAT(a_->AckIds("alice", {"m3"}, {Receipt("alice", "bob", "m3")}),
              IsOk());
  // The watch reports in commit order: once the mark (deposited last) is
  // reported, everything before it has been.
  ASSERT_THAT(a_->Deposit(Message("alice", "mark", "last")), IsOk());
  ASSERT_TRUE(WaitFor([&] { return marks.load() >= 1; }));
  EXPECT_EQ(bob_calls.load(), 3);
  EXPECT_EQ(marks.load(), 1);
}

// The limits count every registry's mail exactly: deposits racing through
// two registries, from many threads, store exactly as many items as the
// total allows, never one more.
TEST_F(TwoRegistriesTest, RacingDepositsNeverPassTheTotal) {
  constexpr int kAllowed = 40;
  limits_.max_total_bytes = kAllowed * ChargedBytes(1);
  Open();
  constexpr int kThreadsPerRegistry = 3;
  constexpr int kPerThread = 20;  // 120 tries for 40 places.
  std::atomic<int> stored{0};
  std::atomic<int> other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerRegistry; ++t) {
    Mailbox* mailbox = t % 2 == 0 ? a_.get() : b_.get();
    threads.emplace_back([&, mailbox, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Each to its own recipient from its own sender: only the total
        // binds.
        absl::Status status = mailbox->Deposit(
            From(absl::StrCat("host", t, "-", i),
                 Message("alice", absl::StrCat("r", t, "-", i), "m")));
        if (status.ok()) {
          ++stored;
        } else if (status.code() != absl::StatusCode::kResourceExhausted) {
          ++other_errors;
          ADD_FAILURE() << status;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(other_errors.load(), 0);
  EXPECT_EQ(stored.load(), kAllowed);
  int waiting = 0;
  for (int t = 0; t < 2 * kThreadsPerRegistry; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      waiting +=
          static_cast<int>(Ids(*a_, absl::StrCat("r", t, "-", i)).size());
    }
  }
  EXPECT_EQ(waiting, kAllowed);
  // One acknowledged makes room for exactly one more.
  for (int t = 0; t < 2 * kThreadsPerRegistry; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string recipient = absl::StrCat("r", t, "-", i);
      if (Ids(*b_, recipient).empty()) continue;
      ASSERT_THAT(b_->AckIds(recipient, {"m"}, {}), IsOk());
      EXPECT_THAT(a_->Deposit(Message("alice", "late", "l1")), IsOk());
      EXPECT_THAT(b_->Deposit(Message("alice", "late", "l2")),
                  StatusIs(absl::StatusCode::kResourceExhausted));
      return;
    }
  }
  FAIL() << "nothing was stored";
}

// Expiry run by both registries at once: each item goes once and its
// sender hears of it once.
TEST_F(TwoRegistriesTest, ExpiryRunByBothRemovesEachItemOnce) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_THAT(a_->Deposit(Message("alice", absl::StrCat("r", i % 3),
                                    absl::StrCat("m", i))),
                IsOk());
  }
  clock_.Advance(Millis(3600 * 1000 + 1));
  absl::StatusOr<size_t> at_a;
  absl::StatusOr<size_t> at_b;
  std::thread other([&] { at_b = b_->ExpireOld(); });
  at_a = a_->ExpireOld();
  other.join();
  ASSERT_THAT(at_a, IsOk());
  ASSERT_THAT(at_b, IsOk());
  EXPECT_EQ(*at_a + *at_b, 30u);
  EXPECT_THAT(Ids(*a_, "alice"), SizeIs(30));  // One expiry receipt each.
  for (int r = 0; r < 3; ++r) {
    EXPECT_THAT(Ids(*b_, absl::StrCat("r", r)), IsEmpty());
  }
}

// An Ack of more items than one etcd transaction may hold commits in
// chunks; every item goes and every receipt is made.
TEST_F(TwoRegistriesTest, ABigAckCommitsInChunks) {
  std::vector<std::string> ids;
  std::vector<MailItem> receipts;
  for (int i = 0; i < 60; ++i) {
    ids.push_back(absl::StrCat("m", i));
    ASSERT_THAT(a_->Deposit(Message("alice", "bob", ids.back())), IsOk());
    receipts.push_back(Receipt("bob", "alice", ids.back()));
  }
  auto removed = b_->AckIds("bob", ids, receipts);
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 60u);
  EXPECT_THAT(Ids(*a_, "bob"), IsEmpty());
  EXPECT_THAT(Ids(*a_, "alice"), SizeIs(60));
  auto stats = a_->Stat("alice");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->count, 0u);  // Receipts are not messages.
}

// etcd restarts under two registries: B's arrival watch breaks and opens
// again (from the last revision it reported), and A's next deposit wakes
// B's listener as before. A deposit while etcd is down is refused and not
// stored.
TEST(EtcdMailboxRestartTest, ArrivalsResumeAfterEtcdComesBack) {
  auto cluster = EtcdCluster::Start();
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  config.call_timeout = absl::Seconds(2);
  auto client_a = EtcdClient::Create(config);
  ASSERT_THAT(client_a, IsOk());
  auto client_b = EtcdClient::Create(config);
  ASSERT_THAT(client_b, IsOk());
  FakeClock clock;
  auto a = OpenEtcdMailbox(client_a->get(), "/chat/v1/", clock);
  ASSERT_THAT(a, IsOk());
  auto b = OpenEtcdMailbox(client_b->get(), "/chat/v1/", clock);
  ASSERT_THAT(b, IsOk());
  std::atomic<int> calls{0};
  auto subscription = (*b)->OnArrival("bob", [&] { ++calls; });
  ASSERT_THAT((*a)->Deposit(Message("alice", "bob", "before")), IsOk());
  ASSERT_TRUE(WaitFor([&] { return calls.load() >= 1; }));

  ASSERT_THAT((*cluster)->Stop(0), IsOk());
  EXPECT_THAT((*a)->Deposit(Message("alice", "bob", "down")),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT((*cluster)->Restart(0), IsOk());
  // The client may need a moment to reconnect: its first calls can fail.
  ASSERT_TRUE(WaitFor(
      [&] { return (*a)->Deposit(Message("alice", "bob", "after")).ok(); },
      std::chrono::seconds(30)));
  EXPECT_TRUE(
      WaitFor([&] { return calls.load() >= 2; }, std::chrono::seconds(30)));
  auto items = (*b)->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  EXPECT_THAT(*items, SizeIs(2));  // "down" was refused and not stored.
}

// A full etcd (the NOSPACE alarm): deposits are refused with
// kResourceExhausted, every deposit that was acknowledged stays, a refused
// one is not there, and reads go on.
TEST(EtcdMailboxQuotaTest, AFullEtcdRefusesAndLosesNothing) {
  EtcdClusterOptions options;
  options.quota_backend_bytes = 2 << 20;
  auto cluster = EtcdCluster::Start(options);
  ASSERT_THAT(cluster, IsOk());
  EtcdConfig config;
  config.endpoints = (*cluster)->ClientEndpoints();
  auto client = EtcdClient::Create(config);
  ASSERT_THAT(client, IsOk());
  FakeClock clock;
  MailboxLimits limits;  // The mailbox's own limits far above etcd's.
  limits.max_total_bytes = size_t{1} << 30;
  limits.max_payload_bytes = 16 * 1024;
  auto mailbox = OpenEtcdMailbox(client->get(), "/chat/v1/", clock, limits);
  ASSERT_THAT(mailbox, IsOk());

  const std::string payload(16000, 'x');
  absl::Status status;
  int stored = 0;
  for (int i = 0; i < 400 && status.ok(); ++i) {
    status = (*mailbox)->Deposit(Message("alice", absl::StrCat("r", i % 8),
                                         absl::StrCat("m", i),
                                         payload + absl::StrCat(i)));
    if (status.ok()) ++stored;
  }
  ASSERT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_GT(stored, 0);
  std::vector<std::string> waiting;
  for (int r = 0; r < 8; ++r) {
    auto items = (*mailbox)->Peek(absl::StrCat("r", r), 0, 1000);
    ASSERT_THAT(items, IsOk());
    for (const MailItem& item : *items) waiting.push_back(item.id);
  }
  // Exactly the acknowledged ones: m0 .. m<stored-1>.
  ASSERT_THAT(waiting, SizeIs(stored));
  for (int i = 0; i < stored; ++i) {
    EXPECT_NE(std::find(waiting.begin(), waiting.end(), absl::StrCat("m", i)),
              waiting.end())
        << "m" << i << " was acknowledged and is gone";
  }
  // Still refused, with the same clear code, and nothing changes.
  EXPECT_THAT((*mailbox)->Deposit(Message("alice", "r0", "again", "y")),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // An Ack writes counters too: etcd refuses it until the operator has made
  // room; the items stay.
  EXPECT_THAT((*mailbox)->AckIds("r0", {"m0"}, {}),
              StatusIs(absl::StatusCode::kResourceExhausted));
  auto items = (*mailbox)->Peek("r0", 0, 1000);
  ASSERT_THAT(items, IsOk());
  EXPECT_THAT(*items,
              ::testing::Contains(::testing::Field(&MailItem::id, "m0")));
  auto stats = (*mailbox)->Stat("r0");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->count, items->size());
}

}  // namespace
}  // namespace chat::registry::etcd
