// The closed loop of chat-bench: a fixed number of callers, each starting
// its next operation as soon as the previous one ends, timed per operation.

#ifndef CHAT_TESTS_BENCH_DRIVER_H_
#define CHAT_TESTS_BENCH_DRIVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"

namespace chat::bench {

// Called once when an operation ends: "" for success, otherwise a short
// reason ("UNAVAILABLE", "stored", ...) that is counted, not printed each time.
using DoneCallback = std::function<void(const std::string& error)>;

// One kind of operation to measure.
// Thread-safe in this sense: Start() is called from many threads at once,
// but never twice at once for the same caller.
class Workload {
 public:
  virtual ~Workload() = default;

  // Starts one operation for `caller` (0 <= caller < the concurrency the
  // workload was built for) and calls `done` exactly once when it ends, from
  // any thread, possibly before Start() returns. `done` may start the
  // caller's next operation. Must not block for long: the callers share a
  // few gRPC threads.
  virtual void Start(int caller, DoneCallback done) = 0;
};

// CPU seconds (user + system) used so far: by this process, and by the
// processes a lab started for the run (its peers apart; 0 when none).
struct CpuTime {
  double own = 0;
  double others = 0;
};
// Reads CpuTime. Called at the measured window's start and end, from the
// thread running the load.
using CpuClock = std::function<CpuTime()>;

struct LoadOptions {
  int concurrency = 1;
  Millis warmup{1000};
  Millis duration{5000};
  // When > 0: no more than this many operations start, and the run ends when
  // they have all ended, or after `duration` at the latest (a time limit,
  // then). Every operation counts; `warmup` is ignored.
  int64_t operations = 0;
  // Where `LoadResult::cpu` is read from; this process only when empty.
  CpuClock cpu_clock;
};

struct LoadResult {
  int64_t calls = 0;   // Succeeded within the measured window.
  int64_t errors = 0;  // Failed within the measured window.
  std::map<std::string, int64_t> error_counts;  // By reason.
  double seconds = 0;                           // Length of the window.
  std::vector<int64_t> latencies_us;  // Of the successful calls, ascending.
  // CPU used during the window (with `operations`: the whole run), by
  // everything in the process (servers and driver alike) and by the others
  // the cpu_clock counts.
  CpuTime cpu;
};

// Runs `workload` with `options.concurrency` callers: unmeasured for
// `warmup`, then measured for `duration`; then lets every operation in
// flight end. Only operations that start and end inside the measured window
// count. Blocks for warmup + duration + the slowest operation.
LoadResult RunClosedLoop(Workload& workload, const LoadOptions& options);

// CPU seconds (user + system) this process used so far; 0 if unknown.
double OwnCpuSeconds();

struct OpenLoopOptions {
  double rate = 1000;  // Operations started per second, on a fixed schedule.
  // Operations in flight at most: the workload must serve this many callers.
  // An operation due while all are busy is not started but counted as
  // skipped, so a slow server cannot slow the schedule down.
  int slots = 1024;
  Millis warmup{1000};
  Millis duration{5000};
};

struct OpenLoopResult {
  LoadResult load;      // Of the operations scheduled inside the window.
  int64_t started = 0;  // Started inside the window.
  int64_t skipped = 0;  // Due inside the window, not started: no free slot.
  // Successful operations by the second of the window they ended in (the
  // last one also takes those that ended after the window): shows whether
  // the server collapsed at once, recovered, or slid.
  std::vector<int64_t> ok_per_second;
};

// Starts operations of `workload` at `options.rate` per second whatever the
// server's pace (an open loop, as independent clients do), unmeasured for
// `warmup`, measured for `duration`, then waits for those in flight to end:
// the workload's calls must carry a deadline. Blocks for warmup + duration +
// the slowest operation.
OpenLoopResult RunOpenLoop(Workload& workload, const OpenLoopOptions& options);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_DRIVER_H_
