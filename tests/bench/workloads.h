// The operations chat-bench measures, one Workload per scenario, each made
// of asynchronous gRPC calls (the callback API) so that many callers need
// no thread each.

#ifndef CHAT_TESTS_BENCH_WORKLOADS_H_
#define CHAT_TESTS_BENCH_WORKLOADS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "common/identity.h"
#include "peer/peer.h"
#include "registry/store/store.h"
#include "tests/bench/driver.h"
#include "tests/bench/lab.h"

namespace chat::bench {

using Channels = std::vector<std::shared_ptr<grpc::Channel>>;

// Caller i uses channels[i % channels.size()]. Every workload keeps state
// per caller, so it serves at most `callers` callers.

// GreetService/Greet: the baseline.
std::unique_ptr<Workload> NewGreetWorkload(const Channels& channels,
                                           int callers);

// The deadline of every call unless a workload is given another: far above
// any latency worth measuring; only a hung server hits it.
inline constexpr Millis kDefaultCallDeadline{10000};

// Registry/Resolve of a random name from `names`, which must exist; each
// call fails with DEADLINE_EXCEEDED after `deadline`.
std::unique_ptr<Workload> NewResolveWorkload(
    const Channels& channels, int callers, std::vector<std::string> names,
    Millis deadline = kDefaultCallDeadline);

// Registry/Register of `name_prefix` + 0, 1, 2, ...
// (one number per operation, from all callers) at 127.0.0.1:9, asking for
// `ttl`, with the proof of a key (one identity per caller); the leases are
// kept (never unregistered, never renewed).
std::unique_ptr<Workload> NewLeaseFillWorkload(const Channels& channels,
                                               int callers,
                                               std::string name_prefix,
                                               Millis ttl);

// The name NewLeaseFillWorkload registers for number `i`.
std::string FillName(const std::string& name_prefix, int64_t i);

// What one call of a register scenario is.
enum class RegisterCall {
  // Register of a fresh name, kept: a peer taking its name. One RPC, one
  // durable write. The name stays live for the TTL the workload is given.
  kRegister,
  // Register, then Unregister of the name: two RPCs, two durable writes.
  kCycle,
  // As older clients do it: Challenge first and a v1 proof, then
  // Unregister: three RPCs, two durable writes.
  kChallengeCycle,
};

// Registry/Register of a fresh name with the proof of a key (one identity
// per caller; chat-register-v2, dated, unless `call` is kChallengeCycle),
// asking for `ttl` (0: the registry's default), and what else `call` says.
std::unique_ptr<Workload> NewRegisterWorkload(const Channels& channels,
                                              int callers, RegisterCall call,
                                              Millis ttl = Millis(0));

// Registry/KeepAlive of a random lease from `leases`.
std::unique_ptr<Workload> NewKeepAliveWorkload(const Channels& channels,
                                               int callers,
                                               std::vector<HeldLease> leases);

// 90% resolve, 5% register + unregister (RegisterCall::kCycle), 5%
// keep-alive.
std::unique_ptr<Workload> NewMixedWorkload(const Channels& channels,
                                           int callers,
                                           std::vector<std::string> names,
                                           std::vector<HeldLease> leases);

// ChattingService/SendMessage straight to the peer `recipient`, as a peer
// delivers directly: each message (a fresh id, unsequenced) sealed per call
// by `sender_name`'s identity `sender` for `recipient_key`, which the
// receiver must already know for `sender_name` (it answers UNAVAILABLE to a
// sender whose key it has not looked up yet). `sender` need not outlive
// the workload.
std::unique_ptr<Workload> NewSendWorkload(const Channels& channels, int callers,
                                          const Identity& sender,
                                          std::string sender_name,
                                          std::string recipient,
                                          const PublicKey& recipient_key);

// Peer::Send on `sender` to `recipient`, done when `results` reports the
// message delivered. Neither pointer is owned; both must outlive it.
std::unique_ptr<Workload> NewDurableSendWorkload(peer::Peer* sender,
                                                 SendResults* results,
                                                 std::string recipient);

// Peer::Send on `sender` to `group` ("#team"), done when `results` reports
// each of its `copies` copies (one per other member) delivered. Neither
// pointer is owned; both must outlive it.
std::unique_ptr<Workload> NewGroupSendWorkload(peer::Peer* sender,
                                               SendResults* results,
                                               std::string group, int copies);

// The name of a gRPC status code, "UNAVAILABLE" for 14.
std::string CodeName(grpc::StatusCode code);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_WORKLOADS_H_
