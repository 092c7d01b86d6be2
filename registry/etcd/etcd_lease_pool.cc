#include "registry/etcd/etcd_lease_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace chat::registry::etcd {
namespace {

// What a pooled lease is granted with beyond the seconds asked: how long it
// can wait in the pool.
constexpr int64_t kSpareSeconds = 1;
// Kept off what is left of a pooled lease: the caller's Txn must commit
// while the lease lives, and our clock and etcd's leader's may disagree by
// a little.
constexpr Millis kMargin(100);

}  // namespace

EtcdLeasePool::EtcdLeasePool(EtcdClient* client, const Clock& clock,
                             LeasePoolOptions options)
    : client_(client), clock_(clock), options_(options) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

EtcdLeasePool::~EtcdLeasePool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

absl::StatusOr<LeaseGrant> EtcdLeasePool::Take(int64_t seconds) {
  seconds = std::max<int64_t>(1, seconds);
  {
    absl::MutexLock lock(&mu_);
    Bucket& bucket = BucketFor(seconds);
    const MonoTime now = clock_.Monotonic();
    // The oldest first; those past their time are dropped and expire.
    while (!bucket.ready.empty() && bucket.ready.front().usable_until < now) {
      bucket.ready.pop_front();
    }
    if (!bucket.ready.empty()) {
      LeaseGrant grant = bucket.ready.front().grant;
      bucket.ready.pop_front();
      ++hits_;
      AskFor(bucket, 1);
      return grant;
    }
    ++misses_;
    AskFor(bucket, 2);
  }
  return client_->GrantLease(seconds);
}

void EtcdLeasePool::Discard(int64_t lease) {
  if (lease == 0) return;
  absl::MutexLock lock(&mu_);
  if (to_revoke_.size() >= options_.max_discards) return;  // Left to expire.
  to_revoke_.push_back(lease);
}

int64_t EtcdLeasePool::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}

int64_t EtcdLeasePool::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

EtcdLeasePool::Bucket& EtcdLeasePool::BucketFor(int64_t seconds) {
  for (auto it = buckets_.begin(); it != buckets_.end(); ++it) {
    if (it->seconds == seconds) {
      buckets_.splice(buckets_.begin(), buckets_, it);
      return buckets_.front();
    }
  }
  // An evicted bucket's leases expire; its grants in flight find no bucket
  // and are discarded.
  if (buckets_.size() >= std::max<size_t>(1, options_.max_ttls)) {
    buckets_.pop_back();
  }
  buckets_.emplace_front();
  buckets_.front().seconds = seconds;
  return buckets_.front();
}

EtcdLeasePool::Bucket* EtcdLeasePool::FindBucket(int64_t seconds) {
  for (Bucket& bucket : buckets_) {
    if (bucket.seconds == seconds) return &bucket;
  }
  return nullptr;
}

const EtcdLeasePool::Bucket* EtcdLeasePool::FindBucket(int64_t seconds) const {
  for (const Bucket& bucket : buckets_) {
    if (bucket.seconds == seconds) return &bucket;
  }
  return nullptr;
}

size_t EtcdLeasePool::ready(int64_t seconds) const {
  absl::MutexLock lock(&mu_);
  const Bucket* bucket = FindBucket(seconds);
  return bucket == nullptr ? 0 : bucket->ready.size();
}

void EtcdLeasePool::AskFor(Bucket& bucket, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (bucket.ready.size() + bucket.granting >= options_.max_per_ttl) return;
    ++bucket.granting;
    to_grant_.push_back(bucket.seconds);
  }
}

void EtcdLeasePool::Run() {
  while (true) {
    int64_t seconds = 0;
    int64_t revoke = 0;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](EtcdLeasePool* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->to_grant_.empty() ||
                   !self->to_revoke_.empty();
          },
          this));
      if (stopping_) return;
      // Grants first: registrations wait on them; revocations wait on no one.
      if (!to_grant_.empty()) {
        seconds = to_grant_.front();
        to_grant_.pop_front();
      } else {
        revoke = to_revoke_.front();
        to_revoke_.pop_front();
      }
    }
    if (revoke != 0) {
      absl::Status revoked = client_->RevokeLease(revoke);
      if (!revoked.ok() && revoked.code() != absl::StatusCode::kNotFound) {
        LogLine(
            "etcd-lease-pool",
            absl::StrCat("revoking lease ", revoke,
                         " failed (it ends at its TTL): ", revoked.ToString()));
      }
      continue;
    }
    // Measured before the call: etcd starts the lease's time later.
    const MonoTime asked_at = clock_.Monotonic();
    absl::StatusOr<LeaseGrant> grant =
        client_->GrantLease(seconds + kSpareSeconds);
    bool discard = false;
    {
      absl::MutexLock lock(&mu_);
      Bucket* bucket = FindBucket(seconds);
      if (bucket != nullptr && bucket->granting > 0) --bucket->granting;
      if (!grant.ok()) {
        // Not retried here: the next Take() asks again, or grants itself
        // and reports the error.
        continue;
      }
      const MonoTime usable_until =
          asked_at + std::chrono::seconds(grant->ttl_seconds - seconds) -
          kMargin;
      if (bucket == nullptr || stopping_) {
        discard = true;
      } else {
        bucket->ready.push_back(Ready{*grant, usable_until});
      }
    }
    if (discard) Discard(grant->id);
  }
}

}  // namespace chat::registry::etcd
