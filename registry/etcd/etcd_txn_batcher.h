// Group commit for etcd transactions: the Txns that callers make at the same
// moment about different keys go to etcd as one Txn, so one raft proposal
// (and one WAL entry, one apply) serves them all.

#ifndef CHAT_REGISTRY_ETCD_ETCD_TXN_BATCHER_H_
#define CHAT_REGISTRY_ETCD_ETCD_TXN_BATCHER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "registry/etcd/etcd_client.h"

namespace chat::registry::etcd {

struct TxnBatchOptions {
  // Txns merged into one, at most.
  size_t max_txns = 32;
  // Compares, and operations of each branch, in a merged Txn at most: etcd
  // refuses a Txn with more than its --max-txn-ops (128 by default).
  size_t max_ops = 128;
  // Bytes of keys and values in a merged Txn at most, well under etcd's
  // request limit (--max-request-bytes, 1.5 MiB by default).
  size_t max_bytes = 512 * 1024;
  // Merged Txns sent at once, at most: while they are out, new Txns wait
  // and go together in the next one.
  int max_in_flight = 2;
};

// TxnBatcher commits Txns as EtcdClient::Txn does, merging the ones that
// wait at the same moment into one etcd Txn.
//
// Merging keeps each Txn's meaning: Txns are merged only when no key of one
// (in its compares or in either branch) is a key of another, so each one's
// compares read what they would read alone, and no write of one is seen
// by another. A merged Txn commits all of them at one revision, or none:
// - all its compares held: each caller gets `succeeded` with the merged
//   Txn's revision and the results of its own success ops;
// - a compare failed: the merged Txn's failure branch read every compared
//   key, so each caller whose compares fail on that gets what etcd would
//   have answered it alone (`succeeded` false, the results of its own
//   failure ops, at that revision); the others' Txns are sent again alone;
// - etcd refused the merged Txn (a lease not found, a limit): each caller's
//   Txn is sent again alone, and its caller gets that answer, exactly as
//   without merging;
// - the outcome is unknown (kUnavailable, kResourceExhausted): each caller
//   gets that error and reads back its own writes, as without merging.
// A Txn alone (nothing else waited) is sent as it is, so at low load
// nothing changes. Txns with a range in a compare or an op are never
// merged (their keys are not known).
//
// Thread-safe: Commit() blocks its caller; one of the waiting callers sends
// each merged Txn, the others wait for its answer.
class TxnBatcher {
 public:
  // Sends one Txn to etcd (EtcdClient::Txn in production).
  using Send = std::function<absl::StatusOr<TxnResult>(const TxnRequest&)>;

  explicit TxnBatcher(Send send, TxnBatchOptions options = {});
  TxnBatcher(const TxnBatcher&) = delete;
  TxnBatcher& operator=(const TxnBatcher&) = delete;

  // What send(txn) would answer (see the class comment). `txn` must stay
  // valid until it returns.
  absl::StatusOr<TxnResult> Commit(const TxnRequest& txn)
      ABSL_LOCKS_EXCLUDED(mu_);

  // For tests and metrics: etcd Txns sent that carried more than one
  // caller's Txn, the callers' Txns they carried, and the callers' Txns
  // sent alone again after their merged Txn lost or was refused.
  int64_t merged_sent() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t merged_txns() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t sent_again() const ABSL_LOCKS_EXCLUDED(mu_);
  // For tests: blocks until `count` callers' Txns wait to be sent.
  void AwaitWaiting(size_t count) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Waiter;

  // Takes from queue_, oldest first, the Txns that go together with the
  // oldest one (disjoint keys, within the limits).
  std::vector<Waiter*> TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `batch` (merged when more than one) and leaves each waiter's
  // answer in it.
  void SendBatch(const std::vector<Waiter*>& batch) ABSL_LOCKS_EXCLUDED(mu_);

  const Send send_;
  const TxnBatchOptions options_;

  mutable absl::Mutex mu_;
  // Signalled when a merged Txn is answered.
  absl::CondVar changed_;
  // Signalled when a Txn comes to wait (AwaitWaiting).
  mutable absl::CondVar queued_;
  std::deque<Waiter*> queue_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t merged_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t merged_txns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_again_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_TXN_BATCHER_H_
