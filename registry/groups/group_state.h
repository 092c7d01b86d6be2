// One signed version of a chat group's membership, and the rules that say
// whether a version may follow another. Pure functions: the registry uses
// them to sequence a group's versions, members to check what it hands them.
// Every function is thread-safe (no state, nothing global); the structs are
// values, thread-compatible.

#ifndef CHAT_REGISTRY_GROUPS_GROUP_STATE_H_
#define CHAT_REGISTRY_GROUPS_GROUP_STATE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/identity.h"
#include "proto/registry.pb.h"

namespace chat::registry {

// Sizes fixed by the wire contract (proto/registry.proto GroupState).
inline constexpr size_t kGroupIdHexChars = 32;  // 16 random bytes, hex.
inline constexpr size_t kGroupHashBytes = 32;   // BLAKE2b-256.
inline constexpr size_t kMaxGroupDisplayNameBytes = 64;

// A member as the owner pinned it. `name` keeps its case; two members with
// the same NameKey (registry/names.h) are one member, and a state that lists
// both is malformed.
struct GroupMember {
  std::string name;
  PublicKey key;

  friend bool operator==(const GroupMember& a, const GroupMember& b) {
    return a.name == b.name && a.key == b.key;
  }
  friend bool operator!=(const GroupMember& a, const GroupMember& b) {
    return !(a == b);
  }
};

// One version of a group (v1::GroupState, field by field; the proto's
// comments are the contract). A value type; thread-compatible.
struct GroupState {
  std::string group_id;       // kGroupIdHexChars lowercase hex characters.
  int64_t version = 0;        // 1 for the creation, then one more per change.
  std::string previous_hash;  // GroupStateHash of version - 1; empty for 1.
  std::string display_name;   // UTF-8, 1..kMaxGroupDisplayNameBytes bytes.
  std::string owner;          // A member's name (any case): the next signer.
  std::vector<GroupMember> members;  // In any order; signed in NameKey order.
  // No version follows; the owner need not be a member any more.
  bool ended = false;
  // The signer's clock. Informational: shown to members, checked by nobody
  // (a clock that steps back must not stall a group).
  int64_t signed_at_unix_ms = 0;
  std::string signature;  // kSignatureBytes, over GroupStateSignedBytes.

  friend bool operator==(const GroupState& a, const GroupState& b) {
    return a.group_id == b.group_id && a.version == b.version &&
           a.previous_hash == b.previous_hash &&
           a.display_name == b.display_name && a.owner == b.owner &&
           a.members == b.members && a.ended == b.ended &&
           a.signed_at_unix_ms == b.signed_at_unix_ms &&
           a.signature == b.signature;
  }
  friend bool operator!=(const GroupState& a, const GroupState& b) {
    return !(a == b);
  }
};

// What the checker accepts beyond the wire's fixed sizes. The registry sets
// them from its options; members use the defaults.
struct GroupLimits {
  // Members of one group, the owner included.
  int max_members = 64;
};

// A fresh group id: 16 random bytes as 32 lowercase hex characters.
std::string NewGroupId();
// Whether `id` has the form NewGroupId() gives (kGroupIdHexChars lowercase
// hex characters): what a state's group_id, and a message's, must be.
bool IsGroupId(absl::string_view id);

// Writes `state` into `proto` (cleared first), members in the order given.
void GroupStateToProto(const GroupState& state, v1::GroupState* proto);

// `proto` as a GroupState, every field checked as ValidateGroupState checks
// it but for the member limit (the caller's, applied by ValidateGroupState).
// kInvalidArgument naming the field ("members[2].public_key is 31 bytes, not
// 32"). The signature's size is checked, not the signature.
absl::StatusOr<GroupState> GroupStateFromProto(const v1::GroupState& proto);

// The bytes the owner signs: every field but `signature`, framed like
// RegistrationProofMessage (common/identity.h) so that a field's bytes can
// never pass for another's and the signature serves no other purpose:
//   "chat-group-state-v1" 0x00
//   u32be(len(group_id)) group_id   u64be(version)
//   u32be(len(previous_hash)) previous_hash
//   u32be(len(display_name)) display_name   u32be(len(owner)) owner
//   u32be(number of members)
//   per member, in NameKey order (then by name, then key, so that even a
//   malformed list has one encoding): u32be(len(name)) name u32be(32) key
//   u8(ended: 0 or 1)   u64be(signed_at_unix_ms)
// The same state in any member order gives the same bytes. Names are signed
// as written (their case is part of what is shown). Defined for any state,
// well-formed or not.
std::string GroupStateSignedBytes(const GroupState& state);

// What the next version's previous_hash must be: BLAKE2b-256 over
// GroupStateSignedBytes(state), u32be(len(signature)) and the signature
// (kGroupHashBytes raw bytes). The signature is hashed too, so a version is
// pinned exactly as it was handed out.
std::string GroupStateHash(const GroupState& state);

// `state` with `signature` set to `signer`'s signature of its signed bytes
// (whatever signature it had is replaced). kInvalidArgument, naming the
// field, when a field other than the signature is malformed (as
// GroupStateFromProto checks; limits are the verifier's). Whether `signer`
// may sign it is for CheckGenesis / CheckSuccessor to say.
absl::StatusOr<GroupState> SignGroupState(GroupState state,
                                          const Identity& signer);

// OK when every field of `state` is well-formed and within `limits`:
//  - group_id: kGroupIdHexChars characters of [0-9a-f];
//  - version >= 1; previous_hash empty for version 1, else kGroupHashBytes;
//  - display_name: valid UTF-8, 1..kMaxGroupDisplayNameBytes bytes, no
//    control characters (C0, DEL, C1). Other invisible characters (bidi
//    controls, zero-width) are allowed here and written out when shown
//    (common/unicode.h VisibleText);
//  - owner: a valid name (registry/names.h ValidateName) and, unless the
//    state is ended, one of the members (by NameKey);
//  - members: valid names, unique by NameKey (keys are 32 bytes by type);
//  - signed_at_unix_ms >= 0; signature kSignatureBytes (not verified).
// kInvalidArgument naming the field and saying what is wrong;
// kResourceExhausted when there are more than limits.max_members members
// (the message says the limit).
absl::Status ValidateGroupState(const GroupState& state,
                                const GroupLimits& limits);

// OK when `state` may create its group: ValidateGroupState, then version 1,
// not ended, and signed by the key its own members list for its owner.
// kInvalidArgument / kResourceExhausted as ValidateGroupState (and for an
// ended creation); kFailedPrecondition for a version other than 1 (it
// follows a version the caller does not hold); kUnauthenticated when the
// signature is not the owner's.
absl::Status CheckGenesis(const GroupState& state, const GroupLimits& limits);

// OK when `next` may follow `current`, a state that itself passed
// CheckGenesis or CheckSuccessor (it is not re-validated). In this order:
//  - ValidateGroupState(next): kInvalidArgument / kResourceExhausted;
//  - the same group_id: else kInvalidArgument (not a state of this group);
//  - `current` not ended: else kFailedPrecondition (nothing follows it);
//  - next.version == current.version + 1: else kFailedPrecondition, the
//    message saying both versions (the registry answers such a change with
//    its current state, to re-base on);
//  - next.previous_hash == GroupStateHash(current): else kUnauthenticated;
//  - signed by the key `current` lists for `current.owner` (the owner
//    hands over by signing a state whose owner is another member; a member
//    who is not the owner, or a stranger, cannot sign): else
//    kUnauthenticated.
// Anything else may change from one version to the next: members come and
// go, keys are replaced (DiffGroupStates reports it), the owner changes, the
// group is renamed or ended.
absl::Status CheckSuccessor(const GroupState& current, const GroupState& next,
                            const GroupLimits& limits);

// The key `state` lists for the member `name` (matched by NameKey), or
// nullopt when it lists none.
std::optional<PublicKey> GroupMemberKey(const GroupState& state,
                                        const std::string& name);

// What changed from `before` to `after`, for the screen ("bob joined",
// "carol's key changed"). Members are matched by NameKey; each list is in
// NameKey order. A pure description: it checks nothing, and any two states
// (consecutive or not, of one group or not) can be compared.
struct GroupChange {
  std::vector<GroupMember> added;        // As `after` lists them.
  std::vector<GroupMember> removed;      // As `before` listed them.
  std::vector<GroupMember> rekeyed;      // Listed in both, with `after`'s key.
  std::optional<std::string> new_owner;  // When the owner changed.
  std::optional<std::string> new_display_name;  // When it was renamed.
  bool ended = false;  // `after` ended and `before` had not.

  // True when nothing a member would be told about changed (a new version
  // may change only its time, or a member's name's case).
  bool empty() const {
    return added.empty() && removed.empty() && rekeyed.empty() &&
           !new_owner.has_value() && !new_display_name.has_value() && !ended;
  }
};
GroupChange DiffGroupStates(const GroupState& before, const GroupState& after);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_GROUPS_GROUP_STATE_H_
