// Our etcd structs <-> the generated etcd messages. Internal to the etcd
// client layer (registry/etcd/*.cc): it is the one header that names the
// generated types, so nothing above this layer depends on them.

#ifndef CHAT_REGISTRY_ETCD_ETCD_CONVERT_H_
#define CHAT_REGISTRY_ETCD_ETCD_CONVERT_H_

#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"
#include "etcd/mvcc/mvccpb/kv.pb.h"
#include "registry/etcd/etcd_client.h"

namespace chat::registry::etcd {

KeyValue FromProto(const mvccpb::KeyValue& kv);
etcdserverpb::RangeRequest ToProto(const RangeRequest& request);
RangeResult FromProto(const etcdserverpb::RangeResponse& response);
etcdserverpb::TxnRequest ToProto(const TxnRequest& request);
TxnResult FromProto(const etcdserverpb::TxnResponse& response);

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_CONVERT_H_
