#include "registry/etcd/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
    default:
      // etcd's own codes already say what we mean (ResourceExhausted for
      // NOSPACE, NotFound for a lease, InvalidArgument for a request too
      // large, ...): the canonical codes are the same numbers.
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

EtcdClient::EtcdClient(EtcdConfig config,
                       std::vector<std::shared_ptr<grpc::Channel>> channels)
    : config_(std::move(config)), channels_(std::move(channels)) {}

EtcdClient::~EtcdClient() = default;

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const EtcdConfig& config) {
  if (config.endpoints.empty()) {
    return absl::InvalidArgumentError("no etcd endpoint given");
  }
  auto credentials = MakeChannelCredentials(config.tls);
  if (!credentials.ok()) return credentials.status();
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const std::string& endpoint : config.endpoints) {
    grpc::ChannelArguments args;
    // A host name with several addresses: spread over all of them.
    args.SetServiceConfigJSON(
        R"({"loadBalancingConfig":[{"round_robin":{}}]})");
    // Notice a member that died without closing its connections (a cut
    // cable, a frozen VM) within seconds, not at the TCP timeout.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // etcd's default --max-request-bytes is 1.5 MiB; a Range answer may be
    // larger than gRPC's default 4 MiB when a prefix holds many keys.
    args.SetMaxReceiveMessageSize(64 << 20);
    channels.push_back(
        grpc::CreateCustomChannel("dns:///" + endpoint, *credentials, args));
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(config, std::move(channels)));
}

std::shared_ptr<grpc::Channel> EtcdClient::NextChannel() {
  const size_t n = channels_.size();
  const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    const auto& channel = channels_[(start + i) % n];
    if (channel->GetState(/*try_to_connect=*/true) !=
        GRPC_CHANNEL_TRANSIENT_FAILURE) {
      return channel;
    }
  }
  return channels_[start % n];
}

namespace {

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(timeout));
}

absl::Status Check(const grpc::Status& status, const std::string& what) {
  return FromEtcdStatus(status.error_code(), status.error_message(), what);
}

}  // namespace

absl::StatusOr<RangeResult> EtcdClient::Range(const RangeRequest& request) {
  etcdserverpb::RangeRequest proto = ToProto(request);
  etcdserverpb::RangeResponse response;
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  CHAT_RETURN_IF_ERROR(Check(etcdserverpb::KV::NewStub(NextChannel())
                                 ->Range(&context, proto, &response),
                             "etcd Range"));
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
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  CHAT_RETURN_IF_ERROR(Check(
      etcdserverpb::KV::NewStub(NextChannel())->Put(&context, proto, &response),
      "etcd Put"));
  return response.header().revision();
}

absl::StatusOr<int64_t> EtcdClient::DeleteRange(const std::string& key,
                                                const std::string& range_end) {
  etcdserverpb::DeleteRangeRequest proto;
  proto.set_key(key);
  proto.set_range_end(range_end);
  etcdserverpb::DeleteRangeResponse response;
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  CHAT_RETURN_IF_ERROR(Check(etcdserverpb::KV::NewStub(NextChannel())
                                 ->DeleteRange(&context, proto, &response),
                             "etcd DeleteRange"));
  return response.deleted();
}

absl::StatusOr<TxnResult> EtcdClient::Txn(const TxnRequest& request) {
  etcdserverpb::TxnRequest proto = ToProto(request);
  etcdserverpb::TxnResponse response;
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  CHAT_RETURN_IF_ERROR(Check(
      etcdserverpb::KV::NewStub(NextChannel())->Txn(&context, proto, &response),
      "etcd Txn"));
  return FromProto(response);
}

absl::Status EtcdClient::Compact(int64_t revision, bool physical) {
  etcdserverpb::CompactionRequest proto;
  proto.set_revision(revision);
  proto.set_physical(physical);
  etcdserverpb::CompactionResponse response;
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  return Check(etcdserverpb::KV::NewStub(NextChannel())
                   ->Compact(&context, proto, &response),
               "etcd Compact");
}

absl::StatusOr<LeaseGrant> EtcdClient::GrantLease(int64_t ttl_seconds,
                                                  int64_t id) {
  etcdserverpb::LeaseGrantRequest proto;
  proto.set_ttl(ttl_seconds);
  proto.set_id(id);
  etcdserverpb::LeaseGrantResponse response;
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  CHAT_RETURN_IF_ERROR(Check(etcdserverpb::Lease::NewStub(NextChannel())
                                 ->LeaseGrant(&context, proto, &response),
                             "etcd LeaseGrant"));
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
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  return Check(etcdserverpb::Lease::NewStub(NextChannel())
                   ->LeaseRevoke(&context, proto, &response),
               "etcd LeaseRevoke");
}

absl::StatusOr<LeaseStatus> EtcdClient::LeaseTimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest proto;
  proto.set_id(id);
  proto.set_keys(keys);
  etcdserverpb::LeaseTimeToLiveResponse response;
  grpc::ClientContext context;
  SetDeadline(context, config_.call_timeout);
  grpc::Status status = etcdserverpb::Lease::NewStub(NextChannel())
                            ->LeaseTimeToLive(&context, proto, &response);
  LeaseStatus result;
  result.id = id;
  // An ended lease: etcd 3.4 answers TTL -1, some versions NotFound.
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return result;
  CHAT_RETURN_IF_ERROR(Check(status, "etcd LeaseTimeToLive"));
  result.ttl_seconds = response.ttl();
  result.granted_ttl_seconds = response.grantedttl();
  for (const std::string& key : response.keys()) result.keys.push_back(key);
  return result;
}

}  // namespace chat::registry::etcd
