#include "registry/server/groups_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/status.h"
#include "registry/names.h"

namespace chat::registry {
namespace {

// `stored` as it was put, byte for byte. It was checked before it was
// stored, so a failure here is a damaged store, not the caller's fault.
absl::Status CopyStored(const StoredGroupState& stored, v1::GroupState* out) {
  if (!out->ParseFromString(stored.state)) {
    return absl::InternalError(
        absl::StrCat("the stored version ", stored.version, " of group ",
                     stored.group_id, " does not parse"));
  }
  return absl::OkStatus();
}

// A stored state read back, as ours.
absl::StatusOr<GroupState> ParseStored(const StoredGroupState& stored) {
  v1::GroupState proto;
  CHAT_RETURN_IF_ERROR(CopyStored(stored, &proto));
  return GroupStateFromProto(proto);
}

StoredGroupState ToStored(const GroupState& state,
                          const v1::GroupState& proto) {
  StoredGroupState stored;
  stored.group_id = state.group_id;
  stored.version = state.version;
  stored.owner_key = NameKey(state.owner);
  stored.ended = state.ended;
  stored.state = proto.SerializeAsString();
  return stored;
}

}  // namespace

GroupsService::GroupsService(Store* store, GroupStore* groups,
                             GroupLimits limits, CallGate* gate)
    : store_(store), groups_(groups), limits_(limits), gate_(gate) {}

absl::Status GroupsService::CheckChange(
    const GroupState& next, const std::optional<GroupState>& latest) {
  if (latest.has_value()) return CheckSuccessor(*latest, next, limits_);
  if (next.version != 1) {
    return absl::NotFoundError(absl::StrCat(
        "no group ", next.group_id, " is held here, so version ", next.version,
        " follows nothing; a group starts at version 1"));
  }
  CHAT_RETURN_IF_ERROR(CheckGenesis(next, limits_));
  // The chain proves the owner's key signed; the binding proves the key
  // is the owner's, so nobody spends a name's groups but its holder.
  absl::StatusOr<Binding> binding = store_->GetBinding(next.owner);
  const std::optional<PublicKey> signer = GroupMemberKey(next, next.owner);
  if (!binding.ok() || !signer.has_value() || !(binding->key == *signer)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "a group is created by its owner: \"", next.owner,
        "\" must be bound to the key that signed it (register with a key "
        "first)"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* GroupsService::PutGroupState(
    grpc::CallbackServerContext* context,
    const v1::PutGroupStateRequest* request,
    v1::PutGroupStateResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  absl::StatusOr<GroupState> next = GroupStateFromProto(request->state());
  if (!next.ok()) return Respond(context, next.status());
  // The latest version, as the change's base; none for a new group.
  std::optional<GroupState> latest;
  std::optional<StoredGroupState> latest_stored;
  absl::StatusOr<StoredGroupState> held = groups_->Latest(next->group_id);
  if (held.ok()) {
    absl::StatusOr<GroupState> parsed = ParseStored(*held);
    if (!parsed.ok()) return Respond(context, parsed.status());
    latest = *std::move(parsed);
    latest_stored = *std::move(held);
  } else if (held.status().code() != absl::StatusCode::kNotFound) {
    return Respond(context, held.status());
  }
  // Another change took that version first (or it is a repeat): the
  // caller re-bases on the latest. Its signature is not worth checking.
  if (latest.has_value() && !latest->ended &&
      next->version != latest->version + 1) {
    response->set_accepted(false);
    return Respond(context,
                   CopyStored(*latest_stored, response->mutable_current()));
  }
  if (absl::Status checked = CheckChange(*next, latest); !checked.ok()) {
    if (checked.code() == absl::StatusCode::kResourceExhausted) {
      // The rules know the limit, not what sets it here.
      checked = absl::ResourceExhaustedError(
          absl::StrCat(checked.message(), " (--max-group-members)"));
    }
    return Respond(context, checked);
  }
  absl::StatusOr<GroupPutOutcome> outcome =
      groups_->Put(ToStored(*next, request->state()));
  if (!outcome.ok()) return Respond(context, outcome.status());
  response->set_accepted(outcome->accepted);
  if (outcome->accepted) {
    *response->mutable_current() = request->state();
  } else {
    // Taken between our read and the store's decision.
    return Respond(context,
                   CopyStored(outcome->current, response->mutable_current()));
  }
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* GroupsService::GetGroupStates(
    grpc::CallbackServerContext* context,
    const v1::GetGroupStatesRequest* request,
    v1::GetGroupStatesResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = gate_->Admit(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (request->max_states() < 0) {
    return Respond(
        context, absl::InvalidArgumentError("max_states must not be negative"));
  }
  const int max_states =
      request->max_states() == 0
          ? kMaxGroupStatesPerPage
          : std::min(request->max_states(), kMaxGroupStatesPerPage);
  absl::StatusOr<GroupStatesPage> page =
      groups_->Get(request->group_id(),
                   std::max<int64_t>(0, request->after_version()), max_states);
  if (!page.ok()) return Respond(context, page.status());
  for (const StoredGroupState& stored : page->states) {
    absl::Status copied = CopyStored(stored, response->add_states());
    if (!copied.ok()) return Respond(context, copied);
  }
  response->set_latest_version(page->latest_version);
  return Respond(context, absl::OkStatus());
}

}  // namespace chat::registry
