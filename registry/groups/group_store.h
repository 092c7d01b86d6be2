// The registry's storage of group states: the compare-and-swap sequencer of
// each group's membership (proto/registry.proto, service Groups). A state is
// opaque bytes here, with the few fields the store sequences and counts by;
// its signature and chain are checked before it gets here
// (registry/groups/group_state.h), never by the store.

#ifndef CHAT_REGISTRY_GROUPS_GROUP_STORE_H_
#define CHAT_REGISTRY_GROUPS_GROUP_STORE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace chat::registry {

// One version of a group, as stored. The fields beside `state` are what the
// caller read out of it (GroupState's group_id, version, owner, ended); the
// store trusts them to agree with `state` and never parses `state`.
struct StoredGroupState {
  // 1-64 characters of [0-9a-f] (GroupState says 32).
  std::string group_id;
  // 1 for the group's creation, then one more per change.
  int64_t version = 0;
  // NameKey() of the owner named in this version: the one who may make the
  // next version, and whose quota the group counts against.
  std::string owner_key;
  // This version ends the group: no version follows it.
  bool ended = false;
  // The serialized GroupState, signature and all.
  std::string state;

  friend bool operator==(const StoredGroupState& a, const StoredGroupState& b) {
    return a.group_id == b.group_id && a.version == b.version &&
           a.owner_key == b.owner_key && a.ended == b.ended &&
           a.state == b.state;
  }
};

// What the group store holds at most. Each is counted exactly, also across
// every registry of one etcd; a Put past one is refused with
// kResourceExhausted naming the limit and its option (LimitError), and
// stores nothing.
struct GroupStoreLimits {
  // Groups in all, ended ones included (their states stay):
  // --max-groups.
  size_t max_groups = 100000;
  // Versions of one group (all are kept, so a group whose latest is this
  // version takes no further change): --max-group-versions.
  int64_t max_versions_per_group = 1024;
  // Bytes of one serialized state: --max-group-state-kb. At most
  // kMaxGroupStateBytesCap.
  size_t max_state_bytes = 32 * 1024;
  // Groups, not ended, whose latest version names one owner:
  // --max-groups-per-owner. A group counts against the owner of its latest
  // version from that version on; ending it frees the place.
  size_t max_groups_per_owner = 256;
};

// The most max_state_bytes may be: a state travels in one etcd request
// (--max-request-bytes 1.5 MiB by default) and one gRPC message.
inline constexpr size_t kMaxGroupStateBytesCap = size_t{1} << 20;

// What Put() decided.
struct GroupPutOutcome {
  // True: `next` is now its group's latest version.
  bool accepted = false;
  // When not accepted: the group's latest version, whose successor `next`
  // was not. Empty when accepted.
  StoredGroupState current;
};

// A page of one group's versions.
struct GroupStatesPage {
  std::vector<StoredGroupState> states;  // Oldest first.
  // The group's latest version when the page was read: more follow when
  // it is past the last of `states`.
  int64_t latest_version = 0;
};

// GroupStore keeps every version of every group and decides, atomically,
// which state becomes each group's next version.
//
// Every implementation passes the contract suite in
// tests/registry/groups/group_store_test.cc; the decisions are the rules of
// group_store_rules.h, the same on every backend.
//
// Durability: an accepted Put is durable before it returns (it survives
// kill -9 and power loss): once a version is accepted no other state can
// ever take it, on any registry sharing the storage.
// Errors: kInvalidArgument (a malformed id, version or owner key),
// kResourceExhausted (a limit), kNotFound, kFailedPrecondition (see each
// method), kUnavailable (storage failed). A failed call changes nothing,
// except that a Put failing with kUnavailable may have been applied (the
// storage could not say): Get the version it was to take to find out.
// Thread-safe: the gRPC server calls it from many threads at once.
class GroupStore {
 public:
  virtual ~GroupStore() = default;

  // Stores `next` as its group's next version: accepted when it is version
  // 1 of a group not held, or version N + 1 of a group whose latest is N.
  // Any other version of a group held (another version 1, N, N + 2) is not
  // accepted, with the latest in `current`; of any two Puts of the same
  // version, exactly one is accepted, whichever registry takes them.
  // kNotFound for a version past 1 of a group not held; kFailedPrecondition
  // for version N + 1 of a group whose version N ended it;
  // kResourceExhausted when `next` would pass a limit (checked only for a
  // Put that would otherwise be accepted).
  virtual absl::StatusOr<GroupPutOutcome> Put(const StoredGroupState& next) = 0;

  // The versions of `group_id` after `after_version` (0 or less: from the
  // first), oldest first: at most `max_states`, and at most
  // GroupPageSize() of them. kNotFound for a group not held;
  // kInvalidArgument for a malformed id or max_states < 1.
  virtual absl::StatusOr<GroupStatesPage> Get(const std::string& group_id,
                                              int64_t after_version,
                                              int max_states) = 0;

  // The latest version of `group_id`. kNotFound for a group not held.
  virtual absl::StatusOr<StoredGroupState> Latest(
      const std::string& group_id) = 0;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_GROUPS_GROUP_STORE_H_
