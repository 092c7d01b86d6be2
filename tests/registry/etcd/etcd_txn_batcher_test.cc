// TxnBatcher against a fake etcd that evaluates compares on a map of keys:
// which Txns go together, and that each caller gets what it would get
// alone. No etcd, no sleeps: a gate holds the first Txn in flight while the
// others come to wait.

#include "registry/etcd/etcd_txn_batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace chat::registry::etcd {
namespace {

// The part of etcd's KV the batcher needs: puts and deletes at a revision,
// compares of mod revision, absence and value. With a gate, every Txn
// waits until it opens.
class FakeEtcd {
 public:
  absl::StatusOr<TxnResult> Txn(const TxnRequest& txn) {
    {
      absl::MutexLock lock(&mu_);
      ++arrived_;
      arrival_.SignalAll();
    }
    gate_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    sent_.push_back(txn);
    if (auto it = errors_.find(sent_.size()); it != errors_.end()) {
      return it->second;
    }
    bool holds = true;
    for (const Compare& compare : txn.compares) {
      holds = holds && Holds(compare);
    }
    TxnResult result;
    result.succeeded = holds;
    const std::vector<Op>& ops = holds ? txn.success : txn.failure;
    const bool writes = std::any_of(ops.begin(), ops.end(), [](const Op& op) {
      return op.kind != Op::Kind::kRange;
    });
    if (writes) ++revision_;
    for (const Op& op : ops) {
      OpResult op_result;
      op_result.kind = op.kind;
      if (op.kind == Op::Kind::kPut) {
        auto it = kvs_.find(op.key);
        const int64_t created =
            it == kvs_.end() ? revision_ : it->second.create_revision;
        kvs_[op.key] =
            KeyValue{op.key, op.value, created, revision_, 1, op.lease};
      } else if (op.kind == Op::Kind::kDelete) {
        op_result.deleted = static_cast<int64_t>(kvs_.erase(op.key));
      } else if (auto it = kvs_.find(op.key); it != kvs_.end()) {
        op_result.kvs.push_back(it->second);
      }
      result.results.push_back(std::move(op_result));
    }
    result.revision = revision_;
    return result;
  }

  TxnBatcher::Send Sender() {
    return [this](const TxnRequest& txn) { return Txn(txn); };
  }

  void Open() { gate_.Notify(); }
  // Blocks until `count` Txns came to the gate.
  void AwaitArrived(int count) {
    absl::MutexLock lock(&mu_);
    while (arrived_ < count) arrival_.Wait(&mu_);
  }
  // The `number`th Txn sent (from 1) answers `status`.
  void Fail(size_t number, absl::Status status) {
    absl::MutexLock lock(&mu_);
    errors_[number] = std::move(status);
  }
  void Seed(const std::string& key, const std::string& value) {
    absl::MutexLock lock(&mu_);
    ++revision_;
    kvs_[key] = KeyValue{key, value, revision_, revision_, 1, 0};
  }
  int64_t ModRevision(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = kvs_.find(key);
    return it == kvs_.end() ? 0 : it->second.mod_revision;
  }
  std::vector<TxnRequest> Sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  bool Holds(const Compare& compare) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = kvs_.find(compare.key);
    switch (compare.target) {
      case Compare::Target::kCreateRevision:
        return (it == kvs_.end() ? 0 : it->second.create_revision) ==
               compare.number;
      case Compare::Target::kModRevision:
        return (it == kvs_.end() ? 0 : it->second.mod_revision) ==
               compare.number;
      case Compare::Target::kValue:
        return it != kvs_.end() && it->second.value == compare.value;
      case Compare::Target::kVersion:
        return compare.result == Compare::Result::kLess
                   ? (it == kvs_.end() ? 0 : it->second.version) <
                         compare.number
                   : (it == kvs_.end() ? 0 : it->second.version) ==
                         compare.number;
      default:
        return false;
    }
  }

  absl::Notification gate_;
  absl::Mutex mu_;
  absl::CondVar arrival_;
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, KeyValue> kvs_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<TxnRequest> sent_ ABSL_GUARDED_BY(mu_);
  std::map<size_t, absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

// A write of `key` when it is absent, reading it back when not.
TxnRequest CreateIfAbsent(const std::string& key, const std::string& value) {
  TxnRequest txn;
  txn.compares.push_back(Compare::Absent(key));
  txn.success.push_back(Op::Put(key, value));
  txn.failure.push_back(Op::Get(key));
  return txn;
}

// Runs Commit(txns[i]) on a thread each while the first Txn sent is held,
// and returns the answers once every one came to wait and the gate opened.
std::vector<absl::StatusOr<TxnResult>> CommitTogether(
    FakeEtcd& etcd, TxnBatcher& batcher, const std::vector<TxnRequest>& txns,
    const TxnRequest& blocker) {
  std::vector<absl::StatusOr<TxnResult>> results(
      txns.size(), absl::UnknownError("not answered"));
  // The blocker goes out first and holds the only slot in flight.
  std::thread first([&] { EXPECT_TRUE(batcher.Commit(blocker).ok()); });
  etcd.AwaitArrived(1);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < txns.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = batcher.Commit(txns[i]); });
  }
  batcher.AwaitWaiting(txns.size());
  etcd.Open();
  first.join();
  for (std::thread& thread : threads) thread.join();
  return results;
}

TxnBatchOptions OneInFlight() {
  TxnBatchOptions options;
  options.max_in_flight = 1;
  return options;
}

TEST(TxnBatcherTest, ATxnAloneIsSentAsItIs) {
  FakeEtcd etcd;
  etcd.Open();
  TxnBatcher batcher(etcd.Sender());
  absl::StatusOr<TxnResult> result = batcher.Commit(CreateIfAbsent("a", "1"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->succeeded);
  ASSERT_EQ(etcd.Sent().size(), 1u);
  EXPECT_EQ(etcd.Sent()[0].failure.size(), 1u);  // Its failure branch kept.
  EXPECT_EQ(batcher.merged_sent(), 0);
}

TEST(TxnBatcherTest, TxnsThatWaitTogetherGoAsOneAndEachGetsItsResults) {
  FakeEtcd etcd;
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  std::vector<TxnRequest> txns;
  for (const char* key : {"a", "b", "c"}) {
    TxnRequest txn = CreateIfAbsent(key, "v");
    txn.success.push_back(Op::Get(key));
    txns.push_back(std::move(txn));
  }
  const auto results =
      CommitTogether(etcd, batcher, txns, CreateIfAbsent("blocker", "v"));

  const std::vector<TxnRequest> sent = etcd.Sent();
  ASSERT_EQ(sent.size(), 2u);  // The blocker, then the three as one.
  const TxnRequest& merged = sent[1];
  EXPECT_EQ(merged.compares.size(), 3u);
  EXPECT_EQ(merged.success.size(), 6u);
  // Their failure ops, then a read of each compared key.
  EXPECT_EQ(merged.failure.size(), 6u);
  EXPECT_EQ(batcher.merged_sent(), 1);
  EXPECT_EQ(batcher.merged_txns(), 3);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_TRUE(results[i]->succeeded);
    EXPECT_EQ(results[i]->revision, etcd.ModRevision("a"));
    // Its own two results: the put, then the get of its own key.
    ASSERT_EQ(results[i]->results.size(), 2u);
    ASSERT_EQ(results[i]->results[1].kvs.size(), 1u);
    EXPECT_EQ(results[i]->results[1].kvs[0].key, txns[i].success[0].key);
  }
}

TEST(TxnBatcherTest, TxnsThatShareAKeyAreNeverMerged) {
  FakeEtcd etcd;
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  // Both pass their compare alone at the start; merged, both would commit.
  TxnRequest first = CreateIfAbsent("name", "1");
  TxnRequest second = CreateIfAbsent("name", "2");
  TxnRequest other = CreateIfAbsent("other", "3");
  const auto results = CommitTogether(etcd, batcher, {first, second, other},
                                      CreateIfAbsent("blocker", "v"));
  ASSERT_TRUE(results[0].ok() && results[1].ok() && results[2].ok());
  // Whichever came to wait first won; the other read "name" absent, which
  // is no longer so, and got its failure branch.
  ASSERT_NE(results[0]->succeeded, results[1]->succeeded);
  const TxnResult& lost = results[0]->succeeded ? *results[1] : *results[0];
  ASSERT_EQ(lost.results.size(), 1u);
  EXPECT_EQ(lost.results[0].kvs[0].value, results[0]->succeeded ? "1" : "2");
  EXPECT_TRUE(results[2]->succeeded);
  EXPECT_EQ(batcher.merged_txns(), 2);  // The winner with "other".
}

TEST(TxnBatcherTest, ALostCompareFailsOnlyItsOwnerAndTheOthersGoAgain) {
  FakeEtcd etcd;
  etcd.Seed("taken", "x");
  const int64_t taken_at = etcd.ModRevision("taken");
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  const auto results =
      CommitTogether(etcd, batcher,
                     {CreateIfAbsent("free", "1"), CreateIfAbsent("taken", "2"),
                      CreateIfAbsent("also-free", "3")},
                     CreateIfAbsent("blocker", "v"));
  ASSERT_TRUE(results[0].ok() && results[1].ok() && results[2].ok());
  EXPECT_TRUE(results[0]->succeeded);
  EXPECT_TRUE(results[2]->succeeded);
  // Its answer came from the merged Txn's failure branch, as etcd would
  // have answered it alone.
  ASSERT_FALSE(results[1]->succeeded);
  ASSERT_EQ(results[1]->results.size(), 1u);
  ASSERT_EQ(results[1]->results[0].kvs.size(), 1u);
  EXPECT_EQ(results[1]->results[0].kvs[0].value, "x");
  EXPECT_EQ(results[1]->results[0].kvs[0].mod_revision, taken_at);
  EXPECT_EQ(batcher.sent_again(), 2);
  // The blocker, the merged Txn that lost, and the two free ones alone.
  EXPECT_EQ(etcd.Sent().size(), 4u);
}

TEST(TxnBatcherTest, CompareHoldsAsEtcdJudgesIt) {
  // Through a merged Txn that loses on one caller's value compare: the
  // caller whose compares hold on an absent key is sent again, the one
  // whose value compare meets an absent key fails.
  FakeEtcd etcd;
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  TxnRequest value_of_absent;
  value_of_absent.compares.push_back(Compare::ValueIs("missing", ""));
  value_of_absent.success.push_back(Op::Put("missing", "v"));
  TxnRequest version_of_absent;
  version_of_absent.compares.push_back(
      {Compare::Target::kVersion, Compare::Result::kLess, "other", 1, ""});
  version_of_absent.success.push_back(Op::Put("other", "v"));
  const auto results =
      CommitTogether(etcd, batcher, {value_of_absent, version_of_absent},
                     CreateIfAbsent("blocker", "v"));
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_FALSE(results[0]->succeeded);
  EXPECT_TRUE(results[1]->succeeded);
  EXPECT_EQ(batcher.sent_again(), 1);
}

TEST(TxnBatcherTest, AnErrorOfTheMergedTxnSendsEachAlone) {
  FakeEtcd etcd;
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  // What etcd answers to a put on a lease it does not know: it may be one
  // caller's fault, so nobody gets it from the merged Txn (the second sent).
  etcd.Fail(2, absl::NotFoundError("requested lease not found"));
  const auto results = CommitTogether(
      etcd, batcher, {CreateIfAbsent("a", "1"), CreateIfAbsent("b", "2")},
      CreateIfAbsent("blocker", "v"));
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_TRUE(results[0]->succeeded);
  EXPECT_TRUE(results[1]->succeeded);
  EXPECT_EQ(batcher.sent_again(), 2);
}

TEST(TxnBatcherTest, AnUnknownOutcomeGoesToEachCallerAsIs) {
  FakeEtcd etcd;
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  // Maybe applied: sending again could apply it twice; each caller reads
  // back its own writes instead.
  etcd.Fail(2, absl::UnavailableError("etcd Txn: deadline exceeded"));
  const auto results = CommitTogether(
      etcd, batcher, {CreateIfAbsent("a", "1"), CreateIfAbsent("b", "2")},
      CreateIfAbsent("blocker", "v"));
  for (const auto& result : results) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(batcher.sent_again(), 0);
  EXPECT_EQ(etcd.Sent().size(), 2u);
}

TEST(TxnBatcherTest, AMergedTxnStaysWithinItsLimits) {
  FakeEtcd etcd;
  TxnBatchOptions options = OneInFlight();
  options.max_ops = 4;  // Two of these Txns (a compare and two puts each).
  TxnBatcher batcher(etcd.Sender(), options);
  std::vector<TxnRequest> txns;
  for (int i = 0; i < 5; ++i) {
    TxnRequest txn = CreateIfAbsent("k" + std::to_string(i), "v");
    txn.success.push_back(Op::Put("extra" + std::to_string(i), "v"));
    txns.push_back(std::move(txn));
  }
  const auto results =
      CommitTogether(etcd, batcher, txns, CreateIfAbsent("blocker", "v"));
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok());
    EXPECT_TRUE(result->succeeded);
  }
  for (const TxnRequest& sent : etcd.Sent()) {
    EXPECT_LE(sent.success.size(), 4u);
  }
  // The blocker, two pairs, and the fifth alone.
  EXPECT_EQ(etcd.Sent().size(), 4u);
}

TEST(TxnBatcherTest, ATxnWithARangeGoesAlone) {
  FakeEtcd etcd;
  TxnBatcher batcher(etcd.Sender(), OneInFlight());
  TxnRequest ranged;
  ranged.success.push_back(Op::DeletePrefix("p/"));
  const auto results =
      CommitTogether(etcd, batcher, {ranged, CreateIfAbsent("a", "1")},
                     CreateIfAbsent("blocker", "v"));
  EXPECT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_EQ(etcd.Sent().size(), 3u);
  EXPECT_EQ(batcher.merged_sent(), 0);
}

}  // namespace
}  // namespace chat::registry::etcd
