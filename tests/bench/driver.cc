#include "tests/bench/driver.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chat::bench {
namespace {

enum Phase : int { kWarmup, kMeasure, kStop };

// Where a caller's current operation is, so that an operation ending inside
// Workload::Start() continues the caller's loop instead of recursing.
enum CallState : int { kStarting, kInFlight, kEndedInline };

struct Caller {
  int index = 0;
  std::atomic<int> state{kStarting};
  // Touched only by the thread running the caller's current operation; the
  // operations of one caller never overlap.
  bool measured = false;
  MonoTime started;
  std::vector<int64_t> latencies_us;
  std::map<std::string, int64_t> error_counts;
};

class Loop {
 public:
  Loop(Workload& workload, int concurrency)
      : workload_(workload), callers_(concurrency) {
    for (int i = 0; i < concurrency; ++i) {
      callers_[i] = std::make_unique<Caller>();
      callers_[i]->index = i;
    }
    running_ = concurrency;
  }

  void Begin(Phase phase) {
    phase_.store(phase);
    for (auto& caller : callers_) Issue(caller.get());
  }

  void Enter(Phase phase) { phase_.store(phase); }

  void WaitForCallers() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* running) { return *running == 0; }, &running_));
  }

  // After WaitForCallers(): no operation is in flight any more.
  LoadResult Collect(double seconds) {
    LoadResult result;
    result.seconds = seconds;
    for (auto& caller : callers_) {
      result.calls += static_cast<int64_t>(caller->latencies_us.size());
      result.latencies_us.insert(result.latencies_us.end(),
                                 caller->latencies_us.begin(),
                                 caller->latencies_us.end());
      for (const auto& [reason, count] : caller->error_counts) {
        result.errors += count;
        result.error_counts[reason] += count;
      }
    }
    std::sort(result.latencies_us.begin(), result.latencies_us.end());
    return result;
  }

 private:
  void Issue(Caller* caller) {
    while (true) {
      const int phase = phase_.load();
      if (phase == kStop) {
        absl::MutexLock lock(&mu_);
        --running_;
        return;
      }
      caller->measured = phase == kMeasure;
      caller->state.store(kStarting);
      caller->started = std::chrono::steady_clock::now();
      workload_.Start(caller->index, [this, caller](const std::string& error) {
        Complete(caller, error);
      });
      int expected = kStarting;
      if (caller->state.compare_exchange_strong(expected, kInFlight)) return;
      // It ended inside Start(): Complete() left the next one to us.
    }
  }

  void Complete(Caller* caller, const std::string& error) {
    const MonoTime now = std::chrono::steady_clock::now();
    if (caller->measured && phase_.load() == kMeasure) {
      if (error.empty()) {
        caller->latencies_us.push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(
                now - caller->started)
                .count());
      } else {
        ++caller->error_counts[error];
      }
    }
    int expected = kStarting;
    if (caller->state.compare_exchange_strong(expected, kEndedInline)) return;
    Issue(caller);
  }

  Workload& workload_;
  std::vector<std::unique_ptr<Caller>> callers_;
  std::atomic<int> phase_{kWarmup};
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

LoadResult RunClosedLoop(Workload& workload, const LoadOptions& options) {
  Loop loop(workload, options.concurrency);
  // A benchmark's timing is its wall clock; nothing here waits on a condition
  // that a sleep could replace.
  MonoTime start;
  if (options.warmup.count() > 0) {
    loop.Begin(kWarmup);
    std::this_thread::sleep_for(options.warmup);
    start = std::chrono::steady_clock::now();
    loop.Enter(kMeasure);
  } else {
    start = std::chrono::steady_clock::now();
    loop.Begin(kMeasure);
  }
  std::this_thread::sleep_for(options.duration);
  loop.Enter(kStop);
  const MonoTime end = std::chrono::steady_clock::now();
  loop.WaitForCallers();
  return loop.Collect(std::chrono::duration<double>(end - start).count());
}

}  // namespace chat::bench
