// How our user's changes to a group's membership are made: the next state
// built from the latest the peer holds, signed as the owner, offered to the
// registry (the sequencer) and, once accepted, kept in the group book; a
// change that lost the race to another is re-based on the winner and made
// again.

#ifndef CHAT_PEER_GROUP_MANAGER_H_
#define CHAT_PEER_GROUP_MANAGER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "peer/group_book.h"
#include "peer/group_directory.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

// The keys a new member is listed with. Thread-safe.
class MemberKeys {
 public:
  virtual ~MemberKeys() = default;

  // The key to list for `name`: the one the peer trusts (pinned), else the
  // registry's binding. kNotFound ("nobody named carol is registered");
  // kFailedPrecondition when the registry's key differs from the pinned one
  // (the user must /trust the new key first); kUnavailable when the
  // registry cannot be asked.
  virtual absl::StatusOr<PublicKey> KeyToList(const std::string& name) = 0;
};

// One membership change made, or found already made.
struct GroupUpdate {
  // The state the change follows: the latest before it; an empty state
  // (version 0) for a creation.
  registry::GroupState before;
  // Accepted by the registry and in the group book.
  registry::GroupState after;
  // DiffGroupStates(before, after): what to tell the members.
  registry::GroupChange change;
  // Who gets the change notice: every member of `before` or `after` but us,
  // once each, as the state lists them (`after`'s spelling first), in
  // NameKey order. Includes the members removed, so they learn it.
  std::vector<std::string> notify;
};

// Makes the changes our user asks for, as the groups' owner:
//  - each change reads the latest state of the group from the book
//    (kNotFound for a group it does not hold), checks that we own it
//    (kPermissionDenied: "only alice, the owner, can change team") and
//    that it has not ended (kFailedPrecondition), builds the next version
//    (previous_hash chained, signed_at from the clock's wall time), signs
//    it with our identity and checks it with CheckSuccessor before it
//    leaves (so a state the registry and the members would refuse is never
//    offered: kInvalidArgument, kResourceExhausted with the member limit);
//  - the registry either accepts it, or answers with the group's current
//    state when another version got there first (another device of the
//    owner, say). The manager then brings the book up to that state
//    (fetching the versions in between) and makes the same change again on
//    it: "add dave" stays "add dave", whatever else changed. A change that
//    the new latest already makes (someone added dave meanwhile) answers
//    an update with before == after and an empty change and `notify`
//    (whoever made that version sends its notice), not an error. After
//    kMaxAttempts offers that all lost: kAborted, saying so;
//  - once accepted, the state is applied to the book before the call
//    returns. If that write fails (kUnavailable), the registry holds the
//    version and the book does not: the next change finds the registry
//    ahead, re-bases on its own version and goes on.
// The registry away: kUnavailable, nothing applied. A chain from the
// registry that does not verify from what the book holds: the book's
// refusal (kUnauthenticated, ...) or kDataLoss for a fork; nothing changed.
//
// Messages name a group by its label (GroupLabels: "team", or "team~3f2a"
// when two of the peer's groups are called team), which the user can type
// back.
//
// Thread-safe. One change at a time: a change holds a mutex from reading
// the book to applying the accepted state, across the calls to the registry
// (MemberKeys, GroupDirectory), so two changes of this peer never race each
// other; changes are rare and made by hand, so waiting behind one is fine.
// Find() does not wait for a change.
class GroupManager {
 public:
  // Offers per change before kAborted: the first and the re-bases.
  static constexpr int kMaxAttempts = 4;

  // `identity`, `book`, `directory`, `keys` and `clock`: not owned; must
  // outlive this. `own_name`: our registered name (a valid name), the owner
  // and a member of the groups we create. `limits`: as the book checks
  // states (PeerStoreLimits::group_limits); `max_groups`: as the book holds
  // at most (PeerStoreLimits::max_groups), checked before a creation is
  // offered.
  GroupManager(const Identity* identity, std::string own_name, GroupBook* book,
               GroupDirectory* directory, MemberKeys* keys, const Clock& clock,
               registry::GroupLimits limits, int64_t max_groups);

  GroupManager(const GroupManager&) = delete;
  GroupManager& operator=(const GroupManager&) = delete;

  // A new group called `display_name` (ValidateGroupState's rules:
  // kInvalidArgument), owned by us, whose members are us and `members`
  // (valid names, kInvalidArgument; one name twice, in any case,
  // kInvalidArgument; our own name is skipped), each listed with
  // MemberKeys's key (its errors, naming the member). kResourceExhausted
  // for more than limits.max_members members, or when the book holds
  // max_groups groups.
  absl::StatusOr<GroupUpdate> Create(const std::string& display_name,
                                     const std::vector<std::string>& members)
      ABSL_LOCKS_EXCLUDED(change_mu_);

  // Adds `names` (valid, each once: kInvalidArgument) to `group_id`, with
  // MemberKeys's keys. kAlreadyExists ("dave is already in team") when one
  // is in it already (nothing added); kResourceExhausted past
  // limits.max_members.
  absl::StatusOr<GroupUpdate> Add(const std::string& group_id,
                                  const std::vector<std::string>& names)
      ABSL_LOCKS_EXCLUDED(change_mu_);

  // Removes `names` (each once: kInvalidArgument) from `group_id`. kNotFound
  // ("dave is not in team") when one is not in it (nothing removed);
  // kInvalidArgument when we are among them (we leave with Leave()).
  absl::StatusOr<GroupUpdate> Remove(const std::string& group_id,
                                     const std::vector<std::string>& names)
      ABSL_LOCKS_EXCLUDED(change_mu_);

  // Makes `new_owner`, a member, the owner of `group_id`: from then on only
  // its signature makes the next version. kNotFound when it is not a
  // member; kInvalidArgument when it is us.
  absl::StatusOr<GroupUpdate> HandOver(const std::string& group_id,
                                       const std::string& new_owner)
      ABSL_LOCKS_EXCLUDED(change_mu_);

  // Takes us out of `group_id`. Only the owner signs a version, so:
  //  - the owner alone in the group ends it (an ended version without
  //    members; nothing follows it);
  //  - the owner with others: kFailedPrecondition ("hand team over first:
  //    /group owner team NAME");
  //  - a member who is not the owner cannot take itself out:
  //    kFailedPrecondition ("only alice, the owner, can remove you from
  //    team"). Leaving by asking the owner is not made here;
  //  - not a member: kNotFound; an ended group: kFailedPrecondition.
  absl::StatusOr<GroupUpdate> Leave(const std::string& group_id)
      ABSL_LOCKS_EXCLUDED(change_mu_);

  // The group id of what the user typed after /group: a label as
  // GroupLabels gives it over the book's groups ("team", "team~3f2a"), a
  // display name and a longer prefix of the id ("team~3f2a9"), or a group
  // id the book holds. kNotFound ("no group called team"); kInvalidArgument
  // when it names more than one ("two groups are called team: team~3f2a,
  // team~9c01").
  absl::StatusOr<std::string> Find(const std::string& label);

 private:
  // One change the user asked for, made on a latest state: the state to
  // sign (version, hash and time are the caller's to set), or nullopt when
  // `latest` does it already. `rebased`: `latest` is not the state the user
  // asked against but one that won a race to the registry; what is done
  // already is then skipped instead of refused.
  using Intent =
      std::function<absl::StatusOr<std::optional<registry::GroupState>>(
          const registry::GroupState& latest, bool rebased)>;

  // Reads, builds, signs, offers and re-bases as the class comment says.
  absl::StatusOr<GroupUpdate> Change(const std::string& group_id,
                                     const Intent& intent)
      ABSL_LOCKS_EXCLUDED(change_mu_);
  // Brings the book up to `current`, the registry's latest of its group,
  // fetching the versions between. The book's latest after it.
  absl::StatusOr<registry::GroupState> CatchUp(
      const registry::GroupState& current)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_);
  // Applies `after`, accepted, to the book; the update from `before`.
  absl::StatusOr<GroupUpdate> Accepted(const registry::GroupState& before,
                                       const registry::GroupState& after)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(change_mu_);
  // OK when we own `latest`, which has not ended; else the class comment's
  // errors, naming the group `label`.
  absl::Status RequireOwner(const registry::GroupState& latest,
                            const std::string& label) const;
  // `names` as members, with MemberKeys's keys, in order; its errors,
  // naming the member.
  absl::StatusOr<std::vector<registry::GroupMember>> NewMembers(
      const std::vector<std::string>& names);
  // The label the user knows `group_id` by.
  std::string Label(const std::string& group_id);
  bool IsSelf(const std::string& name) const;
  registry::GroupMember Self() const;

  const Identity& identity_;
  const std::string own_name_;
  GroupBook& book_;
  GroupDirectory& directory_;
  MemberKeys& keys_;
  const Clock& clock_;
  const registry::GroupLimits limits_;
  const int64_t max_groups_;

  // Held by a change from start to end: see the class comment.
  absl::Mutex change_mu_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_MANAGER_H_
