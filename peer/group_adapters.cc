#include "peer/group_adapters.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "peer/group_rules.h"
#include "registry/names.h"

namespace chat::peer {

std::map<std::string, std::string> GroupLabelsOf(GroupBook& book) {
  std::vector<GroupName> names;
  for (const KnownGroup& known : book.List()) {
    names.push_back({known.state.group_id, known.state.display_name});
  }
  return GroupLabels(names);
}

std::string GroupLabelIn(const std::map<std::string, std::string>& labels,
                         const std::string& group_id) {
  auto found = labels.find(group_id);
  return found != labels.end() ? found->second : group_id.substr(0, 8);
}

void GroupLabelingSink::OnEvent(const PeerEvent& event) {
  if (!event.group.empty() || event.message.group_id.empty()) {
    next_.OnEvent(event);
    return;
  }
  PeerEvent labeled = event;
  labeled.group = GroupLabelIn(GroupLabelsOf(book_), event.message.group_id);
  next_.OnEvent(labeled);
}

absl::StatusOr<PublicKey> TrustedGroupKeys::KeyToList(const std::string& name) {
  CHAT_RETURN_IF_ERROR(registry::ValidateName(name));
  absl::StatusOr<std::optional<PublicKey>> key = keys_.KeyFor(name);
  if (!key.ok()) return key.status();
  if (!key->has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name,
        " has no key (not registered, or a program without keys); a group "
        "member needs one"));
  }
  return **key;
}

std::optional<PublicKey> TrustedGroupKeys::TrustedKey(const std::string& name) {
  absl::StatusOr<std::optional<PublicKey>> key =
      keys_.KeyFor(name, /*may_ask=*/false);
  if (!key.ok()) return std::nullopt;
  return *key;
}

}  // namespace chat::peer
