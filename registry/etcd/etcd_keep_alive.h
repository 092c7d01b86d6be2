// Keeps many etcd leases alive over ONE LeaseKeepAlive stream per process,
// and says when etcd reports one of them gone.

#ifndef CHAT_REGISTRY_ETCD_ETCD_KEEP_ALIVE_H_
#define CHAT_REGISTRY_ETCD_ETCD_KEEP_ALIVE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/periodic_loop.h"
#include "registry/etcd/etcd_client.h"

namespace chat::registry::etcd {

// Told when etcd answers a renewal with "no such lease": the lease expired
// (we renewed too late, or etcd was unreachable longer than its TTL) or was
// revoked. Called on the keep-alive's reader thread, with no lock held; it
// must not call back into EtcdKeepAlive's destructor.
class LeaseLossListener {
 public:
  virtual ~LeaseLossListener() = default;
  virtual void OnLeaseLost(int64_t lease) = 0;
};

// EtcdKeepAlive renews every lease it keeps at a third of its TTL over one
// bidirectional stream, reopened (on the client's next endpoint) when it
// breaks, when its member loses its leader, or when renewals written to it
// go unanswered for the client's attempt_timeout() (a hung member). A renewal
// moves the lease's end to TTL from when etcd's leader handles it; etcd answers
// each with the TTL granted again.
//
// Losing the stream loses nothing by itself: leases live their TTL on etcd,
// and the renewals resume on the new stream; a lease whose TTL ran out in
// between is reported to the listener when its renewal is refused.
//
// Thread-safe. Owns one loop thread (writes, reconnects) and one reader
// thread per stream.
class EtcdKeepAlive {
 public:
  // `client`, `clock` and `listener` are not owned and must outlive this;
  // `listener` may be null.
  EtcdKeepAlive(EtcdClient* client, const Clock& clock,
                LeaseLossListener* listener);
  // Stops renewing (the leases then end at their TTL on etcd) and joins
  // the threads.
  ~EtcdKeepAlive();
  EtcdKeepAlive(const EtcdKeepAlive&) = delete;
  EtcdKeepAlive& operator=(const EtcdKeepAlive&) = delete;

  // Starts renewing `lease`, granted with `ttl_seconds` (at least 1). The
  // first renewal goes a third of the TTL from now. Keeping a kept lease
  // again updates its TTL.
  void Keep(int64_t lease, int64_t ttl_seconds) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops renewing `lease` (it then ends at its TTL, unless revoked).
  void Forget(int64_t lease) ABSL_LOCKS_EXCLUDED(mu_);

  // Renews `lease` once, now, on the shared stream, and calls `done` with
  // what etcd answered: the TTL it granted again, kNotFound when the lease
  // no longer exists, or kUnavailable when the stream broke before the
  // answer came (the renewal may or may not have happened; renew again).
  // For renewals a client asks for (the registry's KeepAlive): `lease` need
  // not be kept. `done` runs on the reader thread (or, when the keep-alive
  // is destroyed first, on the destroying thread with kUnavailable), with
  // no lock held, exactly once; it must not block.
  using RenewCallback = std::function<void(absl::StatusOr<int64_t>)>;
  void RenewOnce(int64_t lease, RenewCallback done) ABSL_LOCKS_EXCLUDED(mu_);

  // How many leases are kept; how many renewals etcd confirmed so far,
  // periodic or asked for (for tests and metrics).
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t renewals() const ABSL_LOCKS_EXCLUDED(mu_);
  // How many times a stream was opened (1 while the first one lives).
  int64_t streams_opened() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Kept {
    int64_t ttl_seconds = 0;
    MonoTime next_due;
  };
  struct Stream;

  // The loop's step: reopen a broken stream, send the renewals due.
  std::optional<Millis> Step() ABSL_LOCKS_EXCLUDED(mu_);
  void ReadLoop(Stream* stream) ABSL_LOCKS_EXCLUDED(mu_);
  static Millis Interval(int64_t ttl_seconds);
  // Empties in_flight_ (and queued_ with `queued_too`); returns their
  // callbacks, to be failed outside the lock.
  std::vector<RenewCallback> TakeUnanswered(bool queued_too)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EtcdClient* const client_;
  const Clock& clock_;
  LeaseLossListener* const listener_;
  // How long renewals may go unanswered before the stream counts as broken
  // (the deadline of one call attempt, as for a unary call to a member that
  // hangs).
  const Millis answer_timeout_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<int64_t, Kept> kept_ ABSL_GUARDED_BY(mu_);
  // RenewOnce() calls not yet written to the stream, by lease.
  absl::flat_hash_map<int64_t, std::vector<RenewCallback>> queued_
      ABSL_GUARDED_BY(mu_);
  // Renewals written and not yet answered, by lease, oldest first: etcd
  // answers the requests of one stream one by one in order, so an answer
  // for a lease belongs to the oldest of its renewals in flight. Each holds
  // the callbacks it answers (none for the periodic ones).
  absl::flat_hash_map<int64_t, std::deque<std::vector<RenewCallback>>>
      in_flight_ ABSL_GUARDED_BY(mu_);
  // The live stream; replaced by the loop thread only.
  std::unique_ptr<Stream> stream_ ABSL_GUARDED_BY(mu_);
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  // Since when renewals written to the stream wait for an answer with none
  // coming (reset by each answer); nullopt when none waits.
  std::optional<MonoTime> unanswered_since_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t renewals_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t streams_opened_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread reader_;  // Touched by the loop thread and the destructor.

  std::optional<PeriodicLoop> loop_;  // Last: its thread uses the above.
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_KEEP_ALIVE_H_
