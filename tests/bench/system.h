// chat-bench --system: the targets that only the real binaries can
// show, each started as a child process on 127.0.0.1: the registry's memory
// with many live names, a peer's memory and start-up time (against the
// greeter's and chatctl's as the baseline), and the registry under overload.

#ifndef CHAT_TESTS_BENCH_SYSTEM_H_
#define CHAT_TESTS_BENCH_SYSTEM_H_

#include <ostream>

#include "tests/bench/bench.h"

namespace chat::bench {

// Runs the measurements in `options.system` ("memory", "startup",
// "overload"), printing to `out` (a report, or JSON lines with
// options.json) and problems to `err`. Uses options.names (leases
// registered through the gRPC API), startup_rounds, idle, peak_concurrency,
// overload_factor, call_deadline, warmup, duration and connections. Returns
// 0; kExitCannotStart when a binary does not start or become ready; or
// kExitCallsFailed when a registration failed, the overload saw an error
// other than RESOURCE_EXHAUSTED/DEADLINE_EXCEEDED, or the registry died or
// stopped answering. Targets missed are reported, not failures.
int RunSystemBench(const BenchOptions& options, std::ostream& out,
                   std::ostream& err);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_SYSTEM_H_
