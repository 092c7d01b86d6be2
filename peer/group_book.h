// The groups the peer knows: per group, the latest membership state it
// verified along the whole hash chain from the group's first version. A
// role of the peer's store (peer_store.h); the rules are
// peer/group_rules.h's.

#ifndef CHAT_PEER_GROUP_BOOK_H_
#define CHAT_PEER_GROUP_BOOK_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/identity.h"
#include "peer/group_rules.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

// What the peer knows of one group.
struct KnownGroup {
  registry::GroupState state;  // The latest verified.
  // We (the `self` of the Apply that stored it) are listed in `state` and
  // it has not ended.
  bool member = false;
};

// Holds at most PeerStoreLimits::max_groups groups, each checked against
// PeerStoreLimits::group_limits. Reads answer from memory and never fail.
// Errors: kInvalidArgument, kResourceExhausted, kUnavailable (storage
// failed: nothing of the failed write is kept, in the file or in memory).
// Thread-safe: Apply calls for the same group are taken one at a time.
class GroupBook {
 public:
  virtual ~GroupBook() = default;

  // Advances what is known of the group of `states` (all of one group; any
  // order, gaps, copies) as AdvanceGroup says, and stores the new latest
  // state, with whether `self` is a member of it, and every state verified
  // on the way (GroupAdvance::verified, for StateAt) before it returns. The
  // answer says what changed, what must be fetched, the forks and what was
  // refused; a fork or a refused state is no error. kInvalidArgument as
  // AdvanceGroup; kResourceExhausted when the group is new and the peer
  // knows max_groups groups already (nothing stored).
  virtual absl::StatusOr<GroupAdvance> Apply(
      const std::vector<registry::GroupState>& states,
      const registry::GroupMember& self) = 0;

  // Whether the latest known state of `group_id` lists `name` with `key`
  // (IsGroupMember); false for a group not known.
  virtual bool IsMember(const std::string& group_id, const std::string& name,
                        const PublicKey& key) = 0;
  // The state `version` of `group_id` as it was verified on the way to the
  // latest (every state verified is kept, so a message can be judged by
  // the membership its sender saw); nullopt when that version was never
  // verified here (older than the first one this peer learnt, or not
  // reached yet) or the group is not known.
  virtual std::optional<registry::GroupState> StateAt(
      const std::string& group_id, int64_t version) = 0;
  // The latest known state of `group_id`, nullopt when not known.
  virtual std::optional<KnownGroup> Latest(const std::string& group_id) = 0;
  // Every group known, by group id.
  virtual std::vector<KnownGroup> List() = 0;
  // The groups whose display name is exactly `display_name` (need not be
  // one: GroupLabels tells them apart), by group id.
  virtual std::vector<KnownGroup> ByDisplayName(
      const std::string& display_name) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_BOOK_H_
