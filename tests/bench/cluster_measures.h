// The measurements of chat-bench --cluster, each over the servers of a
// started BenchCluster: watch-fanout (watch_fanout.cc) and mailbox
// (mailbox_bench.cc).

#ifndef CHAT_TESTS_BENCH_CLUSTER_MEASURES_H_
#define CHAT_TESTS_BENCH_CLUSTER_MEASURES_H_

#include "tests/bench/bench.h"
#include "tests/bench/cluster_setup.h"
#include "tests/bench/run_report.h"

namespace chat::bench {

// What a measurement runs with. Not owned; all outlive the measurement.
struct ClusterBenchRun {
  const BenchOptions& options;
  const BenchCluster& cluster;  // Started.
  RunReport& report;  // Results and notes; failures count in its exit code.
};

// options.watchers Watch streams of one prefix per backend (etcd: half on
// each of "etcd-a" and "etcd-b"; sqlite: all on "sqlite"), then
// options.changes changes per backend (Register, then Unregister, of a
// fresh name, one at a time at the backend's first registry), split over
// options.rounds alternated rounds; for each change the delay from the
// write's start until each watcher reads it. Fails on a write that fails, a
// stream that ends and a change a watcher misses.
void RunWatchFanout(const ClusterBenchRun& bench);

// The store-and-forward round trip (Deposit, the item read from a Listen
// stream, its Ack) as a closed loop at each of options.concurrency (one
// recipient per caller) for options.duration after options.warmup,
// alternately as mail-sqlite (at "sqlite"), mail-etcd (at "etcd-a") and
// mail-etcd-2reg (deposited at "etcd-a", listened to and acknowledged at
// "etcd-b"), options.rounds times; then each etcd scenario's ratio to
// mail-sqlite. Fails on a failed call.
void RunMailbox(const ClusterBenchRun& bench);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_CLUSTER_MEASURES_H_
