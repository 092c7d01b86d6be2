// Messages from strangers: plain ones (from a name bound to no key, so
// nothing proves who wrote them) from a name the user never talked with.
// They are let through a few at a time, per sender name and per source
// host, so a flood of them never fills the screen; what is refused is
// counted on one line.

#ifndef CHAT_PEER_STRANGERS_H_
#define CHAT_PEER_STRANGERS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "peer/events.h"

namespace chat::peer {

// A rate limit on strangers' messages: each sender name and each source
// host may send `burst` messages at once, then one per `every` (a token
// bucket, on the injected clock). A refused message is refused before it is
// kept or shown, with kResourceExhausted, so its sender knows: nothing
// acknowledged is lost.
//
// The screen hears of refusals on one kInfo line ("2,065 messages from
// strangers refused (too many at once)"): at the first refusal, then at
// most once per `notice_every` with the total so far, through Admit() or
// Tick(); never a line per message.
//
// Memory is bounded: at most `max_tracked` names and as many hosts are
// remembered; beyond, those whose bucket is full again are forgotten, and
// if none is, new ones share one bucket.
//
// Thread-safe; `events` is called without the lock held.
class StrangerGate {
 public:
  struct Options {
    int sender_burst = 5;
    Millis sender_every{10000};
    int host_burst = 20;
    Millis host_every{1000};
    size_t max_tracked = 10000;
    Millis notice_every{10000};
  };

  // `events` and `clock` are not owned and must outlive this.
  StrangerGate(Options options, EventSink* events, const Clock& clock);

  // OK when a message from `sender` (a name as it came) sent from `host`
  // (ClientHost(); empty when not known) may be taken now; else
  // kResourceExhausted, and the refusal is counted.
  absl::Status Admit(const std::string& sender, const std::string& host)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Shows the count of refusals not told yet, when the last line is
  // `notice_every` old (from a periodic loop: the count of a flood that has
  // stopped still reaches the screen).
  void Tick() ABSL_LOCKS_EXCLUDED(mu_);

  // Messages refused so far.
  int64_t refused() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Generic cell rate algorithm: a key may go when its theoretical arrival
  // time is at most (burst - 1) * every ahead of now.
  struct Limit {
    int burst;
    Millis every;
  };
  using Buckets = absl::flat_hash_map<std::string, MonoTime>;
  // The entry of `key` in `buckets` (made room for, or the shared one).
  MonoTime& BucketLocked(Buckets& buckets, const std::string& key, MonoTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The notice to show now, if one is due; "" otherwise.
  std::string DueNoticeLocked(MonoTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  EventSink* const events_;  // Not owned.
  const Clock& clock_;

  mutable absl::Mutex mu_;
  Buckets senders_ ABSL_GUARDED_BY(mu_);  // By name key.
  Buckets hosts_ ABSL_GUARDED_BY(mu_);
  int64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t told_ ABSL_GUARDED_BY(mu_) = 0;  // refused_ as last shown.
  bool ever_told_ ABSL_GUARDED_BY(mu_) = false;
  MonoTime last_told_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_STRANGERS_H_
