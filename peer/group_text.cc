#include "peer/group_text.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/identity.h"
#include "peer/message.h"
#include "registry/names.h"

namespace chat::peer {

std::string GroupChangeText(const std::string& label,
                            const registry::GroupState& after,
                            const registry::GroupChange& change,
                            const std::string& own_name, bool first_known) {
  const std::string group = absl::StrCat("#", PrintableName(label));
  auto is_self = [&own_name](const std::string& name) {
    return registry::NameKey(name) == registry::NameKey(own_name);
  };
  auto names = [](const std::vector<registry::GroupMember>& members) {
    std::vector<std::string> shown;
    for (const registry::GroupMember& member : members) {
      shown.push_back(PrintableName(member.name));
    }
    return absl::StrJoin(shown, ", ");
  };
  const bool listed = std::any_of(after.members.begin(), after.members.end(),
                                  [&](const registry::GroupMember& member) {
                                    return is_self(member.name);
                                  });
  if (first_known) {
    if (after.ended) return absl::StrCat(group, " has ended");
    if (!listed) return absl::StrCat("you are not in ", group);
    return absl::StrCat("you are in ", group, " now: owner ",
                        PrintableName(after.owner), "; members ",
                        names(after.members));
  }
  std::vector<std::string> parts;
  for (const registry::GroupMember& member : change.added) {
    parts.push_back(
        is_self(member.name)
            ? "you were added"
            : absl::StrCat(PrintableName(member.name), " was added"));
  }
  for (const registry::GroupMember& member : change.removed) {
    parts.push_back(
        is_self(member.name)
            ? "you were removed"
            : absl::StrCat(PrintableName(member.name), " was removed"));
  }
  for (const registry::GroupMember& member : change.rekeyed) {
    parts.push_back(absl::StrCat(PrintableName(member.name),
                                 "'s key in the group changed (now ",
                                 Fingerprint(member.key), ")"));
  }
  if (change.new_owner.has_value()) {
    parts.push_back(is_self(*change.new_owner)
                        ? "you are the owner now"
                        : absl::StrCat(PrintableName(*change.new_owner),
                                       " is the owner now"));
  }
  if (change.new_display_name.has_value()) {
    parts.push_back(
        absl::StrCat("renamed to ", PrintableName(*change.new_display_name)));
  }
  if (change.ended) parts.push_back("it has ended");
  if (parts.empty()) return absl::StrCat(group, ": nothing changed");
  return absl::StrCat(group, ": ", absl::StrJoin(parts, "; "));
}

}  // namespace chat::peer
