// The Groups gRPC service: the registry as the compare-and-swap sequencer of
// each group's signed membership (proto/registry.proto, service Groups), a
// thin adapter over a GroupStore. It checks each state's chain only so that
// nobody but a group's owner can take its next version; members check every
// state themselves (registry/groups/group_state.h, docs/security.md).

#ifndef CHAT_REGISTRY_SERVER_GROUPS_SERVICE_H_
#define CHAT_REGISTRY_SERVER_GROUPS_SERVICE_H_

#include "common/overload.h"
#include "proto/registry.grpc.pb.h"
#include "registry/groups/group_state.h"
#include "registry/groups/group_store.h"
#include "registry/store/store.h"

namespace chat::registry {

inline constexpr char kGroupsServiceName[] = "chat.registry.v1.Groups";

// The most states one GetGroupStates answers.
inline constexpr int kMaxGroupStatesPerPage = 64;

// PutGroupState, beyond the checks of the chain (CheckGenesis,
// CheckSuccessor): a group is created (version 1) only by the holder of the
// key its owner's name is bound to in this registry, so the owner quota of a
// name is spent by its key alone (PERMISSION_DENIED otherwise). A state whose
// version does not follow the group's latest is answered with that latest,
// `accepted` false, without checking its signature.
// Thread-safe.
class GroupsService final : public v1::Groups::CallbackService {
 public:
  // None is owned; all must outlive the service and its server. Every call
  // passes `gate` first (common/overload.h).
  GroupsService(Store* store, GroupStore* groups, GroupLimits limits,
                CallGate* gate = &DefaultCallGate());

  grpc::ServerUnaryReactor* PutGroupState(
      grpc::CallbackServerContext* context,
      const v1::PutGroupStateRequest* request,
      v1::PutGroupStateResponse* response) override;
  grpc::ServerUnaryReactor* GetGroupStates(
      grpc::CallbackServerContext* context,
      const v1::GetGroupStatesRequest* request,
      v1::GetGroupStatesResponse* response) override;

 private:
  // The checks of PutGroupState up to the store's decision; `latest` is the
  // group's latest version (nullopt: none held).
  absl::Status CheckChange(const GroupState& next,
                           const std::optional<GroupState>& latest);

  Store* const store_;        // Not owned.
  GroupStore* const groups_;  // Not owned.
  const GroupLimits limits_;
  CallGate* const gate_;  // Not owned.
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_GROUPS_SERVICE_H_
