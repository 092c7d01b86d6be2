// Whether the member under a long-lived etcd stream still answers: a member
// that hangs (stopped, or cut off without a reset) keeps its connection and
// says nothing, which a reader cannot tell from a quiet key range until
// gRPC's keepalive gives the connection up. EtcdWatch runs one of these.

#ifndef CHAT_REGISTRY_ETCD_WATCH_LIVENESS_H_
#define CHAT_REGISTRY_ETCD_WATCH_LIVENESS_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat::registry::etcd {

// WatchLiveness: when the reader has waited `patience` for the next answer
// and none came, asks the member for one (a progress notification, which
// etcd answers at once from memory); when none comes within `patience`
// more, gives the stream up. Only time the reader spends waiting counts: a
// reader busy with the last batch leaves answers queued, which says nothing
// about the member.
//
// An answer proves the member is alive, nothing more: etcd 3.4.23 may send
// a progress notification ahead of events still to come, so callers never
// take its revision for completeness. A member without a leader still
// answers progress requests (from its own revision); the "hasleader"
// metadata on the stream is what ends a watch there.
//
// Thread-safe: the reader calls WaitStarted()/WaitEnded() around each read,
// one thread runs Run(), any thread calls Stop().
class WatchLiveness {
 public:
  // What the check does to the stream it watches; called on Run()'s
  // thread with no lock of the check held.
  class Stream {
   public:
    virtual ~Stream() = default;
    // Asks the member for any answer now. False when the stream is over
    // (the reader will see it end).
    virtual bool AskForProgress() = 0;
    // The member did not answer: end the stream, so the reader's wait
    // returns, and have the next stream go to another member.
    virtual void GiveUp() = 0;
  };

  // `clock` is not owned and must outlive this.
  WatchLiveness(const Clock& clock, Millis patience);

  WatchLiveness(const WatchLiveness&) = delete;
  WatchLiveness& operator=(const WatchLiveness&) = delete;

  // The reader starts waiting for the next answer, or stops: one came, or
  // the stream ended.
  void WaitStarted() ABSL_LOCKS_EXCLUDED(mu_);
  void WaitEnded() ABSL_LOCKS_EXCLUDED(mu_);

  // Checks until Stop() or until it gave the stream up (then it returns
  // at once). `stream` must outlive the call.
  void Run(Stream& stream) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends Run() soon, from any thread.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  Millis patience() const { return patience_; }
  // Whether Run() gave the stream up.
  bool gave_up() const ABSL_LOCKS_EXCLUDED(mu_);
  // Progress requests sent so far (for tests and metrics).
  int64_t progress_requests() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Waits on the clock until Stop() or until the wait numbered `wait` is
  // over; false when `deadline` came first.
  bool AwaitEndOfWait(uint64_t wait, MonoTime deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;  // Not owned.
  const Millis patience_;
  mutable absl::Mutex mu_;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  // Numbers the reader's waits, so the check knows an answer came in
  // between even when the reader waits again already.
  uint64_t wait_number_ ABSL_GUARDED_BY(mu_) = 0;
  MonoTime waiting_since_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool gave_up_ ABSL_GUARDED_BY(mu_) = false;
  int64_t progress_requests_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_WATCH_LIVENESS_H_
