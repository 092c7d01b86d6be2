#include "peer/group_rules.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chat::peer {

using registry::CheckGenesis;
using registry::CheckSuccessor;
using registry::DiffGroupStates;
using registry::GroupLimits;
using registry::GroupState;
using registry::GroupStateHash;

namespace {

// One distinct state handed in, with its hash computed once.
struct Candidate {
  const GroupState* state;
  std::string hash;
};

}  // namespace

absl::StatusOr<GroupAdvance> AdvanceGroup(
    const std::optional<GroupState>& known,
    const std::vector<GroupState>& received, const GroupLimits& limits) {
  if (received.empty()) {
    return absl::InvalidArgumentError("no group states to apply");
  }
  GroupAdvance advance;
  advance.group_id = known.has_value() ? known->group_id : received[0].group_id;
  // By version, copies (by hash) once each, in the order given.
  std::map<int64_t, std::vector<Candidate>> by_version;
  for (const GroupState& state : received) {
    if (state.group_id != advance.group_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "group states of two groups in one chain: ", advance.group_id,
          " and ", state.group_id.substr(0, registry::kGroupIdHexChars)));
    }
    std::vector<Candidate>& same = by_version[state.version];
    std::string hash = GroupStateHash(state);
    const bool copy =
        std::any_of(same.begin(), same.end(),
                    [&](const Candidate& c) { return c.hash == hash; });
    if (!copy) same.push_back(Candidate{&state, std::move(hash)});
  }

  std::optional<GroupState> current = known;
  if (current.has_value()) {
    const std::string held_hash = GroupStateHash(*current);
    for (const auto& [version, candidates] : by_version) {
      if (version > current->version) break;
      if (version < current->version) {
        advance.older_ignored += static_cast<int>(candidates.size());
        continue;
      }
      for (const Candidate& c : candidates) {
        if (c.hash != held_hash) {
          advance.forks.push_back(GroupFork{version, held_hash, c.hash});
        }
      }
    }
  }
  // A version held twice is not followed further: which branch is the
  // group's is for the user to find out, not for the order things came in.
  bool stopped = !advance.forks.empty();
  int64_t next_version = current.has_value() ? current->version + 1 : 1;
  while (!stopped) {
    auto found = by_version.find(next_version);
    if (found == by_version.end()) break;
    std::vector<const Candidate*> valid;
    for (const Candidate& c : found->second) {
      absl::Status checked = current.has_value()
                                 ? CheckSuccessor(*current, *c.state, limits)
                                 : CheckGenesis(*c.state, limits);
      if (checked.ok()) {
        valid.push_back(&c);
      } else {
        advance.rejected.push_back(
            RejectedGroupState{next_version, std::move(checked)});
      }
    }
    if (valid.size() > 1) {
      for (size_t i = 1; i < valid.size(); ++i) {
        advance.forks.push_back(
            GroupFork{next_version, valid[0]->hash, valid[i]->hash});
      }
      break;
    }
    if (valid.empty()) break;
    current = *valid[0]->state;
    advance.verified.push_back(*current);
    ++next_version;
    stopped = current->ended;
  }

  const bool moved = current.has_value() &&
                     (!known.has_value() || current->version > known->version);
  if (moved) {
    advance.first_known = !known.has_value();
    advance.change = DiffGroupStates(known.value_or(GroupState()), *current);
    advance.latest = std::move(current);
  }
  // What was given beyond the walk's end, with the next version missing.
  const bool ended = advance.latest.has_value()
                         ? advance.latest->ended
                         : (known.has_value() && known->ended);
  const int64_t reached = next_version - 1;
  if (advance.forks.empty() && !ended &&
      by_version.find(next_version) == by_version.end() &&
      !by_version.empty() && by_version.rbegin()->first > next_version) {
    advance.fetch_after = reached;
  }
  return advance;
}

absl::Status RoomForAnotherGroup(int64_t known_groups, int64_t max_groups) {
  if (known_groups < max_groups) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "this peer already follows ", known_groups, " groups, its limit (",
      max_groups, "); leave one before joining another"));
}

bool IsGroupMember(const GroupState& state, const std::string& name,
                   const PublicKey& key) {
  if (state.ended) return false;
  std::optional<PublicKey> listed = registry::GroupMemberKey(state, name);
  return listed.has_value() && *listed == key;
}

std::map<std::string, std::string> GroupLabels(
    const std::vector<GroupName>& groups) {
  // Per group id: how many hex characters of it its label shows (0: none).
  std::map<std::string, size_t> shown;
  std::map<std::string, std::string> names;
  for (const GroupName& group : groups) {
    shown[group.group_id] = 0;
    names[group.group_id] = group.display_name;
  }
  auto label = [&](const std::string& id) {
    const size_t chars = shown[id];
    if (chars == 0) return names[id];
    return absl::StrCat(names[id], "~", id.substr(0, chars));
  };
  // Lengthen the suffixes of every label shown twice until none is; each
  // round lengthens at least one, and a whole id is unique.
  for (;;) {
    std::map<std::string, std::vector<std::string>> by_label;
    for (const auto& [id, chars] : shown) by_label[label(id)].push_back(id);
    bool clash = false;
    for (const auto& [text, ids] : by_label) {
      if (ids.size() < 2) continue;
      for (const std::string& id : ids) {
        size_t& chars = shown[id];
        if (chars >= id.size()) continue;
        chars = chars == 0 ? std::min<size_t>(4, id.size()) : chars + 1;
        clash = true;
      }
    }
    if (!clash) break;
  }
  std::map<std::string, std::string> labels;
  for (const auto& [id, chars] : shown) labels[id] = label(id);
  return labels;
}

}  // namespace chat::peer
