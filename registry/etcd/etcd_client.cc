#include "registry/etcd/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/status.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "registry/etcd/etcd_convert.h"

namespace chat::registry::etcd {
namespace {

constexpr char kCompactedPayload[] = "chat.etcd/compact_revision";

// etcd's messages for a compacted revision: the Range error
// (ErrCompacted) and the one a cancelled watch gets.
bool MentionsCompaction(absl::string_view message) {
  return absl::StrContains(message, "compacted");
}

// Whether a kResourceExhausted from etcd is its NOSPACE alarm
// (rpctypes.ErrGRPCNoSpace), not its "too many requests" or gRPC's message
// size.
bool MentionsNoSpace(absl::string_view message) {
  return absl::StrContains(message, "database space exceeded");
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEndpoints(
    const std::string& list) {
  std::vector<std::string> endpoints;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    std::string endpoint(absl::StripAsciiWhitespace(part));
    if (endpoint.empty()) continue;
    // etcdctl's form (http://host:port) is accepted; the scheme says nothing
    // to us, TLS comes from the config.
    for (const char* scheme : {"http://", "https://"}) {
      if (absl::StartsWith(endpoint, scheme)) {
        endpoint = endpoint.substr(std::string(scheme).size());
      }
    }
    auto split = SplitHostPort(endpoint);
    int port = 0;
    if (!split.ok() || split->first.empty() ||
        !absl::SimpleAtoi(split->second, &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint \"", endpoint, "\" is not host:port"));
    }
    endpoints.push_back(endpoint);
  }
  if (endpoints.empty()) {
    return absl::InvalidArgumentError("no etcd endpoint given");
  }
  return endpoints;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // etcd: range_end "\0" means "every key from `key` on".
  return std::string(1, '\0');
}

RangeRequest RangeRequest::Key(std::string key) {
  RangeRequest request;
  request.key = std::move(key);
  return request;
}

RangeRequest RangeRequest::Prefix(const std::string& prefix) {
  RangeRequest request;
  request.key = prefix;
  request.range_end = PrefixEnd(prefix);
  return request;
}

Compare Compare::Absent(std::string key) {
  return {Target::kCreateRevision, Result::kEqual, std::move(key), 0, ""};
}
Compare Compare::CreatedAt(std::string key, int64_t revision) {
  return {Target::kCreateRevision, Result::kEqual, std::move(key), revision,
          ""};
}
Compare Compare::ModifiedAt(std::string key, int64_t revision) {
  return {Target::kModRevision, Result::kEqual, std::move(key), revision, ""};
}
Compare Compare::ValueIs(std::string key, std::string value) {
  return {Target::kValue, Result::kEqual, std::move(key), 0, std::move(value)};
}
Compare Compare::LeaseIs(std::string key, int64_t lease) {
  return {Target::kLease, Result::kEqual, std::move(key), lease, ""};
}

Op Op::Put(std::string key, std::string value, int64_t lease) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}
Op Op::Delete(std::string key) {
  Op op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  return op;
}
Op Op::DeletePrefix(const std::string& prefix) {
  Op op = Delete(prefix);
  op.range_end = PrefixEnd(prefix);
  return op;
}
Op Op::Get(std::string key) {
  Op op;
  op.kind = Kind::kRange;
  op.key = std::move(key);
  return op;
}
Op Op::GetPrefix(const std::string& prefix) {
  Op op = Get(prefix);
  op.range_end = PrefixEnd(prefix);
  return op;
}

absl::Status FromEtcdStatus(int grpc_code, const std::string& message,
                            const std::string& what) {
  std::string text = absl::StrCat(what, ": ", message);
  switch (static_cast<grpc::StatusCode>(grpc_code)) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    // Our deadline, a member without a leader, etcd's "request timed out":
    // all "try again, maybe elsewhere", and for a write "maybe applied".
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::UnavailableError(text);
    case grpc::StatusCode::OUT_OF_RANGE:
      if (MentionsCompaction(message)) return CompactedError(text, 0);
      return absl::OutOfRangeError(text);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      if (MentionsNoSpace(message)) {
        // etcd's words tell whoever reads them at the far end (chatctl, a
        // peer) neither what is full nor who can mend it; they go last, for
        // whoever searches logs for them.
        return absl::ResourceExhaustedError(absl::StrCat(
            "the registry's storage is full (etcd's NOSPACE alarm), so it "
            "refuses changes until an operator frees space in etcd "
            "(etcdctl compaction, then defrag) and clears the alarm "
            "(etcdctl alarm disarm), as docs/cluster.md says under \"A full "
            "etcd\"; lookups and renewals go on (",
            text, ")"));
      }
      return absl::ResourceExhaustedError(text);
    default:
      // etcd's own codes already say what we mean (NotFound for a lease,
      // InvalidArgument for a request too large, ...): the canonical codes
      // are the same numbers.
      return absl::Status(static_cast<absl::StatusCode>(grpc_code), text);
  }
}

absl::Status CompactedError(const std::string& message,
                            int64_t compact_revision) {
  absl::Status status = absl::OutOfRangeError(message);
  status.SetPayload(kCompactedPayload,
                    absl::Cord(absl::StrCat(compact_revision)));
  return status;
}

bool MaybeApplied(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

bool IsCompacted(const absl::Status& status) {
  return status.GetPayload(kCompactedPayload).has_value();
}

int64_t CompactRevision(const absl::Status& status) {
  auto payload = status.GetPayload(kCompactedPayload);
  int64_t revision = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &revision)) {
    return 0;
  }
  return revision;
}

struct EtcdClient::Endpoint {
  size_t index = 0;     // In endpoints_ and pauses_.
  std::string address;  // As configured: "host:port".
  std::shared_ptr<grpc::Channel> channel;
};

namespace {

// The member did not answer (dead, hung, unreachable, no leader, our share
// of the deadline passed): another one may.
bool Unreachable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// A failure that surely applied nothing: gRPC had no connection or no
// address to send it on (its messages in 1.51), or etcd refused it before
// proposing it ("no leader", with "hasleader" asked).
bool NeverApplied(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& message = status.error_message();
  for (const char* sign :
       {"failed to connect to all addresses", "connections to all backends",
        "DNS resolution failed", "empty address list", "no children",
        "etcdserver: no leader"}) {
    if (absl::StrContains(message, sign)) return true;
  }
  return false;
}

absl::Status Check(const grpc::Status& status, const std::string& what) {
  return FromEtcdStatus(status.error_code(), status.error_message(), what);
}

}  // namespace

void AddRequireLeader(grpc::ClientContext& context) {
  context.AddMetadata("hasleader", "true");
}

EtcdClient::EtcdClient(EtcdConfig config,
                       std::vector<std::unique_ptr<Endpoint>> endpoints)
    : config_(std::move(config)),
      endpoints_(std::move(endpoints)),
      // The pauses run on the real clock: they route calls and never decide
      // an outcome a test would pin down (EndpointPauses has its own tests).
      pauses_(RealClock(), endpoints_.size()) {}

EtcdClient::~EtcdClient() = default;

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const EtcdConfig& config) {
  if (config.endpoints.empty()) {
    return absl::InvalidArgumentError("no etcd endpoint given");
  }
  auto credentials = MakeChannelCredentials(config.tls);
  if (!credentials.ok()) return credentials.status();
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  for (const std::string& address : config.endpoints) {
    grpc::ChannelArguments args;
    // A host name with several addresses: spread over all of them.
    args.SetServiceConfigJSON(
        R"({"loadBalancingConfig":[{"round_robin":{}}]})");
    // Notice a member that died without closing its connections (a cut
    // cable, a frozen VM) within seconds, not at the TCP timeout.
    // Not below etcd's --grpc-keepalive-min-time (5 s by default), which
    // closes connections that ping more often.
    args.SetInt(
        GRPC_ARG_KEEPALIVE_TIME_MS,
        static_cast<int>(absl::ToInt64Milliseconds(std::clamp(
            config.keepalive_time, absl::Seconds(5), absl::Hours(24)))));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // etcd's default --max-request-bytes is 1.5 MiB; a Range answer may be
    // larger than gRPC's default 4 MiB when a prefix holds many keys.
    args.SetMaxReceiveMessageSize(64 << 20);
    auto endpoint = std::make_unique<Endpoint>();
    endpoint->index = endpoints.size();
    endpoint->address = address;
    endpoint->channel =
        grpc::CreateCustomChannel("dns:///" + address, *credentials, args);
    endpoints.push_back(std::move(endpoint));
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(config, std::move(endpoints)));
}

EtcdClient::Endpoint& EtcdClient::Pick(std::vector<bool>& tried) {
  const size_t n = endpoints_.size();
  const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
  // Connected first: a call on a channel still connecting (or resolving a
  // name that may never resolve) waits for it, and a write that then times
  // out cannot be told apart from one that was applied.
  size_t connecting = n;
  size_t failing = n;
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (start + i) % n;
    if (tried[index]) continue;
    Endpoint& endpoint = *endpoints_[index];
    // Asking with try_to_connect also starts idle channels connecting, so
    // they are ready for the calls after this one.
    const grpc_connectivity_state state =
        endpoint.channel->GetState(/*try_to_connect=*/true);
    const bool avoided = pauses_.Paused(index);
    // gRPC's own wait before its next try on this channel (a reconnection,
    // or a DNS lookup of a name it could not resolve) grows to minutes
    // after a long outage; a member back after a partition healed would
    // wait that long unused. The client asks gRPC to try now instead, at
    // most once a second per member (EndpointPauses::TakeRetry).
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && pauses_.TakeRetry(index)) {
      grpc::experimental::ChannelResetConnectionBackoff(endpoint.channel.get());
    }
    if (avoided || state == GRPC_CHANNEL_TRANSIENT_FAILURE ||
        state == GRPC_CHANNEL_SHUTDOWN) {
      if (failing == n) failing = index;
    } else if (state == GRPC_CHANNEL_READY) {
      tried[index] = true;
      return endpoint;
    } else if (connecting == n) {
      connecting = index;
    }
  }
  size_t chosen = connecting != n ? connecting : failing;
  if (chosen == n) chosen = start % n;  // Every one tried already: any.
  tried[chosen] = true;
  return *endpoints_[chosen];
}

void EtcdClient::MarkFailing(Endpoint& endpoint, const std::string& why) {
  // One line when a member stops answering and one when it answers again
  // (below), not one per failed call: what an operator needs to see when
  // a member went away, and when the registry noticed it was back.
  if (pauses_.Failed(endpoint.index)) {
    LogLine("etcd-client", absl::StrCat("etcd member ", endpoint.address,
                                        " stopped answering (", why,
                                        "); passing it over while it fails"));
  }
}

void EtcdClient::MarkAnswering(Endpoint& endpoint) {
  const int failures = pauses_.Answered(endpoint.index);
  if (failures > 0) {
    LogLine("etcd-client",
            absl::StrCat("etcd member ", endpoint.address,
                         " answers again, after ", failures,
                         failures == 1 ? " failure" : " failures in a row"));
  }
}

absl::Duration EtcdClient::attempt_timeout() const {
  return std::max(config_.call_timeout / static_cast<int64_t>(std::min<size_t>(
                                             endpoints_.size(), 3)),
                  absl::Seconds(1));
}

std::shared_ptr<grpc::Channel> EtcdClient::NextChannel() {
  std::vector<bool> tried(endpoints_.size());
  return Pick(tried).channel;
}

EtcdClient::Endpoint* EtcdClient::EndpointOf(
    const std::shared_ptr<grpc::Channel>& channel) const {
  for (const auto& endpoint : endpoints_) {
    if (endpoint->channel == channel) return endpoint.get();
  }
  return nullptr;
}

void EtcdClient::ReportStreamFailure(
    const std::shared_ptr<grpc::Channel>& channel) {
  if (Endpoint* endpoint = EndpointOf(channel)) {
    MarkFailing(*endpoint, "a stream to it broke, went silent or was refused");
  }
}

void EtcdClient::ReportStreamAnswering(
    const std::shared_ptr<grpc::Channel>& channel) {
  if (Endpoint* endpoint = EndpointOf(channel)) MarkAnswering(*endpoint);
}

std::string EtcdClient::EndpointName(
    const std::shared_ptr<grpc::Channel>& channel) const {
  const Endpoint* endpoint = EndpointOf(channel);
  return endpoint != nullptr ? endpoint->address : "";
}

template <typename Attempt>
absl::Status EtcdClient::Call(const char* what, bool safe_to_repeat,
                              Attempt attempt) {
  const size_t n = endpoints_.size();
  const auto call_deadline = std::chrono::system_clock::now() +
                             absl::ToChronoMilliseconds(config_.call_timeout);
  const auto share = absl::ToChronoMilliseconds(attempt_timeout());
  std::vector<bool> tried(n);
  absl::Status last;
  for (size_t i = 0; i < n; ++i) {
    const auto now = std::chrono::system_clock::now();
    if (i > 0 && now >= call_deadline) break;
    Endpoint& endpoint = Pick(tried);
    grpc::ClientContext context;
    context.set_deadline(std::min(call_deadline, now + share));
    AddRequireLeader(context);
    const grpc::Status status = attempt(endpoint.channel, context);
    if (!Unreachable(status)) {
      MarkAnswering(endpoint);
      return Check(status, what);
    }
    last = Check(status, what);
    MarkFailing(endpoint, last.ToString());
    if (!safe_to_repeat && !NeverApplied(status)) break;
  }
  return last;
}

absl::StatusOr<RangeResult> EtcdClient::Range(const RangeRequest& request) {
  const etcdserverpb::RangeRequest proto = ToProto(request);
  etcdserverpb::RangeResponse response;
  CHAT_RETURN_IF_ERROR(Call("etcd Range", /*safe_to_repeat=*/true,
                            [&](const std::shared_ptr<grpc::Channel>& channel,
                                grpc::ClientContext& context) {
                              return etcdserverpb::KV::NewStub(channel)->Range(
                                  &context, proto, &response);
                            }));
  return FromProto(response);
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key,
                                        const std::string& value,
                                        int64_t lease) {
  etcdserverpb::PutRequest proto;
  proto.set_key(key);
  proto.set_value(value);
  proto.set_lease(lease);
  etcdserverpb::PutResponse response;
  CHAT_RETURN_IF_ERROR(Call("etcd Put", /*safe_to_repeat=*/false,
                            [&](const std::shared_ptr<grpc::Channel>& channel,
                                grpc::ClientContext& context) {
                              return etcdserverpb::KV::NewStub(channel)->Put(
                                  &context, proto, &response);
                            }));
  return response.header().revision();
}

absl::StatusOr<int64_t> EtcdClient::DeleteRange(const std::string& key,
                                                const std::string& range_end) {
  etcdserverpb::DeleteRangeRequest proto;
  proto.set_key(key);
  proto.set_range_end(range_end);
  etcdserverpb::DeleteRangeResponse response;
  CHAT_RETURN_IF_ERROR(
      Call("etcd DeleteRange", /*safe_to_repeat=*/false,
           [&](const std::shared_ptr<grpc::Channel>& channel,
               grpc::ClientContext& context) {
             return etcdserverpb::KV::NewStub(channel)->DeleteRange(
                 &context, proto, &response);
           }));
  return response.deleted();
}

absl::StatusOr<TxnResult> EtcdClient::Txn(const TxnRequest& request) {
  const etcdserverpb::TxnRequest proto = ToProto(request);
  etcdserverpb::TxnResponse response;
  // A transaction of reads only (a consistent read of several keys) is a
  // read: tried elsewhere after any failure.
  auto reads_only = [](const std::vector<Op>& ops) {
    return std::all_of(ops.begin(), ops.end(), [](const Op& op) {
      return op.kind == Op::Kind::kRange;
    });
  };
  const bool read_only =
      reads_only(request.success) && reads_only(request.failure);
  CHAT_RETURN_IF_ERROR(Call("etcd Txn", /*safe_to_repeat=*/read_only,
                            [&](const std::shared_ptr<grpc::Channel>& channel,
                                grpc::ClientContext& context) {
                              return etcdserverpb::KV::NewStub(channel)->Txn(
                                  &context, proto, &response);
                            }));
  return FromProto(response);
}

absl::Status EtcdClient::Compact(int64_t revision, bool physical) {
  etcdserverpb::CompactionRequest proto;
  proto.set_revision(revision);
  proto.set_physical(physical);
  etcdserverpb::CompactionResponse response;
  return Call("etcd Compact", /*safe_to_repeat=*/false,
              [&](const std::shared_ptr<grpc::Channel>& channel,
                  grpc::ClientContext& context) {
                return etcdserverpb::KV::NewStub(channel)->Compact(
                    &context, proto, &response);
              });
}

absl::StatusOr<LeaseGrant> EtcdClient::GrantLease(int64_t ttl_seconds,
                                                  int64_t id) {
  etcdserverpb::LeaseGrantRequest proto;
  proto.set_ttl(ttl_seconds);
  proto.set_id(id);
  etcdserverpb::LeaseGrantResponse response;
  // Repeated after any failure only when etcd picks the id: a second grant
  // then costs an unused lease; with our own id it could collide.
  CHAT_RETURN_IF_ERROR(
      Call("etcd LeaseGrant", /*safe_to_repeat=*/id == 0,
           [&](const std::shared_ptr<grpc::Channel>& channel,
               grpc::ClientContext& context) {
             return etcdserverpb::Lease::NewStub(channel)->LeaseGrant(
                 &context, proto, &response);
           }));
  // etcd reports some refusals in the body rather than the status.
  if (!response.error().empty()) {
    return absl::UnavailableError("etcd LeaseGrant: " + response.error());
  }
  return LeaseGrant{response.id(), response.ttl()};
}

absl::Status EtcdClient::RevokeLease(int64_t id) {
  etcdserverpb::LeaseRevokeRequest proto;
  proto.set_id(id);
  etcdserverpb::LeaseRevokeResponse response;
  // A second revocation is harmless (kNotFound).
  return Call("etcd LeaseRevoke", /*safe_to_repeat=*/true,
              [&](const std::shared_ptr<grpc::Channel>& channel,
                  grpc::ClientContext& context) {
                return etcdserverpb::Lease::NewStub(channel)->LeaseRevoke(
                    &context, proto, &response);
              });
}

absl::StatusOr<LeaseStatus> EtcdClient::LeaseTimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest proto;
  proto.set_id(id);
  proto.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse response;
  absl::Status status =
      Call("etcd LeaseTimeToLive", /*safe_to_repeat=*/true,
           [&](const std::shared_ptr<grpc::Channel>& channel,
               grpc::ClientContext& context) {
             return etcdserverpb::Lease::NewStub(channel)->LeaseTimeToLive(
                 &context, proto, &response);
           });
  LeaseStatus result;
  result.id = id;
  // An ended lease: etcd 3.4 answers TTL -1, some versions NotFound.
  if (status.code() == absl::StatusCode::kNotFound) return result;
  CHAT_RETURN_IF_ERROR(status);
  result.ttl_seconds = response.ttl();
  result.granted_ttl_seconds = response.grantedttl();
  for (const std::string& key : response.keys()) result.keys.push_back(key);
  return result;
}

}  // namespace chat::registry::etcd
