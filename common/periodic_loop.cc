#include "common/periodic_loop.h"

#include <utility>

namespace chat {

PeriodicLoop::PeriodicLoop(const Clock& clock, Millis first_delay, Step step)
    : clock_(clock), step_(std::move(step)) {
  thread_ = std::thread(&PeriodicLoop::Run, this, first_delay);
}

PeriodicLoop::~PeriodicLoop() { Stop(); }

void PeriodicLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PeriodicLoop::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

bool PeriodicLoop::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void PeriodicLoop::Run(Millis first_delay) {
  std::optional<Millis> pause = first_delay;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (pause->count() > 0) {
        clock_.AwaitFor(
            &mu_,
            absl::Condition(
                +[](PeriodicLoop* loop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                     loop->mu_) { return loop->stopping_ || loop->woken_; },
                this),
            *pause);
      }
      if (stopping_) return;
      woken_ = false;
    }
    pause = step_();
    if (!pause) return;
  }
}

}  // namespace chat
