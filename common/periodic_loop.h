// The one background loop of this codebase: do a step, then wait on the
// injected clock until the next step is due or the loop is stopped. Expiry,
// lease renewal, hold-back release, reconnecting watches and retries all run
// on it, so each is driven by a FakeClock in tests.

#ifndef CHAT_COMMON_PERIODIC_LOOP_H_
#define CHAT_COMMON_PERIODIC_LOOP_H_

#include <functional>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat {

// Runs a step on its own thread, again and again, with a pause between.
//
// Thread-safe. The thread starts in the constructor, so make the loop the
// last member its step uses (or hold it in a std::optional and emplace it
// once the rest is ready).
class PeriodicLoop {
 public:
  // Returns the pause before the next step, or nullopt to end the loop.
  using Step = std::function<std::optional<Millis>()>;

  // Runs `step` after `first_delay` (0: at once), then after each pause it
  // returns, until Stop() or the step returns nullopt. `clock` is not owned
  // and must outlive this.
  PeriodicLoop(const Clock& clock, Millis first_delay, Step step);

  // Same as Stop().
  ~PeriodicLoop();

  PeriodicLoop(const PeriodicLoop&) = delete;
  PeriodicLoop& operator=(const PeriodicLoop&) = delete;

  // Cuts the current pause short, waits for a running step to return and
  // ends the loop. A step that blocks (on a stream, say) must be unblocked
  // by its owner first. Must not be called from the step. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Cuts the current pause short: the next step runs now.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether Stop() was called; for steps that run long.
  bool stopping() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run(Millis first_delay);

  const Clock& clock_;
  const Step step_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace chat

#endif  // CHAT_COMMON_PERIODIC_LOOP_H_
