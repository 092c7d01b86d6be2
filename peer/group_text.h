// The words the peer tells its user about groups.

#ifndef CHAT_PEER_GROUP_TEXT_H_
#define CHAT_PEER_GROUP_TEXT_H_

#include <string>

#include "registry/groups/group_state.h"

namespace chat::peer {

// A conversation named in a command is a peer's name, or a group as "#"
// and its label ("#team", "#team~3f2a"): no name starts with '#'.
inline bool IsGroupTarget(const std::string& target) {
  return !target.empty() && target.front() == '#';
}

// The line that tells a group's change: "#team: dave was added; carol was
// removed", "you were removed from #team", or, for a group first known
// (`first_known`), "you are in #team now: owner alice; members alice, bob".
// `after` is the group's state after the change; `own_name` is ours.
std::string GroupChangeText(const std::string& label,
                            const registry::GroupState& after,
                            const registry::GroupChange& change,
                            const std::string& own_name,
                            bool first_known = false);

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_TEXT_H_
