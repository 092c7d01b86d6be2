// A thin C++ client of etcd's v3 API (KV, Lease, Compact) over the stubs
// generated from etcd's own protos, for the registry's etcd backend. Plain
// structs in, plain structs out: no generated type appears in this header.

#ifndef CHAT_REGISTRY_ETCD_ETCD_CLIENT_H_
#define CHAT_REGISTRY_ETCD_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "registry/etcd/endpoint_pauses.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace chat::registry::etcd {

// How to reach the cluster (--etcd-endpoints, --etcd-ca/cert/key).
struct EtcdConfig {
  // "host:port" of each member's client URL, at least one. A host name may
  // resolve to several addresses; each is used.
  std::vector<std::string> endpoints;
  // TLS to etcd: the CA etcd's certificates are signed by and, when etcd
  // asks for one (--client-cert-auth), our certificate and key. Empty CA:
  // plaintext.
  TlsClientFiles tls;
  // Deadline of each unary call.
  absl::Duration call_timeout = absl::Seconds(5);
  // gRPC keepalive of each channel: a ping after this long without traffic,
  // the connection given up when the ping is not answered within 5 s. It
  // notices a member that died without closing its connections; calls and
  // watches notice a member that hangs sooner on their own (see
  // attempt_timeout()). Tests lengthen it to show they do not depend on it.
  absl::Duration keepalive_time = absl::Seconds(10);
};

// Splits "a:2379,b:2379" (spaces allowed) into endpoints; kInvalidArgument
// when it names none or one has no port.
absl::StatusOr<std::vector<std::string>> ParseEndpoints(
    const std::string& list);

// One key as etcd stores it (mvccpb.KeyValue).
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // 0 only for "absent" in a compare.
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: no lease.
};

// The end of the range of keys that start with `prefix` (etcd's range_end
// for a prefix read): `prefix` with its last byte below 0xff incremented,
// or "\0" (every key) for an empty prefix or one of 0xff bytes only.
std::string PrefixEnd(const std::string& prefix);

// What a Range reads: one key, or [key, range_end).
struct RangeRequest {
  std::string key;
  std::string range_end;  // Empty: `key` alone. See PrefixEnd().
  int64_t limit = 0;      // 0: no limit.
  int64_t revision = 0;   // 0: the newest; else as of that revision.
  // Answered by the member we ask, from its own state, without a quorum
  // round: cheaper, and may miss the latest writes (stale by the member's
  // lag). Linearizable when false.
  bool serializable = false;
  bool keys_only = false;
  bool count_only = false;

  static RangeRequest Key(std::string key);
  static RangeRequest Prefix(const std::string& prefix);
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // Sorted by key.
  bool more = false;          // More keys past `limit`.
  int64_t count = 0;          // Keys in the range, whatever the limit.
  int64_t revision = 0;       // The store's revision the read saw.
};

// A condition of a Txn, on one key (etcd's Compare).
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };

  Target target = Target::kVersion;
  Result result = Result::kEqual;
  std::string key;
  int64_t number = 0;  // For every target but kValue.
  std::string value;   // For kValue.

  // `key` does not exist (its create revision is 0).
  static Compare Absent(std::string key);
  // `key` exists and was created at `revision` (still the same incarnation).
  static Compare CreatedAt(std::string key, int64_t revision);
  // `key` was last written at `revision` (nobody wrote it since we read it).
  static Compare ModifiedAt(std::string key, int64_t revision);
  // `key` holds `value` (false when absent).
  static Compare ValueIs(std::string key, std::string value);
  // `key` hangs on `lease` (0: on none).
  static Compare LeaseIs(std::string key, int64_t lease);
};

// One operation of a Txn (etcd's RequestOp).
struct Op {
  enum class Kind { kPut, kDelete, kRange };

  Kind kind = Kind::kRange;
  std::string key;
  std::string range_end;  // kDelete and kRange: [key, range_end).
  std::string value;      // kPut.
  int64_t lease = 0;      // kPut: 0 = none.
  bool prev_kv = false;   // kPut and kDelete: return what was there.

  static Op Put(std::string key, std::string value, int64_t lease = 0);
  static Op Delete(std::string key);
  static Op DeletePrefix(const std::string& prefix);
  static Op Get(std::string key);
  static Op GetPrefix(const std::string& prefix);
};

// What one Op of a Txn answered.
struct OpResult {
  Op::Kind kind = Op::Kind::kRange;
  std::vector<KeyValue> kvs;  // kRange: the keys; kPut/kDelete: prev_kv.
  int64_t deleted = 0;        // kDelete.
};

struct TxnRequest {
  std::vector<Compare> compares;  // All must hold for `success` to run.
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct TxnResult {
  bool succeeded = false;         // Which branch ran.
  int64_t revision = 0;           // The store's revision after the txn.
  std::vector<OpResult> results;  // One per op of the branch that ran.
};

struct LeaseGrant {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // What etcd granted (at least what was asked).
};

struct LeaseStatus {
  int64_t id = 0;
  // Seconds left; -1 when the lease has expired or never existed.
  int64_t ttl_seconds = -1;
  int64_t granted_ttl_seconds = 0;
  std::vector<std::string> keys;  // With `keys` asked: the attached keys.
};

// Maps a gRPC status from etcd (or from the channel to it) to ours, prefixed
// with `what` ("etcd Txn"). Codes:
//   kUnavailable       no member reachable, no leader, etcd's own "request
//                      timed out", or our deadline passed. For a write the
//                      outcome is UNKNOWN: it may have been applied. Callers
//                      retry only writes whose compares make a second
//                      application harmless, or read back first.
//   kResourceExhausted the NOSPACE alarm (backend quota full): writes that
//                      grow the store are refused until an operator compacts,
//                      defragments and disarms; reads, deletes and lease
//                      renewals work. The write that crossed the quota may
//                      have been APPLIED all the same (etcd applies it, then
//                      answers NOSPACE): like kUnavailable, "maybe applied".
//                      Its message says, for whoever reads it at the far
//                      end, that the registry's storage is full and what the
//                      operator does (docs/cluster.md), etcd's text last.
//   kOutOfRange        a revision that was compacted away (see IsCompacted)
//                      or lies in the future.
//   kNotFound          a lease that does not exist (expired or revoked).
//   kInvalidArgument   a request etcd refuses as malformed or too large
//                      (--max-request-bytes, --max-txn-ops, duplicate keys
//                      in one txn).
//   kPermissionDenied, kUnauthenticated  etcd's auth refused us.
//   kFailedPrecondition, kInternal, ...  passed through as etcd sent them.
absl::Status FromEtcdStatus(int grpc_code, const std::string& message,
                            const std::string& what);

// Whether a write that answered `status` may have been applied all the
// same (kUnavailable, kResourceExhausted: see FromEtcdStatus), so that its
// caller must read back, or rely on compares, before trying again.
bool MaybeApplied(const absl::Status& status);

// Whether `status` says a revision was compacted away: a Range at an old
// revision, or a Watch from one (EtcdWatch::Next). The caller must start
// again from a fresh snapshot.
bool IsCompacted(const absl::Status& status);
// The oldest revision still kept, when IsCompacted(status) and etcd said it
// (a watch does); 0 otherwise.
int64_t CompactRevision(const absl::Status& status);
// A kOutOfRange status that IsCompacted() recognises.
absl::Status CompactedError(const std::string& message,
                            int64_t compact_revision);

// EtcdClient: unary calls to a cluster, each within the config's deadline.
//
// Each endpoint has its own channel. Calls go round robin over the endpoints
// that are not failing: a channel in TRANSIENT_FAILURE (a dead member, a
// name that no longer resolves), or an endpoint whose last call went
// unanswered (a member that hangs, or that has no leader) is passed over
// for a while (EndpointPauses: 1 s, doubling per failure in a row, up to
// 30 s; any answer, a call's or a stream's, ends it); when every endpoint is
// failing, all are tried. gRPC's own wait before retrying a channel in
// TRANSIENT_FAILURE (which grows to minutes) is cut short at most once a
// second per endpoint while calls look for a member, so a member that is
// reachable again after a long outage is used within a second or so. One log
// line when a member stops answering, one when it answers again.
//
// A call that fails on one endpoint is tried on the next ones (each once)
// when that cannot apply it twice: reads and lease calls always, writes
// (Put, DeleteRange, Txn, Compact) only when the request surely never
// reached etcd or etcd refused it unapplied (no connection, no address,
// "no leader"); a Txn of reads only is a read. Each attempt has a share of the
// call's deadline (call_timeout over min(endpoints, 3), at least 1 s), so a
// hung member costs one attempt, not the call, and is then passed over, so the
// calls after it (a read-back of a write whose outcome that member left
// unknown) go elsewhere at once. Every call asks etcd to require a leader
// ("hasleader"): a member cut off from the majority then answers "no leader" at
// once instead of hanging. Otherwise the client does not retry: a failed call
// returns its error (FromEtcdStatus), and the caller decides (writes are
// retried only as FromEtcdStatus says).
//
// Thread-safe: every method may be called from many threads at once.
class EtcdClient {
 public:
  // Builds the channels (connecting lazily). kInvalidArgument for an empty
  // endpoint list; TLS file errors of MakeChannelCredentials.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const EtcdConfig& config);

  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  absl::StatusOr<RangeResult> Range(const RangeRequest& request);
  // Writes `key` (attached to `lease` unless 0); returns the revision of
  // the write. kNotFound when the lease does not exist.
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              int64_t lease = 0);
  // Deletes `key` (or [key, range_end)); returns how many keys went.
  absl::StatusOr<int64_t> DeleteRange(const std::string& key,
                                      const std::string& range_end = "");
  // Runs the compares, then `success` or `failure`, atomically. A failed
  // compare is not an error: see TxnResult::succeeded.
  absl::StatusOr<TxnResult> Txn(const TxnRequest& request);
  // Forgets every revision before `revision` (etcd keeps only the newest
  // version of each key below it); `physical` waits until the space is
  // reclaimable. kOutOfRange when already compacted past it.
  absl::Status Compact(int64_t revision, bool physical = false);

  // A lease of at least `ttl_seconds` (etcd's minimum applies); `id` 0 lets
  // etcd pick the id. (Tried on another member after a failure: a lease
  // granted twice costs an unused lease, which ends at its TTL.)
  absl::StatusOr<LeaseGrant> GrantLease(int64_t ttl_seconds, int64_t id = 0);
  // Ends the lease now; its keys are deleted (a DELETE event each).
  // kNotFound when it had already ended.
  absl::Status RevokeLease(int64_t id);
  // How long `id` has left. An ended lease is not an error: ttl_seconds -1.
  absl::StatusOr<LeaseStatus> LeaseTimeToLive(int64_t id, bool keys = false);

  // A channel for a long-lived stream (keep-alive, watch): the next
  // endpoint in the rotation that is not failing. Streams choose again
  // when they reconnect, so they move off a dead member; a stream should
  // carry AddRequireLeader() so a member without a leader ends it.
  std::shared_ptr<grpc::Channel> NextChannel();
  // Tells the client that a stream on `channel` broke or stopped answering:
  // the endpoint is passed over for a while, as after a failed call.
  void ReportStreamFailure(const std::shared_ptr<grpc::Channel>& channel);
  // Tells the client that the member behind `channel` answered on a stream
  // (a watch created, a renewal answered): like a call answered, it ends
  // the endpoint's pause, so the calls after it may go there again.
  void ReportStreamAnswering(const std::shared_ptr<grpc::Channel>& channel);
  // The endpoint ("host:port", as configured) `channel` belongs to, for
  // logs; empty for a channel of no endpoint.
  std::string EndpointName(const std::shared_ptr<grpc::Channel>& channel) const;
  absl::Duration call_timeout() const { return config_.call_timeout; }
  // The deadline of one attempt of a call (its share of call_timeout, see
  // the class comment): how long a member may stay silent before it counts
  // as failing. Streams use it to notice a hung member.
  absl::Duration attempt_timeout() const;

 private:
  struct Endpoint;

  EtcdClient(EtcdConfig config,
             std::vector<std::unique_ptr<Endpoint>> endpoints);

  // The next endpoint in the rotation that is not failing and not
  // `tried` (one flag per endpoint, set for the one picked); any untried
  // one when all are failing.
  Endpoint& Pick(std::vector<bool>& tried);
  // The endpoint whose channel is `channel`; null when none is.
  Endpoint* EndpointOf(const std::shared_ptr<grpc::Channel>& channel) const;
  void MarkFailing(Endpoint& endpoint, const std::string& why);
  void MarkAnswering(Endpoint& endpoint);
  // One unary call with failover (see the class comment): `attempt` makes
  // the call on a channel with a prepared context. `safe_to_repeat`: a
  // read or a lease call, tried again after any unreachable failure.
  template <typename Attempt>
  absl::Status Call(const char* what, bool safe_to_repeat, Attempt attempt);

  const EtcdConfig config_;
  const std::vector<std::unique_ptr<Endpoint>> endpoints_;
  EndpointPauses pauses_;
  std::atomic<uint64_t> next_{0};
};

// Marks a stream's context so etcd ends the stream when the member it
// reaches loses its leader (etcd's "hasleader" metadata).
void AddRequireLeader(grpc::ClientContext& context);

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_CLIENT_H_
