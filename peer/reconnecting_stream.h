// One registry stream (Watch, Listen) kept open for as long as the peer
// runs: opened, read to its end, opened again after a pause. The registry
// follower and the mail listener both run on it.

#ifndef CHAT_PEER_RECONNECTING_STREAM_H_
#define CHAT_PEER_RECONNECTING_STREAM_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/periodic_loop.h"

namespace chat::peer {

// Reads a server stream on its own thread (a PeriodicLoop on the injected
// clock). When a stream ends, the next one opens after 200 ms, doubling to
// 5 s; back to 200 ms once a stream makes progress. `Stream` is a
// registry::ServerStream<Proto, Item> (Next, Finish, Cancel).
//
// Thread-safe. The callbacks run on the loop's thread, one at a time, and
// must not call Stop().
template <typename Stream, typename Item>
class ReconnectingStream {
 public:
  struct Callbacks {
    // Opens the next stream; nullptr: none now, try again after the pause.
    std::function<std::unique_ptr<Stream>()> open;
    // Handles one item; returns whether it is progress (resets the pause).
    std::function<bool(const Item&)> on_item;
    // The stream ended, not through Stop(), for `status`.
    std::function<void(const absl::Status&)> on_end;
  };

  // Opens the first stream at once. `clock` must outlive this.
  ReconnectingStream(const Clock& clock, Callbacks callbacks)
      : callbacks_(std::move(callbacks)) {
    loop_.emplace(clock, Millis(0), [this] { return ReadOnce(); });
  }

  // Same as Stop().
  ~ReconnectingStream() { Stop(); }

  ReconnectingStream(const ReconnectingStream&) = delete;
  ReconnectingStream& operator=(const ReconnectingStream&) = delete;

  // Ends the current stream (if one is open), so that the next one opens
  // after the usual pause: a stream that hands out only what is new reads
  // from the start again.
  void Reopen() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (stream_ != nullptr) stream_->Cancel();
  }

  // What the stream should cover changed: ends the current stream (if one
  // is open, or one opening now) and opens the next one at once, without
  // the pause and without on_end.
  void Restart() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      ++generation_;
      if (stream_ != nullptr) stream_->Cancel();
    }
    loop_->Wake();
  }

  // Cancels the stream and ends the thread; no callback runs after it
  // returns. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (stream_ != nullptr) stream_->Cancel();
    }
    loop_->Stop();
  }

 private:
  static constexpr Millis kFirstPause{200};
  static constexpr Millis kLongestPause{5000};

  // Reads one stream to its end; the pause before the next, or nullopt
  // when stopping.
  std::optional<Millis> ReadOnce() ABSL_LOCKS_EXCLUDED(mu_) {
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = generation_;
    }
    std::unique_ptr<Stream> opened = callbacks_.open();
    Stream* stream = opened.get();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return std::nullopt;
      // Owned here so Stop() can cancel it; only this thread replaces it.
      stream_ = std::move(opened);
      // Restart() while it opened: it may cover what no longer should be.
      if (stream_ != nullptr && generation_ != generation) stream_->Cancel();
    }
    if (stream != nullptr) {
      Item item;
      while (stream->Next(&item)) {
        if (callbacks_.on_item(item)) pause_ = kFirstPause;
      }
      absl::Status status = stream->Finish();
      bool restarted;
      {
        absl::MutexLock lock(&mu_);
        stream_.reset();
        if (stopping_) return std::nullopt;
        restarted = generation_ != generation;
      }
      if (restarted) return Millis(0);
      callbacks_.on_end(status);
    }
    const Millis pause = pause_;
    pause_ = std::min(pause_ * 2, kLongestPause);
    return pause;
  }

  const Callbacks callbacks_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Stream> stream_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // One per Restart().
  Millis pause_ = kFirstPause;                    // The loop's thread only.
  std::optional<PeriodicLoop> loop_;  // Last: its thread uses the above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_RECONNECTING_STREAM_H_
