#include "registry/groups/group_store_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "registry/names.h"

namespace chat::registry {

absl::Status ValidateGroupId(const std::string& group_id) {
  if (group_id.empty() || group_id.size() > kMaxGroupIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("a group id has 1-", kMaxGroupIdLength,
                     " characters; this one has ", group_id.size()));
  }
  for (char c : group_id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(
          "a group id is lowercase hex digits (0-9, a-f)");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateGroupStoreLimits(const GroupStoreLimits& limits) {
  if (limits.max_groups < 1) {
    return absl::InvalidArgumentError("max_groups must be at least 1");
  }
  if (limits.max_versions_per_group < 1) {
    return absl::InvalidArgumentError(
        "max_versions_per_group must be at least 1");
  }
  if (limits.max_state_bytes < 1 ||
      limits.max_state_bytes > kMaxGroupStateBytesCap) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_state_bytes must be 1-", kMaxGroupStateBytesCap));
  }
  if (limits.max_groups_per_owner < 1) {
    return absl::InvalidArgumentError(
        "max_groups_per_owner must be at least 1");
  }
  return absl::OkStatus();
}

absl::Status ValidateGroupPut(const StoredGroupState& next,
                              const GroupStoreLimits& limits) {
  if (absl::Status id = ValidateGroupId(next.group_id); !id.ok()) return id;
  if (next.version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a group's versions start at 1; got ", next.version));
  }
  if (!ValidateName(next.owner_key).ok() ||
      NameKey(next.owner_key) != next.owner_key) {
    return absl::InvalidArgumentError(
        "a group's owner key is the lowercase form of a valid name");
  }
  if (next.state.size() > limits.max_state_bytes) {
    return LimitError(absl::StrCat("a group state of ", next.state.size(),
                                   " bytes is too large"),
                      static_cast<int64_t>(limits.max_state_bytes),
                      "max-group-state-kb");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> GroupPageSize(int max_states,
                                  const GroupStoreLimits& limits) {
  if (max_states < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_states must be at least 1; got ", max_states));
  }
  const size_t fit = std::max<size_t>(
      1, kMaxGroupPageBytes / std::max<size_t>(limits.max_state_bytes, 1));
  return static_cast<int>(
      std::min<size_t>(static_cast<size_t>(max_states), fit));
}

absl::StatusOr<GroupPutPlan> DecideGroupPut(
    const std::optional<GroupHead>& head, const StoredGroupState& next,
    const GroupCounts& counts, const GroupStoreLimits& limits) {
  GroupPutPlan plan;
  if (!head.has_value()) {
    if (next.version != 1) {
      return absl::NotFoundError(
          absl::StrCat("group ", next.group_id, " is not held; version ",
                       next.version, " cannot start it (a group starts at 1)"));
    }
    plan.new_group = true;
  } else {
    // Another change took this version, or it skips one: the caller
    // re-bases on the latest.
    if (next.version != head->version + 1) return plan;
    if (head->ended) {
      return absl::FailedPreconditionError(
          absl::StrCat("group ", next.group_id, " ended at version ",
                       head->version, "; it takes no further version"));
    }
    if (head->version >= limits.max_versions_per_group) {
      return LimitError(
          absl::StrCat("group ", next.group_id, " has ", head->version,
                       " versions and takes no further change"),
          limits.max_versions_per_group, "max-group-versions");
    }
    // The latest is not ended, so it counts against its owner; it stops
    // counting there when another takes over or the group ends.
    if (head->owner_key != next.owner_key || next.ended) {
      plan.owner_released = head->owner_key;
    }
  }
  const bool charged_before =
      head.has_value() && head->owner_key == next.owner_key;
  if (!next.ended && !charged_before) plan.owner_charged = next.owner_key;

  if (plan.new_group && counts.groups >= limits.max_groups) {
    return LimitError(
        absl::StrCat("too many groups (", counts.groups, " in all)"),
        static_cast<int64_t>(limits.max_groups), "max-groups");
  }
  if (plan.owner_charged.has_value() &&
      counts.next_owner_groups >= limits.max_groups_per_owner) {
    return LimitError(absl::StrCat("too many groups owned by ", next.owner_key,
                                   " (", counts.next_owner_groups, ")"),
                      static_cast<int64_t>(limits.max_groups_per_owner),
                      "max-groups-per-owner");
  }
  plan.accept = true;
  return plan;
}

}  // namespace chat::registry
