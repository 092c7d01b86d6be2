// The rules of the GroupStore contract that do not depend on how states are
// stored: which states may be handed to Put, which Put is accepted, which
// limit a refusal names, what each accepted Put does to the counts, and how
// long a page of Get is. Written once, shared by the SQLite backend and the
// etcd one; pure functions, tested without storage
// (tests/registry/groups/group_store_rules_test.cc) and judged through both
// backends by the contract suite.

#ifndef CHAT_REGISTRY_GROUPS_GROUP_STORE_RULES_H_
#define CHAT_REGISTRY_GROUPS_GROUP_STORE_RULES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "registry/groups/group_store.h"

namespace chat::registry {

// What one page of Get carries at most, in state bytes (counted at the
// limit's size, max_state_bytes, so it is known before reading).
inline constexpr size_t kMaxGroupPageBytes = size_t{2} << 20;
// A group id is at most this long.
inline constexpr size_t kMaxGroupIdLength = 64;

// OK for 1-kMaxGroupIdLength characters of [0-9a-f]; else kInvalidArgument.
absl::Status ValidateGroupId(const std::string& group_id);

// OK for limits a store can open with: every one at least 1, and
// max_state_bytes at most kMaxGroupStateBytesCap; else kInvalidArgument
// naming the field.
absl::Status ValidateGroupStoreLimits(const GroupStoreLimits& limits);

// OK when `next` may be handed to a store's Put: a valid group id, a
// version of at least 1, an owner key that is the NameKey() of a valid name.
// kInvalidArgument saying what is wrong; kResourceExhausted (LimitError,
// --max-group-state-kb) for a state past max_state_bytes.
absl::Status ValidateGroupPut(const StoredGroupState& next,
                              const GroupStoreLimits& limits);

// How many states one Get answers: `max_states`, at most as many as fit in
// kMaxGroupPageBytes at max_state_bytes each, and at least 1.
// kInvalidArgument for max_states < 1.
absl::StatusOr<int> GroupPageSize(int max_states,
                                  const GroupStoreLimits& limits);

// A group's latest version, as a store keeps it beside the states.
struct GroupHead {
  int64_t version = 0;
  std::string owner_key;
  bool ended = false;
};

// What the counts are before a Put: groups in all, and groups not ended
// whose latest version names next.owner_key.
struct GroupCounts {
  size_t groups = 0;
  size_t next_owner_groups = 0;
};

// What a Put does, decided.
struct GroupPutPlan {
  // False: not accepted; the store answers with its latest (`head`'s).
  bool accept = false;
  // Accepted, and the group is new: groups in all + 1.
  bool new_group = false;
  // Accepted: the owner key whose count of groups not ended goes down by
  // one (the latest's owner, when the owner changes or the group ends), and
  // the one whose count goes up (next.owner_key, when it takes over or
  // creates a group not ended). Never both the same key.
  std::optional<std::string> owner_released;
  std::optional<std::string> owner_charged;
};

// Decides a Put of `next` (ValidateGroupPut passed) on a group whose latest
// is `head` (nullopt: not held), the counts as they stand in `counts`.
// Errors are the contract's: kNotFound for a version past 1 of a group not
// held, kFailedPrecondition for the version after one that ended the
// group, kResourceExhausted (LimitError naming --max-groups,
// --max-group-versions or --max-groups-per-owner) for an accepted Put past a
// limit.
absl::StatusOr<GroupPutPlan> DecideGroupPut(
    const std::optional<GroupHead>& head, const StoredGroupState& next,
    const GroupCounts& counts, const GroupStoreLimits& limits);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_GROUPS_GROUP_STORE_RULES_H_
