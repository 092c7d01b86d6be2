// Which members of an etcd cluster the client passes over for now: the
// bookkeeping behind EtcdClient's choice of endpoint, kept apart so that its
// rules run on a fake clock.

#ifndef CHAT_REGISTRY_ETCD_ENDPOINT_PAUSES_H_
#define CHAT_REGISTRY_ETCD_ENDPOINT_PAUSES_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat::registry::etcd {

// EndpointPauses: one pause per endpoint, numbered 0..n-1.
//
// An endpoint that failed (a call it left unanswered, a stream that broke
// or went silent, a watch it refused for want of a leader) is paused for
// 1 s, doubling with each failure in a row up to 30 s, so calls go to the
// others meanwhile. Any answer from it (a call, or a stream it accepted:
// a watch created, a renewal answered) ends its pause and its run of
// failures: a member that answers again is used again at once, whatever
// its pause had grown to while it could not.
//
// Thread-safe: every method may be called from many threads at once.
class EndpointPauses {
 public:
  // `clock` is not owned and must outlive this.
  EndpointPauses(const Clock& clock, size_t endpoints);

  EndpointPauses(const EndpointPauses&) = delete;
  EndpointPauses& operator=(const EndpointPauses&) = delete;

  // Endpoint `i` failed: paused from now for its next pause. True when
  // this failure starts a run (it was answering until now).
  bool Failed(size_t i) ABSL_LOCKS_EXCLUDED(mu_);
  // Endpoint `i` answered: not paused, no failures. Returns the failures in
  // a row this answer ended: more than 0 when the endpoint came back (the
  // network to it healed, or the member is up again), 0 when it was
  // answering already.
  int Answered(size_t i) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether endpoint `i` is to be passed over now.
  bool Paused(size_t i) const ABSL_LOCKS_EXCLUDED(mu_);
  // Failures of endpoint `i` in a row (for tests and logs).
  int Failures(size_t i) const ABSL_LOCKS_EXCLUDED(mu_);

  // Whether to cut gRPC's own wait on endpoint `i` short now: true at most
  // once per kRetryEvery for each endpoint. gRPC spaces the reconnections
  // of a channel that failed, and the DNS lookups of a name it could not
  // resolve, further and further apart (up to 2 minutes), so after a long
  // outage a member reachable again would stay unused until gRPC's next
  // try; the client asks for a try now instead, while it needs a member.
  bool TakeRetry(size_t i) ABSL_LOCKS_EXCLUDED(mu_);

  static constexpr Millis kFirstPause{1000};
  static constexpr Millis kMaxPause{30000};
  static constexpr Millis kRetryEvery{1000};

 private:
  struct Pause {
    MonoTime until;                      // Passed over before this.
    int failures = 0;                    // In a row; 0: answering.
    std::optional<MonoTime> last_retry;  // TakeRetry() said yes then.
  };

  const Clock& clock_;  // Not owned.
  mutable absl::Mutex mu_;
  std::vector<Pause> pauses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ENDPOINT_PAUSES_H_
