#include "registry/etcd/etcd_txn_batcher.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"

namespace chat::registry::etcd {

struct TxnBatcher::Waiter {
  const TxnRequest* txn = nullptr;
  // Every key it compares or touches; empty when it has a range.
  std::vector<std::string> keys;
  bool mergeable = true;
  size_t bytes = 0;

  bool done = false;
  // Its merged Txn did not commit for a reason that may be another's:
  // its caller sends it alone.
  bool alone_again = false;
  absl::StatusOr<TxnResult> result = absl::UnknownError("not sent");
};

namespace {

void AddOpKeys(const std::vector<Op>& ops, std::vector<std::string>& keys,
               size_t& bytes, bool& mergeable) {
  for (const Op& op : ops) {
    if (!op.range_end.empty()) mergeable = false;
    keys.push_back(op.key);
    bytes += op.key.size() + op.value.size();
  }
}

// Whether `compare` holds on `kv` (nullptr: the key is absent), as etcd
// 3.4 judges it (applyCompare): an absent key has every number 0, and a
// compare of its value fails whatever it asks.
bool CompareHolds(const Compare& compare, const KeyValue* kv) {
  if (compare.target == Compare::Target::kValue) {
    if (kv == nullptr) return false;
    const int order = kv->value.compare(compare.value);
    switch (compare.result) {
      case Compare::Result::kEqual:
        return order == 0;
      case Compare::Result::kGreater:
        return order > 0;
      case Compare::Result::kLess:
        return order < 0;
      case Compare::Result::kNotEqual:
        return order != 0;
    }
    return false;
  }
  int64_t number = 0;
  if (kv != nullptr) {
    switch (compare.target) {
      case Compare::Target::kVersion:
        number = kv->version;
        break;
      case Compare::Target::kCreateRevision:
        number = kv->create_revision;
        break;
      case Compare::Target::kModRevision:
        number = kv->mod_revision;
        break;
      case Compare::Target::kLease:
        number = kv->lease;
        break;
      case Compare::Target::kValue:
        break;
    }
  }
  switch (compare.result) {
    case Compare::Result::kEqual:
      return number == compare.number;
    case Compare::Result::kGreater:
      return number > compare.number;
    case Compare::Result::kLess:
      return number < compare.number;
    case Compare::Result::kNotEqual:
      return number != compare.number;
  }
  return false;
}

// One caller's answer out of a merged Txn's: which branch ran, at its
// revision, with the `count` results of the caller's own ops from `offset`.
TxnResult OwnPart(const TxnResult& merged, size_t offset, size_t count) {
  TxnResult own{merged.succeeded, merged.revision, {}};
  own.results.assign(merged.results.begin() + offset,
                     merged.results.begin() + offset + count);
  return own;
}

}  // namespace

TxnBatcher::TxnBatcher(Send send, TxnBatchOptions options)
    : send_(std::move(send)), options_(options) {}

absl::StatusOr<TxnResult> TxnBatcher::Commit(const TxnRequest& txn) {
  Waiter me;
  me.txn = &txn;
  for (const Compare& compare : txn.compares) {
    me.keys.push_back(compare.key);
    me.bytes += compare.key.size() + compare.value.size();
  }
  AddOpKeys(txn.success, me.keys, me.bytes, me.mergeable);
  AddOpKeys(txn.failure, me.keys, me.bytes, me.mergeable);

  mu_.Lock();
  queue_.push_back(&me);
  queued_.SignalAll();
  while (!me.done) {
    if (queue_.empty() || in_flight_ >= options_.max_in_flight) {
      changed_.Wait(&mu_);
      continue;
    }
    std::vector<Waiter*> batch = TakeBatch();
    ++in_flight_;
    mu_.Unlock();
    SendBatch(batch);
    mu_.Lock();
    --in_flight_;
    for (Waiter* waiter : batch) waiter->done = true;
    changed_.SignalAll();
  }
  const bool alone_again = me.alone_again;
  if (alone_again) ++sent_again_;
  mu_.Unlock();
  if (!alone_again) return std::move(me.result);
  return send_(txn);
}

std::vector<TxnBatcher::Waiter*> TxnBatcher::TakeBatch() {
  std::vector<Waiter*> batch;
  absl::flat_hash_set<std::string> keys;
  size_t compares = 0;
  size_t success_ops = 0;
  // The failure branch holds the callers' own failure ops and a read of
  // each compared key.
  size_t failure_ops = 0;
  size_t bytes = 0;
  for (auto it = queue_.begin();
       it != queue_.end() && batch.size() < options_.max_txns;) {
    Waiter* waiter = *it;
    const TxnRequest& txn = *waiter->txn;
    if (!batch.empty()) {
      const bool fits =
          waiter->mergeable &&
          compares + txn.compares.size() <= options_.max_ops &&
          success_ops + txn.success.size() <= options_.max_ops &&
          failure_ops + txn.failure.size() + txn.compares.size() <=
              options_.max_ops &&
          bytes + waiter->bytes <= options_.max_bytes &&
          std::none_of(
              waiter->keys.begin(), waiter->keys.end(),
              [&](const std::string& key) { return keys.contains(key); });
      if (!fits) {
        ++it;
        continue;
      }
    }
    keys.insert(waiter->keys.begin(), waiter->keys.end());
    compares += txn.compares.size();
    success_ops += txn.success.size();
    failure_ops += txn.failure.size() + txn.compares.size();
    bytes += waiter->bytes;
    batch.push_back(waiter);
    it = queue_.erase(it);
    if (!waiter->mergeable) break;
  }
  return batch;
}

void TxnBatcher::SendBatch(const std::vector<Waiter*>& batch) {
  if (batch.size() == 1) {
    batch[0]->result = send_(*batch[0]->txn);
    return;
  }
  // The callers' compares and branches one after the other; the failure
  // branch then reads every compared key, so that a merged Txn that lost
  // tells which caller's compares failed.
  TxnRequest merged;
  std::vector<std::string> compared;
  for (const Waiter* waiter : batch) {
    const TxnRequest& txn = *waiter->txn;
    merged.compares.insert(merged.compares.end(), txn.compares.begin(),
                           txn.compares.end());
    merged.success.insert(merged.success.end(), txn.success.begin(),
                          txn.success.end());
    merged.failure.insert(merged.failure.end(), txn.failure.begin(),
                          txn.failure.end());
    for (const Compare& compare : txn.compares) {
      if (std::find(compared.begin(), compared.end(), compare.key) ==
          compared.end()) {
        compared.push_back(compare.key);
      }
    }
  }
  const size_t own_failure_ops = merged.failure.size();
  for (const std::string& key : compared)
    merged.failure.push_back(Op::Get(key));

  absl::StatusOr<TxnResult> result = send_(merged);
  {
    absl::MutexLock lock(&mu_);
    ++merged_sent_;
    merged_txns_ += static_cast<int64_t>(batch.size());
  }
  if (!result.ok() && MaybeApplied(result.status())) {
    for (Waiter* waiter : batch) waiter->result = result.status();
    return;
  }
  // etcd answers one result per op of the branch that ran, in order.
  const std::vector<Op>& ran =
      result.ok() && result->succeeded ? merged.success : merged.failure;
  if (!result.ok() || result->results.size() != ran.size()) {
    // Refused (a lease not found, a limit): maybe for one caller's sake.
    for (Waiter* waiter : batch) waiter->alone_again = true;
    return;
  }
  if (result->succeeded) {
    size_t offset = 0;
    for (Waiter* waiter : batch) {
      const size_t count = waiter->txn->success.size();
      waiter->result = OwnPart(*result, offset, count);
      offset += count;
    }
    return;
  }
  // A compare failed. A caller whose compares fail on what the merged Txn
  // read gets what etcd would have answered it alone at that revision; the
  // others, whose Txns may well commit, are sent again alone.
  auto read_of = [&](const std::string& key) -> const KeyValue* {
    const size_t at =
        std::find(compared.begin(), compared.end(), key) - compared.begin();
    const std::vector<KeyValue>& kvs =
        result->results[own_failure_ops + at].kvs;
    return kvs.empty() ? nullptr : &kvs[0];
  };
  size_t offset = 0;
  for (Waiter* waiter : batch) {
    const TxnRequest& txn = *waiter->txn;
    const size_t count = txn.failure.size();
    const bool holds = std::all_of(
        txn.compares.begin(), txn.compares.end(), [&](const Compare& compare) {
          return CompareHolds(compare, read_of(compare.key));
        });
    if (holds) {
      waiter->alone_again = true;
    } else {
      waiter->result = OwnPart(*result, offset, count);
    }
    offset += count;
  }
}

int64_t TxnBatcher::merged_sent() const {
  absl::MutexLock lock(&mu_);
  return merged_sent_;
}

int64_t TxnBatcher::merged_txns() const {
  absl::MutexLock lock(&mu_);
  return merged_txns_;
}

int64_t TxnBatcher::sent_again() const {
  absl::MutexLock lock(&mu_);
  return sent_again_;
}

void TxnBatcher::AwaitWaiting(size_t count) const {
  absl::MutexLock lock(&mu_);
  while (queue_.size() < count) queued_.Wait(&mu_);
}

}  // namespace chat::registry::etcd
