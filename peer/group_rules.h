// The rules of what a peer believes about its groups' membership, apart
// from how it stores it: pure functions over the latest state it verified
// and the states it was handed. Written once, so any store applies the same
// rules; tests/peer/group_rules_test.cc judges them without SQLite.
// Every function is thread-safe (no state, nothing global).

#ifndef CHAT_PEER_GROUP_RULES_H_
#define CHAT_PEER_GROUP_RULES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/identity.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

// Two states of one group with the same version and different hashes: the
// chain forked (the owner signed two, or someone forged one). An alarm for
// the user; the peer keeps what it holds and merges nothing.
struct GroupFork {
  int64_t version = 0;
  std::string held_hash;   // GroupStateHash of the one kept (raw bytes).
  std::string other_hash;  // Of the one refused.
};

// A state that did not verify where it would have fitted.
struct RejectedGroupState {
  int64_t version = 0;
  absl::Status why;  // CheckGenesis's or CheckSuccessor's answer.
};

// What the states handed to AdvanceGroup did to what the peer knows of one
// group.
struct GroupAdvance {
  std::string group_id;
  // The new latest verified state when it moved; nullopt when it did not
  // (what the peer held, if anything, stays).
  std::optional<registry::GroupState> latest;
  // Each state the walk newly verified, in version order: `latest` is its
  // last. Empty when nothing moved. A store keeps them all (GroupBook::
  // StateAt), so a message is judged by the state its sender saw.
  std::vector<registry::GroupState> verified;
  // The group was not known before and now is (`latest` is set).
  bool first_known = false;
  // From the state held before (an empty one for a group first known) to
  // `latest`, for the screen; empty when nothing moved.
  registry::GroupChange change;
  // Versions are missing between what is known and what was handed: the
  // caller fetches the states after this version (0: from the first) from
  // the registry (RegistryClient::GetGroupStates) and hands them in again.
  // Set only when the version that would follow is absent and a later one
  // was given, so a state the registry itself hands out wrong is reported
  // in `rejected` rather than asked for again and again.
  std::optional<int64_t> fetch_after;
  std::vector<GroupFork> forks;
  std::vector<RejectedGroupState> rejected;
  // States older than the one held: only the latest state's hash is kept,
  // so they are neither checked nor used.
  int older_ignored = 0;
};

// Advances `known` (the latest state the peer verified of one group, nullopt
// when it knows none) as far as `received` verifies, step by step from it:
//  - `received` may come in any order, with gaps and copies (copies, by
//    hash, count once);
//  - a group not known is believed from its version 1 (CheckGenesis: trust
//    on first use of the group, signed by whoever made it); without version
//    1, `fetch_after` is 0;
//  - each further version must pass CheckSuccessor from the one before;
//    the first that does not stops the walk (`rejected` says why);
//  - a version held with another hash, or two different states that both
//    verify as the next version, are a fork: reported, nothing of them
//    taken, and the walk stops there;
//  - nothing follows an ended state.
// Costs one signature check per distinct state at or after the next version
// (the caller bounds `received`). kInvalidArgument when `received` is empty
// or its states are not all of `known`'s group (or of one group).
absl::StatusOr<GroupAdvance> AdvanceGroup(
    const std::optional<registry::GroupState>& known,
    const std::vector<registry::GroupState>& received,
    const registry::GroupLimits& limits);

// OK when a peer that knows `known_groups` groups may learn one more:
// kResourceExhausted, saying the limit, when that would pass `max_groups`.
absl::Status RoomForAnotherGroup(int64_t known_groups, int64_t max_groups);

// Whether `state` lists `name` (by NameKey) with `key`, and is not ended
// (nobody writes to an ended group).
bool IsGroupMember(const registry::GroupState& state, const std::string& name,
                   const PublicKey& key);

// A group as the console names it.
struct GroupName {
  std::string group_id;
  std::string display_name;
};

// A short label for each group, unique among `groups` (keyed by group id):
// its display name when no other group shows the same label, else the
// display name, "~" and the first 4 hex characters of its id, more
// characters as long as that still leaves two alike. Group ids are unique,
// so the labels are. Deterministic: the same groups give the same labels in
// any order.
std::map<std::string, std::string> GroupLabels(
    const std::vector<GroupName>& groups);

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_RULES_H_
