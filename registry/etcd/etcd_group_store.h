// The GroupStore kept in etcd, shared by every registry of a deployment: any
// registry takes a group's next version, and two registries can never both
// accept the same one, nor pass a limit between them (docs/cluster.md,
// "Groups").

#ifndef CHAT_REGISTRY_ETCD_ETCD_GROUP_STORE_H_
#define CHAT_REGISTRY_ETCD_ETCD_GROUP_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "registry/etcd/etcd_client.h"
#include "registry/groups/group_store.h"

namespace chat::registry::etcd {

// Opens the group store kept under `root` (GroupsRoot() of the deployment's
// prefix, etcd_layout.h: "/chat/v1/groups/", never a root the store's or the
// mailbox's keys are under; a trailing '/' is added when missing) in the
// etcd cluster `client` talks to. Nothing is created until the first Put;
// several registries may open the same root at once.
//
// The GroupStore contract holds across registries: each Put is one etcd
// transaction that compares the group's latest version (its head key) and
// every counter the limits read, as they were read, so of two registries
// putting the same version exactly one is accepted, and racing registries
// never pass a limit. An accepted Put is in etcd (a raft commit, fsynced on
// a quorum) before it returns.
//
// Errors beyond the contract's: kResourceExhausted also when etcd itself is
// full (the NOSPACE alarm); kUnavailable when etcd cannot be reached, or a
// Put lost its race to other registries too many times in a row. For a Put,
// both mean "maybe applied" (see GroupStore).
//
// `client` is not owned and must outlive the store. kInvalidArgument for an
// empty root or limits ValidateGroupStoreLimits refuses.
absl::StatusOr<std::unique_ptr<GroupStore>> OpenEtcdGroupStore(
    EtcdClient* client, const std::string& root,
    const GroupStoreLimits& limits = {});

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_GROUP_STORE_H_
