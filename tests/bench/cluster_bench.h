// chat-bench --cluster: what only registries over etcd can show, measured on
// real chat-registry binaries (child processes on 127.0.0.1) over a
// one-member etcd the bench starts on loopback, each against the same done
// by one chat-registry on SQLite in the same run.

#ifndef CHAT_TESTS_BENCH_CLUSTER_BENCH_H_
#define CHAT_TESTS_BENCH_CLUSTER_BENCH_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/bench/bench.h"

namespace chat::bench {

// "watch-fanout,mailbox" or "all" -> the cluster measurements, each once.
// kInvalidArgument naming an unknown one.
absl::StatusOr<std::vector<std::string>> ParseClusterMeasures(
    const std::string& list);

// Runs the measurements in `options.cluster`:
//  - watch-fanout: options.watchers Watch streams of one prefix, spread
//    over two registries on etcd (and, as the baseline, as many on one
//    registry on SQLite); options.changes changes (Register, then
//    Unregister, of a fresh name, one at a time at the first registry) per
//    backend, split over options.rounds alternated rounds; for each change
//    the delay from the write's start until each watcher reads it.
//  - mailbox: deposit + the item read from a Listen stream + its Ack, as a
//    closed loop at each of options.concurrency (one recipient per caller)
//    for options.duration after options.warmup, alternately on SQLite, on
//    etcd through one registry, and on etcd depositing at one registry and
//    listening at the other, options.rounds times.
// Prints to `out` (a report, or JSON lines with options.json) and problems
// to `err`. Returns 0; kExitCannotStart when etcd or a registry does not
// start; kExitCallsFailed when a call failed or a watcher missed a change
// (targets missed are reported, not failures).
int RunClusterBench(const BenchOptions& options, std::ostream& out,
                    std::ostream& err);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_CLUSTER_BENCH_H_
