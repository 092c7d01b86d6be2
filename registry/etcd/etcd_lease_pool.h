// Leases granted ahead of need, so a registration attaches one in its Txn
// instead of waiting for a LeaseGrant (a raft commit of its own) first; and
// leases given up, revoked in the background so that no caller waits on it.

#ifndef CHAT_REGISTRY_ETCD_ETCD_LEASE_POOL_H_
#define CHAT_REGISTRY_ETCD_ETCD_LEASE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "registry/etcd/etcd_client.h"

namespace chat::registry::etcd {

struct LeasePoolOptions {
  // Leases kept ready (granted or being granted) per TTL, at most.
  size_t max_per_ttl = 64;
  // TTLs kept ready at once, at most: the ones asked for most recently.
  // A caller asking a new TTL each time gains nothing and costs at most two
  // background grants per Take().
  size_t max_ttls = 4;
  // Leases waiting to be revoked, at most; past it Discard() leaves them to
  // expire at their TTL (etcd deletes what hangs on them then).
  size_t max_discards = 4096;
  // Background threads that grant and revoke (each waits on one call).
  int threads = 4;
};

// EtcdLeasePool hands out etcd leases that last at least a given number of
// seconds from the moment they are handed out.
//
// A pooled lease is granted with one second more than asked, and handed out
// only while what is left of it covers the seconds asked: a name on it
// lives at least its TTL, and at most a second longer than on a lease
// granted at the moment of the call (etcd's TTL is a minimum anyway).
// Leases too old to hand out are dropped and expire on their own (no key
// hangs on them).
//
// The pool follows demand: every Take() of a TTL asks for a replacement in
// the background, and a Take() that found none ready asks for one more
// (up to max_per_ttl), so it grows to the number of registrations in flight
// and no further. Nothing is granted while no one takes.
//
// Thread-safe. Owns `threads` background threads.
class EtcdLeasePool {
 public:
  // `client` and `clock` (the real one in production: etcd's TTLs run in
  // real time) are not owned and must outlive the pool.
  EtcdLeasePool(EtcdClient* client, const Clock& clock,
                LeasePoolOptions options = {});
  // Stops the threads (a call in flight finishes first, within the client's
  // deadline). Pooled leases and discards not yet revoked are left to expire.
  ~EtcdLeasePool();
  EtcdLeasePool(const EtcdLeasePool&) = delete;
  EtcdLeasePool& operator=(const EtcdLeasePool&) = delete;

  // A lease with at least `seconds` (>= 1) left: a pooled one when one is
  // ready, else granted now (the errors of EtcdClient::GrantLease). The
  // returned ttl_seconds is what the lease was granted with.
  absl::StatusOr<LeaseGrant> Take(int64_t seconds) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends `lease` in the background: revoked soon (its keys go with it), or
  // left to expire at its TTL when max_discards revocations wait already.
  // For a lease nobody waits on: a name that moved off it, or one taken and
  // never attached.
  void Discard(int64_t lease) ABSL_LOCKS_EXCLUDED(mu_);

  // For tests and metrics: Take() calls served from the pool, and those
  // that granted a lease themselves.
  int64_t hits() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t misses() const ABSL_LOCKS_EXCLUDED(mu_);
  // Leases of `seconds` ready to hand out (stale ones included).
  size_t ready(int64_t seconds) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Ready {
    LeaseGrant grant;
    // The last moment it may be handed out for its bucket's seconds.
    MonoTime usable_until;
  };
  struct Bucket {
    int64_t seconds = 0;
    std::deque<Ready> ready;  // Oldest first.
    size_t granting = 0;      // Background grants asked for and not done.
  };

  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // The bucket of `seconds`, made the most recent; evicts the least recent
  // one past max_ttls.
  Bucket& BucketFor(int64_t seconds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Bucket* FindBucket(int64_t seconds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Bucket* FindBucket(int64_t seconds) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks the threads for `count` more leases of `bucket`, within the cap.
  void AskFor(Bucket& bucket, size_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EtcdClient* const client_;
  const Clock& clock_;
  const LeasePoolOptions options_;

  mutable absl::Mutex mu_;
  // Most recently used first.
  std::list<Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  // The seconds of each grant asked for, in order.
  std::deque<int64_t> to_grant_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> to_revoke_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<std::thread> threads_;  // Last: they use the above.
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_LEASE_POOL_H_
