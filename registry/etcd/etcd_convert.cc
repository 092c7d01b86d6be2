#include "registry/etcd/etcd_convert.h"

namespace chat::registry::etcd {
namespace {

etcdserverpb::Compare CompareToProto(const Compare& compare) {
  etcdserverpb::Compare proto;
  proto.set_key(compare.key);
  switch (compare.result) {
    case Compare::Result::kEqual:
      proto.set_result(etcdserverpb::Compare::EQUAL);
      break;
    case Compare::Result::kGreater:
      proto.set_result(etcdserverpb::Compare::GREATER);
      break;
    case Compare::Result::kLess:
      proto.set_result(etcdserverpb::Compare::LESS);
      break;
    case Compare::Result::kNotEqual:
      proto.set_result(etcdserverpb::Compare::NOT_EQUAL);
      break;
  }
  switch (compare.target) {
    case Compare::Target::kVersion:
      proto.set_target(etcdserverpb::Compare::VERSION);
      proto.set_version(compare.number);
      break;
    case Compare::Target::kCreateRevision:
      proto.set_target(etcdserverpb::Compare::CREATE);
      proto.set_create_revision(compare.number);
      break;
    case Compare::Target::kModRevision:
      proto.set_target(etcdserverpb::Compare::MOD);
      proto.set_mod_revision(compare.number);
      break;
    case Compare::Target::kValue:
      proto.set_target(etcdserverpb::Compare::VALUE);
      proto.set_value(compare.value);
      break;
    case Compare::Target::kLease:
      proto.set_target(etcdserverpb::Compare::LEASE);
      proto.set_lease(compare.number);
      break;
  }
  return proto;
}

etcdserverpb::RequestOp OpToProto(const Op& op) {
  etcdserverpb::RequestOp proto;
  switch (op.kind) {
    case Op::Kind::kPut: {
      auto* put = proto.mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      put->set_prev_kv(op.prev_kv);
      break;
    }
    case Op::Kind::kDelete: {
      auto* del = proto.mutable_request_delete_range();
      del->set_key(op.key);
      del->set_range_end(op.range_end);
      del->set_prev_kv(op.prev_kv);
      break;
    }
    case Op::Kind::kRange: {
      auto* range = proto.mutable_request_range();
      range->set_key(op.key);
      range->set_range_end(op.range_end);
      break;
    }
  }
  return proto;
}

OpResult OpResultFromProto(const etcdserverpb::ResponseOp& proto) {
  OpResult result;
  switch (proto.response_case()) {
    case etcdserverpb::ResponseOp::kResponsePut:
      result.kind = Op::Kind::kPut;
      if (proto.response_put().has_prev_kv()) {
        result.kvs.push_back(FromProto(proto.response_put().prev_kv()));
      }
      break;
    case etcdserverpb::ResponseOp::kResponseDeleteRange:
      result.kind = Op::Kind::kDelete;
      result.deleted = proto.response_delete_range().deleted();
      for (const auto& kv : proto.response_delete_range().prev_kvs()) {
        result.kvs.push_back(FromProto(kv));
      }
      break;
    case etcdserverpb::ResponseOp::kResponseRange:
      result.kind = Op::Kind::kRange;
      for (const auto& kv : proto.response_range().kvs()) {
        result.kvs.push_back(FromProto(kv));
      }
      break;
    default:
      // Nested txns: we never send them, so etcd never answers one.
      break;
  }
  return result;
}

}  // namespace

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  KeyValue result;
  result.key = kv.key();
  result.value = kv.value();
  result.create_revision = kv.create_revision();
  result.mod_revision = kv.mod_revision();
  result.version = kv.version();
  result.lease = kv.lease();
  return result;
}

etcdserverpb::RangeRequest ToProto(const RangeRequest& request) {
  etcdserverpb::RangeRequest proto;
  proto.set_key(request.key);
  proto.set_range_end(request.range_end);
  proto.set_limit(request.limit);
  proto.set_revision(request.revision);
  proto.set_serializable(request.serializable);
  proto.set_keys_only(request.keys_only);
  proto.set_count_only(request.count_only);
  return proto;
}

RangeResult FromProto(const etcdserverpb::RangeResponse& response) {
  RangeResult result;
  for (const auto& kv : response.kvs()) result.kvs.push_back(FromProto(kv));
  result.more = response.more();
  result.count = response.count();
  result.revision = response.header().revision();
  return result;
}

etcdserverpb::TxnRequest ToProto(const TxnRequest& request) {
  etcdserverpb::TxnRequest proto;
  for (const Compare& compare : request.compares) {
    *proto.add_compare() = CompareToProto(compare);
  }
  for (const Op& op : request.success) *proto.add_success() = OpToProto(op);
  for (const Op& op : request.failure) *proto.add_failure() = OpToProto(op);
  return proto;
}

TxnResult FromProto(const etcdserverpb::TxnResponse& response) {
  TxnResult result;
  result.succeeded = response.succeeded();
  result.revision = response.header().revision();
  for (const auto& op : response.responses()) {
    result.results.push_back(OpResultFromProto(op));
  }
  return result;
}

}  // namespace chat::registry::etcd
