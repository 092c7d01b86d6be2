#include "tests/bench/driver.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

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
  Loop(Workload& workload, int concurrency, int64_t operations)
      : workload_(workload),
        callers_(concurrency),
        limited_(operations > 0),
        budget_(operations) {
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

  // True when every caller stopped within `timeout`.
  bool WaitForCallers(Millis timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(
            +[](int* running) { return *running == 0; }, &running_),
        absl::FromChrono(timeout));
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
      const bool spent = limited_ && budget_.fetch_sub(1) <= 0;
      if (phase == kStop || spent) {
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
  const bool limited_;
  std::atomic<int64_t> budget_;  // Operations left to start, when limited_.
  std::atomic<int> phase_{kWarmup};
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

CpuTime ReadCpu(const LoadOptions& options) {
  if (options.cpu_clock) return options.cpu_clock();
  CpuTime cpu;
  cpu.own = OwnCpuSeconds();
  return cpu;
}

CpuTime CpuBetween(const CpuTime& start, const CpuTime& end) {
  CpuTime spent;
  spent.own = end.own - start.own;
  spent.others = end.others - start.others;
  return spent;
}

}  // namespace

double OwnCpuSeconds() {
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const struct timeval& time) {
    return static_cast<double>(time.tv_sec) +
           static_cast<double>(time.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

LoadResult RunClosedLoop(Workload& workload, const LoadOptions& options) {
  Loop loop(workload, options.concurrency, options.operations);
  if (options.operations > 0) {
    const MonoTime start = std::chrono::steady_clock::now();
    const CpuTime cpu_start = ReadCpu(options);
    loop.Begin(kMeasure);
    if (!loop.WaitForCallers(options.duration)) loop.Enter(kStop);
    loop.WaitForCallers();
    LoadResult result = loop.Collect(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    result.cpu = CpuBetween(cpu_start, ReadCpu(options));
    return result;
  }
  // A benchmark's timing is its wall clock; nothing here waits on a condition
  // that a sleep could replace.
  MonoTime start;
  CpuTime cpu_start;
  if (options.warmup.count() > 0) {
    loop.Begin(kWarmup);
    std::this_thread::sleep_for(options.warmup);
    start = std::chrono::steady_clock::now();
    cpu_start = ReadCpu(options);
    loop.Enter(kMeasure);
  } else {
    start = std::chrono::steady_clock::now();
    cpu_start = ReadCpu(options);
    loop.Begin(kMeasure);
  }
  std::this_thread::sleep_for(options.duration);
  loop.Enter(kStop);
  const MonoTime end = std::chrono::steady_clock::now();
  const CpuTime cpu_end = ReadCpu(options);
  loop.WaitForCallers();
  LoadResult result =
      loop.Collect(std::chrono::duration<double>(end - start).count());
  result.cpu = CpuBetween(cpu_start, cpu_end);
  return result;
}

namespace {

// The open loop's bookkeeping: which slots are free, and what the measured
// operations did. Completions come from gRPC threads, hence the lock.
class OpenLoop {
 public:
  OpenLoop(Workload& workload, int slots, MonoTime window_start, int seconds)
      : workload_(workload),
        window_start_(window_start),
        started_(slots),
        ok_per_second_(static_cast<size_t>(std::max(seconds, 1)), 0) {
    for (int i = slots - 1; i >= 0; --i) free_.push_back(i);
  }

  // Starts one operation if a slot is free; false otherwise.
  bool Issue(bool measured) {
    int slot = 0;
    {
      absl::MutexLock lock(&mu_);
      if (free_.empty()) return false;
      slot = free_.back();
      free_.pop_back();
    }
    started_[slot] = std::chrono::steady_clock::now();
    workload_.Start(slot, [this, slot, measured](const std::string& error) {
      const MonoTime now = std::chrono::steady_clock::now();
      const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                             now - started_[slot])
                             .count();
      const auto second = static_cast<size_t>(std::max<int64_t>(
          0,
          std::chrono::duration_cast<std::chrono::seconds>(now - window_start_)
              .count()));
      absl::MutexLock lock(&mu_);
      if (measured) {
        if (error.empty()) {
          result_.latencies_us.push_back(us);
          ++ok_per_second_[std::min(second, ok_per_second_.size() - 1)];
        } else {
          ++result_.error_counts[error];
        }
      }
      free_.push_back(slot);
    });
    return true;
  }

  // Waits until every slot is free again, for at most `timeout`.
  bool WaitForIdle(Millis timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(this, &OpenLoop::Idle),
                                absl::FromChrono(timeout));
  }

  std::vector<int64_t> OkPerSecond() {
    absl::MutexLock lock(&mu_);
    return ok_per_second_;
  }

  LoadResult Collect(double seconds) {
    absl::MutexLock lock(&mu_);
    LoadResult result = std::move(result_);
    result.seconds = seconds;
    result.calls = static_cast<int64_t>(result.latencies_us.size());
    for (const auto& [reason, count] : result.error_counts) {
      result.errors += count;
    }
    std::sort(result.latencies_us.begin(), result.latencies_us.end());
    return result;
  }

 private:
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return free_.size() == started_.size();
  }

  Workload& workload_;
  const MonoTime window_start_;
  // Written by the issuing thread before Start(), read by the completion:
  // Start() orders the two.
  std::vector<MonoTime> started_;
  absl::Mutex mu_;
  std::vector<int> free_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> ok_per_second_ ABSL_GUARDED_BY(mu_);
  LoadResult result_ ABSL_GUARDED_BY(mu_);
};

// How long the open loop waits for its last operations; their deadline ends
// them long before, so running out of it means a broken workload.
constexpr Millis kOpenLoopDrain{60000};

// The schedule is checked this often; operations that fell due meanwhile
// start together, so the rate holds on average.
constexpr std::chrono::microseconds kTick{200};

}  // namespace

OpenLoopResult RunOpenLoop(Workload& workload, const OpenLoopOptions& options) {
  OpenLoopResult result;
  const MonoTime start = std::chrono::steady_clock::now();
  const MonoTime window_start = start + options.warmup;
  OpenLoop loop(workload, options.slots, window_start,
                static_cast<int>(std::ceil(
                    std::chrono::duration<double>(options.duration).count())));
  const MonoTime end = window_start + options.duration;
  int64_t due_done = 0;
  for (MonoTime now = start; now < end;
       now = std::chrono::steady_clock::now()) {
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const auto due = static_cast<int64_t>(elapsed * options.rate);
    const bool measured = now >= window_start;
    for (; due_done < due; ++due_done) {
      const bool started = loop.Issue(measured);
      if (!measured) continue;
      ++(started ? result.started : result.skipped);
    }
    std::this_thread::sleep_for(kTick);
  }
  if (!loop.WaitForIdle(kOpenLoopDrain)) {
    // The callbacks still refer to `loop`; returning would be a use after
    // free. Every call has a deadline, so this is a bug: crash loudly.
    std::fprintf(stderr, "chat-bench: open-loop calls did not end in %lld s\n",
                 static_cast<long long>(kOpenLoopDrain.count() / 1000));
    std::abort();
  }
  result.ok_per_second = loop.OkPerSecond();
  result.load =
      loop.Collect(std::chrono::duration<double>(end - window_start).count());
  return result;
}

}  // namespace chat::bench
