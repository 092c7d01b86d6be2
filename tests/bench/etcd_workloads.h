// etcd's own calls as chat-bench scenarios, against an etcd the bench starts
// on loopback: the baseline the registry's etcd backend is judged against
// (a register can cost no less than the etcd writes it makes).

#ifndef CHAT_TESTS_BENCH_ETCD_WORKLOADS_H_
#define CHAT_TESTS_BENCH_ETCD_WORKLOADS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/bench/driver.h"
#include "tests/bench/workloads.h"

namespace chat::bench {

// Puts `count` keys (EtcdRangeKey(0..count-1), 64-byte values) through
// `channel`, one call at a time.
absl::Status FillEtcd(const std::shared_ptr<grpc::Channel>& channel, int count);

// The key FillEtcd writes for number `i`.
std::string EtcdRangeKey(int i);

// KV/Put of a 64-byte value under one key per caller: one raft commit (and
// fsync) per call, the cheapest durable write etcd does.
std::unique_ptr<Workload> NewEtcdPutWorkload(const Channels& channels,
                                             int callers);

// KV/Range of one random key of `count` filled ones, serializable (answered
// by the member from its own state, no quorum round): the cheapest read.
std::unique_ptr<Workload> NewEtcdRangeWorkload(const Channels& channels,
                                               int callers, int count);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_ETCD_WORKLOADS_H_
