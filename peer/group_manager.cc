#include "peer/group_manager.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "peer/group_rules.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::GroupChange;
using registry::GroupMember;
using registry::GroupState;
using registry::GroupStateHash;
using registry::NameKey;
using registry::RegistryClient;

// "two", "three", ... for the few counts a message says in words.
std::string CountInWords(size_t count) {
  static constexpr const char* kWords[] = {"no",    "one",  "two", "three",
                                           "four",  "five", "six", "seven",
                                           "eight", "nine"};
  if (count < std::size(kWords)) return kWords[count];
  return absl::StrCat(count);
}

// OK when `names` are valid names, none twice by NameKey.
absl::Status ValidateNames(const std::vector<std::string>& names) {
  std::set<std::string> seen;
  for (const std::string& name : names) {
    CHAT_RETURN_IF_ERROR(registry::ValidateName(name));
    if (!seen.insert(NameKey(name)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " is named twice (names are the same in any case)"));
    }
  }
  return absl::OkStatus();
}

bool Lists(const GroupState& state, const std::string& name) {
  return registry::GroupMemberKey(state, name).has_value();
}

// Every member of `before` or `after` but `own_name`, once, in NameKey order,
// `after`'s spelling first.
std::vector<std::string> WhoToNotify(const GroupState& before,
                                     const GroupState& after,
                                     const std::string& own_name) {
  std::map<std::string, std::string> by_key;
  for (const GroupMember& member : after.members) {
    by_key.emplace(NameKey(member.name), member.name);
  }
  for (const GroupMember& member : before.members) {
    by_key.emplace(NameKey(member.name), member.name);
  }
  by_key.erase(NameKey(own_name));
  std::vector<std::string> notify;
  notify.reserve(by_key.size());
  for (auto& [key, name] : by_key) notify.push_back(std::move(name));
  return notify;
}

int64_t WallMillis(const Clock& clock) {
  // A signing time before 1970 is malformed; a clock that far off is not
  // worth refusing a change over (the time is informational).
  return std::max<int64_t>(0, absl::ToUnixMillis(clock.Wall()));
}

}  // namespace

GroupManager::GroupManager(const Identity* identity, std::string own_name,
                           GroupBook* book, GroupDirectory* directory,
                           MemberKeys* keys, const Clock& clock,
                           registry::GroupLimits limits, int64_t max_groups)
    : identity_(*identity),
      own_name_(std::move(own_name)),
      book_(*book),
      directory_(*directory),
      keys_(*keys),
      clock_(clock),
      limits_(limits),
      max_groups_(max_groups) {}

bool GroupManager::IsSelf(const std::string& name) const {
  return NameKey(name) == NameKey(own_name_);
}

GroupMember GroupManager::Self() const {
  return GroupMember{own_name_, identity_.public_key()};
}

std::string GroupManager::Label(const std::string& group_id) {
  std::vector<GroupName> names;
  for (const KnownGroup& known : book_.List()) {
    names.push_back(GroupName{known.state.group_id, known.state.display_name});
  }
  const std::map<std::string, std::string> labels = GroupLabels(names);
  auto found = labels.find(group_id);
  return found != labels.end() ? found->second : group_id;
}

absl::Status GroupManager::RequireOwner(const GroupState& latest,
                                        const std::string& label) const {
  if (latest.ended) {
    return absl::FailedPreconditionError(
        absl::StrCat(label, " has ended; nothing can change in it"));
  }
  if (!IsSelf(latest.owner)) {
    return absl::PermissionDeniedError(
        absl::StrCat("only ", latest.owner, ", the owner, can change ", label));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<GroupMember>> GroupManager::NewMembers(
    const std::vector<std::string>& names) {
  std::vector<GroupMember> members;
  members.reserve(names.size());
  for (const std::string& name : names) {
    absl::StatusOr<PublicKey> key = keys_.KeyToList(name);
    if (!key.ok()) {
      return absl::Status(
          key.status().code(),
          absl::StrCat("cannot list ", name, ": ", key.status().message()));
    }
    members.push_back(GroupMember{name, *key});
  }
  return members;
}

absl::StatusOr<GroupUpdate> GroupManager::Create(
    const std::string& display_name, const std::vector<std::string>& members) {
  CHAT_RETURN_IF_ERROR(ValidateNames(members));
  std::vector<std::string> others;
  for (const std::string& name : members) {
    if (!IsSelf(name)) others.push_back(name);
  }
  absl::MutexLock one_change(&change_mu_);
  GroupState state;
  state.group_id = registry::NewGroupId();
  state.version = 1;
  state.display_name = display_name;
  state.owner = own_name_;
  state.members = {Self()};
  // Signing checks every field (the display name among them) before the
  // registry is asked for anyone's key.
  CHAT_RETURN_IF_ERROR(SignGroupState(state, identity_).status());
  if (1 + others.size() >
      static_cast<size_t>(std::max(limits_.max_members, 0))) {
    return absl::ResourceExhaustedError(absl::StrCat(
        display_name, " would have ", 1 + others.size(),
        " members; a group may have at most ", limits_.max_members));
  }
  CHAT_RETURN_IF_ERROR(RoomForAnotherGroup(
      static_cast<int64_t>(book_.List().size()), max_groups_));
  CHAT_ASSIGN_OR_RETURN(std::vector<GroupMember> listed, NewMembers(others));
  state.members.insert(state.members.end(), listed.begin(), listed.end());
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    // A fresh id each time: an id the registry already holds is another
    // group's (16 random bytes make that all but impossible).
    if (attempt > 1) state.group_id = registry::NewGroupId();
    state.signed_at_unix_ms = WallMillis(clock_);
    CHAT_ASSIGN_OR_RETURN(GroupState signed_state,
                          SignGroupState(state, identity_));
    CHAT_RETURN_IF_ERROR(CheckGenesis(signed_state, limits_));
    CHAT_ASSIGN_OR_RETURN(RegistryClient::GroupPut put,
                          directory_.Put(signed_state));
    if (put.accepted) return Accepted(GroupState(), signed_state);
  }
  return absl::AbortedError(absl::StrCat("the registry took none of ",
                                         kMaxAttempts, " new group ids for ",
                                         display_name, "; nothing was made"));
}

absl::StatusOr<GroupUpdate> GroupManager::Add(
    const std::string& group_id, const std::vector<std::string>& names) {
  CHAT_RETURN_IF_ERROR(ValidateNames(names));
  // Keys asked once, kept across re-bases.
  std::map<std::string, GroupMember> looked_up;
  return Change(
      group_id,
      [&](const GroupState& latest,
          bool rebased) -> absl::StatusOr<std::optional<GroupState>> {
        const std::string label = Label(group_id);
        if (!rebased) CHAT_RETURN_IF_ERROR(RequireOwner(latest, label));
        std::vector<std::string> to_add;
        for (const std::string& name : names) {
          if (!Lists(latest, name)) {
            to_add.push_back(name);
          } else if (!rebased) {
            return absl::AlreadyExistsError(
                absl::StrCat(name, " is already in ", label));
          }
        }
        if (to_add.empty()) return std::nullopt;
        if (rebased) CHAT_RETURN_IF_ERROR(RequireOwner(latest, label));
        const size_t members = latest.members.size() + to_add.size();
        if (members > static_cast<size_t>(std::max(limits_.max_members, 0))) {
          return absl::ResourceExhaustedError(absl::StrCat(
              label, " would have ", members,
              " members; a group may have at most ", limits_.max_members));
        }
        std::vector<std::string> not_looked_up;
        for (const std::string& name : to_add) {
          if (looked_up.count(NameKey(name)) == 0)
            not_looked_up.push_back(name);
        }
        CHAT_ASSIGN_OR_RETURN(std::vector<GroupMember> found,
                              NewMembers(not_looked_up));
        for (GroupMember& member : found) {
          looked_up.emplace(NameKey(member.name), std::move(member));
        }
        GroupState next = latest;
        for (const std::string& name : to_add) {
          next.members.push_back(looked_up.at(NameKey(name)));
        }
        return next;
      });
}

absl::StatusOr<GroupUpdate> GroupManager::Remove(
    const std::string& group_id, const std::vector<std::string>& names) {
  CHAT_RETURN_IF_ERROR(ValidateNames(names));
  return Change(
      group_id,
      [&](const GroupState& latest,
          bool rebased) -> absl::StatusOr<std::optional<GroupState>> {
        const std::string label = Label(group_id);
        if (!rebased) CHAT_RETURN_IF_ERROR(RequireOwner(latest, label));
        std::set<std::string> to_remove;
        for (const std::string& name : names) {
          if (IsSelf(name)) {
            return absl::InvalidArgumentError(
                absl::StrCat("you cannot remove yourself from ", label,
                             "; leave it: /group leave ", label));
          }
          if (Lists(latest, name)) {
            to_remove.insert(NameKey(name));
          } else if (!rebased) {
            return absl::NotFoundError(
                absl::StrCat(name, " is not in ", label));
          }
        }
        if (to_remove.empty()) return std::nullopt;
        if (rebased) CHAT_RETURN_IF_ERROR(RequireOwner(latest, label));
        GroupState next = latest;
        next.members.erase(
            std::remove_if(next.members.begin(), next.members.end(),
                           [&](const GroupMember& member) {
                             return to_remove.count(NameKey(member.name)) > 0;
                           }),
            next.members.end());
        return next;
      });
}

absl::StatusOr<GroupUpdate> GroupManager::HandOver(
    const std::string& group_id, const std::string& new_owner) {
  CHAT_RETURN_IF_ERROR(registry::ValidateName(new_owner));
  return Change(group_id,
                [&](const GroupState& latest,
                    bool rebased) -> absl::StatusOr<std::optional<GroupState>> {
                  const std::string label = Label(group_id);
                  if (rebased && !latest.ended &&
                      NameKey(latest.owner) == NameKey(new_owner)) {
                    return std::nullopt;
                  }
                  CHAT_RETURN_IF_ERROR(RequireOwner(latest, label));
                  if (IsSelf(new_owner)) {
                    return absl::InvalidArgumentError(
                        absl::StrCat("you own ", label, " already"));
                  }
                  GroupState next = latest;
                  for (const GroupMember& member : latest.members) {
                    // The owner as the state lists the member, so its case is
                    // one.
                    if (NameKey(member.name) == NameKey(new_owner)) {
                      next.owner = member.name;
                      return next;
                    }
                  }
                  return absl::NotFoundError(
                      absl::StrCat(new_owner, " is not in ", label));
                });
}

absl::StatusOr<GroupUpdate> GroupManager::Leave(const std::string& group_id) {
  return Change(
      group_id,
      [&](const GroupState& latest,
          bool rebased) -> absl::StatusOr<std::optional<GroupState>> {
        const std::string label = Label(group_id);
        // Re-based on a state that has us out already: done.
        if (rebased && (latest.ended || !Lists(latest, own_name_))) {
          return std::nullopt;
        }
        if (latest.ended) {
          return absl::FailedPreconditionError(
              absl::StrCat(label, " has ended already"));
        }
        if (!Lists(latest, own_name_)) {
          return absl::NotFoundError(absl::StrCat("you are not in ", label));
        }
        if (!IsSelf(latest.owner)) {
          // Only the owner signs a version; a member cannot sign its own
          // leaving.
          return absl::FailedPreconditionError(
              absl::StrCat("only ", latest.owner,
                           ", the owner, can remove you from ", label));
        }
        if (latest.members.size() > 1) {
          return absl::FailedPreconditionError(absl::StrCat(
              "hand ", label, " over first: /group owner ", label, " NAME"));
        }
        // The owner alone: leaving ends the group.
        GroupState next = latest;
        next.members.clear();
        next.ended = true;
        return next;
      });
}

absl::StatusOr<GroupUpdate> GroupManager::Change(const std::string& group_id,
                                                 const Intent& intent) {
  absl::MutexLock one_change(&change_mu_);
  std::optional<KnownGroup> known = book_.Latest(group_id);
  if (!known.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no group with id ", group_id, " is known here"));
  }
  GroupState latest = std::move(known->state);
  bool rebased = false;
  for (int attempt = 1;; ++attempt) {
    CHAT_ASSIGN_OR_RETURN(std::optional<GroupState> edited,
                          intent(latest, rebased));
    if (!edited.has_value()) {
      // Done by the version that won the race; its maker sends its notice.
      return GroupUpdate{latest, latest, GroupChange(), {}};
    }
    GroupState next = *std::move(edited);
    next.group_id = latest.group_id;
    next.version = latest.version + 1;
    next.previous_hash = GroupStateHash(latest);
    next.signed_at_unix_ms = WallMillis(clock_);
    CHAT_ASSIGN_OR_RETURN(GroupState signed_next,
                          SignGroupState(std::move(next), identity_));
    // What the registry and every member will check, checked before it
    // leaves: a refusal here is a clear error instead of a lost race.
    CHAT_RETURN_IF_ERROR(CheckSuccessor(latest, signed_next, limits_));
    CHAT_ASSIGN_OR_RETURN(RegistryClient::GroupPut put,
                          directory_.Put(signed_next));
    if (put.accepted) return Accepted(latest, signed_next);
    if (put.current.group_id != group_id) {
      return absl::UnavailableError(
          absl::StrCat("the registry answered a change of ", Label(group_id),
                       " with a state of another group"));
    }
    if (put.current.version <= latest.version) {
      // The registry holds less than we verified (restored from an older
      // copy, say): no offer of ours can follow what it holds.
      return absl::FailedPreconditionError(absl::StrCat(
          "the registry holds version ", put.current.version, " of ",
          Label(group_id), ", not later than ours (", latest.version,
          "), and takes no change after it; nothing changed"));
    }
    if (attempt == kMaxAttempts) {
      return absl::AbortedError(absl::StrCat(
          "other changes to ", Label(group_id), " got to the registry first ",
          kMaxAttempts, " times; nothing of this change was made; try again"));
    }
    CHAT_ASSIGN_OR_RETURN(latest, CatchUp(put.current));
    rebased = true;
  }
}

absl::StatusOr<GroupState> GroupManager::CatchUp(const GroupState& current) {
  const std::string& group_id = current.group_id;
  std::vector<GroupState> received = {current};
  std::optional<int64_t> fetched_after;
  for (;;) {
    CHAT_ASSIGN_OR_RETURN(GroupAdvance advance, book_.Apply(received, Self()));
    if (!advance.forks.empty()) {
      return absl::DataLossError(absl::StrCat(
          "the registry holds another version ", advance.forks[0].version,
          " of ", Label(group_id),
          " than the one verified here: the group forked; nothing changed"));
    }
    if (!advance.rejected.empty()) {
      const RejectedGroupState& rejected = advance.rejected[0];
      return absl::Status(
          rejected.why.code(),
          absl::StrCat("the registry's version ", rejected.version, " of ",
                       Label(group_id), " does not verify: ",
                       rejected.why.message(), "; nothing changed"));
    }
    if (!advance.fetch_after.has_value()) break;
    if (fetched_after.has_value() && *advance.fetch_after <= *fetched_after) {
      return absl::UnavailableError(absl::StrCat(
          "the registry gave none of the versions of ", Label(group_id),
          " after ", *advance.fetch_after, "; nothing changed"));
    }
    fetched_after = advance.fetch_after;
    CHAT_ASSIGN_OR_RETURN(RegistryClient::GroupStates page,
                          directory_.Get(group_id, *advance.fetch_after));
    received = std::move(page.states);
    received.push_back(current);
  }
  std::optional<KnownGroup> latest = book_.Latest(group_id);
  if (!latest.has_value() || latest->state.version < current.version) {
    return absl::UnavailableError(absl::StrCat(
        "could not bring ", Label(group_id), " up to the registry's version ",
        current.version, "; nothing changed"));
  }
  return std::move(latest->state);
}

absl::StatusOr<GroupUpdate> GroupManager::Accepted(const GroupState& before,
                                                   const GroupState& after) {
  CHAT_RETURN_IF_ERROR(book_.Apply({after}, Self()).status());
  // Applied, or applied already (by whoever follows the registry for the
  // peer, between the answer and here): either way the book holds it.
  std::optional<GroupState> held = book_.StateAt(after.group_id, after.version);
  if (!held.has_value() || GroupStateHash(*held) != GroupStateHash(after)) {
    return absl::InternalError(absl::StrCat(
        "the registry accepted version ", after.version, " of ",
        Label(after.group_id), ", but the group book did not take it"));
  }
  GroupUpdate update;
  update.before = before;
  update.after = after;
  update.change = registry::DiffGroupStates(before, after);
  update.notify = WhoToNotify(before, after, own_name_);
  return update;
}

absl::StatusOr<std::string> GroupManager::Find(const std::string& label) {
  const std::vector<KnownGroup> groups = book_.List();
  std::vector<GroupName> names;
  names.reserve(groups.size());
  for (const KnownGroup& known : groups) {
    if (known.state.group_id == label) return label;
    names.push_back(GroupName{known.state.group_id, known.state.display_name});
  }
  const std::map<std::string, std::string> labels = GroupLabels(names);
  for (const auto& [id, shown] : labels) {
    if (shown == label) return id;
  }
  // A display name that two or more groups share.
  std::vector<std::string> alike;
  for (const GroupName& name : names) {
    if (name.display_name == label) alike.push_back(labels.at(name.group_id));
  }
  if (alike.size() > 1) {
    std::sort(alike.begin(), alike.end());
    return absl::InvalidArgumentError(
        absl::StrCat(CountInWords(alike.size()), " groups are called ", label,
                     ": ", absl::StrJoin(alike, ", ")));
  }
  // A display name and more of the id than the label shows, so that a label
  // typed before another group of that name came stays good.
  const size_t tilde = label.rfind('~');
  if (tilde != std::string::npos && tilde + 1 < label.size()) {
    const std::string display_name = label.substr(0, tilde);
    const std::string id_prefix = label.substr(tilde + 1);
    std::vector<std::string> matching;
    for (const GroupName& name : names) {
      if (name.display_name == display_name &&
          absl::StartsWith(name.group_id, id_prefix)) {
        matching.push_back(name.group_id);
      }
    }
    if (matching.size() == 1) return matching[0];
    if (matching.size() > 1) {
      std::vector<std::string> shown;
      for (const std::string& id : matching) shown.push_back(labels.at(id));
      std::sort(shown.begin(), shown.end());
      return absl::InvalidArgumentError(
          absl::StrCat(CountInWords(matching.size()), " groups are called ",
                       label, ": ", absl::StrJoin(shown, ", ")));
    }
  }
  return absl::NotFoundError(absl::StrCat("no group called ", label));
}

}  // namespace chat::peer
