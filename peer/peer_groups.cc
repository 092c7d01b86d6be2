// Peer's groups: their parts wired at start, the commands that change them,
// sending to them, and what the screen is told about them. The rules are
// GroupManager's, GroupGate's and peer/group_rules.h's; this is wiring.

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "peer/group_adapters.h"
#include "peer/group_text.h"
#include "peer/inbox_rules.h"
#include "peer/peer.h"
#include "registry/names.h"

namespace chat::peer {

using registry::GroupState;
using registry::NameKey;

void Peer::WireGroups() {
  // Changes we make go through the registry's sequencer (GroupManager);
  // every arriving group message passes the gate before the inbox keeps it.
  group_keys_ = std::make_unique<TrustedGroupKeys>(keys_.get());
  group_directory_ = std::make_unique<RegistryGroupDirectory>(registry_.get());
  groups_ = std::make_unique<GroupManager>(
      identity_.get(), options_.name, &store_->groups(), group_directory_.get(),
      group_keys_.get(), clock_, options_.store_limits.group_limits,
      options_.store_limits.max_groups);
  GroupGate::Options gate_options;
  gate_options.self = {options_.name, identity_->public_key()};
  group_gate_ = std::make_unique<GroupGate>(
      &store_->groups(), group_directory_.get(), group_keys_.get(), events_,
      clock_, std::move(gate_options));
  // Two doors to one inbox: gRPC callback threads must not wait on the
  // registry, so the direct path's door fetches group states on a thread
  // of its own; the mail listener's thread may wait.
  GroupChangeListener* const changes = this;
  GroupCheckedInbox::Options direct_door;
  direct_door.fetch_in_background = true;
  direct_inbox_ = std::make_unique<GroupCheckedInbox>(
      &store_->inbox(), group_gate_.get(), changes, direct_door);
  mail_inbox_ = std::make_unique<GroupCheckedInbox>(
      &store_->inbox(), group_gate_.get(), changes,
      GroupCheckedInbox::Options{});
}

ChatMessage Peer::NewGroupMessage(const GroupState& state,
                                  const std::string& text) const {
  ChatMessage message = NewMessage(text);
  message.group_id = state.group_id;
  message.group_version = state.version;
  message.group_state_hash = registry::GroupStateHash(state);
  return message;
}

absl::StatusOr<GroupTarget> Peer::FindGroup(const std::string& target) {
  std::string label = target;
  if (IsGroupTarget(label)) label.erase(0, 1);
  CHAT_ASSIGN_OR_RETURN(std::string group_id, groups_->Find(label));
  return GroupTarget{group_id,
                     GroupLabelIn(GroupLabelsOf(store_->groups()), group_id)};
}

std::vector<std::string> Peer::GroupLabelsForCompletion() {
  std::map<std::string, std::string> labels = GroupLabelsOf(store_->groups());
  std::vector<std::string> words;
  for (const KnownGroup& known : store_->groups().List()) {
    if (known.member)
      words.push_back(GroupLabelIn(labels, known.state.group_id));
  }
  std::sort(words.begin(), words.end());
  return words;
}

std::vector<GroupView> Peer::Groups() {
  std::map<std::string, std::string> labels = GroupLabelsOf(store_->groups());
  std::vector<GroupView> views;
  for (KnownGroup& known : store_->groups().List()) {
    GroupView view;
    view.label = GroupLabelIn(labels, known.state.group_id);
    view.member = known.member;
    for (const registry::GroupMember& member : known.state.members) {
      GroupMemberView shown;
      shown.name = member.name;
      shown.fingerprint = Fingerprint(member.key);
      shown.owner = NameKey(member.name) == NameKey(known.state.owner);
      shown.you = NameKey(member.name) == NameKey(options_.name);
      if (!shown.you && keys_->IsPinned(member.name)) {
        KeyView pinned = keys_->Verify(member.name);
        shown.key_differs =
            pinned.pinned.has_value() && *pinned.pinned != member.key;
      }
      view.members.push_back(std::move(shown));
    }
    view.state = std::move(known.state);
    views.push_back(std::move(view));
  }
  std::sort(
      views.begin(), views.end(),
      [](const GroupView& a, const GroupView& b) { return a.label < b.label; });
  return views;
}

absl::StatusOr<std::string> Peer::ChangeGroup(
    const std::string& verb, const std::string& group,
    const std::vector<std::string>& names) {
  absl::StatusOr<GroupUpdate> update;
  if (verb == "create") {
    update = groups_->Create(group, names);
  } else {
    CHAT_ASSIGN_OR_RETURN(GroupTarget target, FindGroup(group));
    if (verb == "add") {
      update = groups_->Add(target.group_id, names);
    } else if (verb == "remove") {
      update = groups_->Remove(target.group_id, names);
    } else if (verb == "owner") {
      if (names.size() != 1) {
        return absl::InvalidArgumentError("usage: /group owner GROUP NAME");
      }
      update = groups_->HandOver(target.group_id, names[0]);
    } else if (verb == "leave") {
      std::optional<KnownGroup> known =
          store_->groups().Latest(target.group_id);
      if (known.has_value() && known->member &&
          NameKey(known->state.owner) != NameKey(options_.name)) {
        return AskToLeave(known->state, target.label);
      }
      update = groups_->Leave(target.group_id);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown group command ", verb, " (try /help)"));
    }
  }
  if (!update.ok()) return update.status();
  const std::string label =
      GroupLabelIn(GroupLabelsOf(store_->groups()), update->after.group_id);
  TellMembers(*update, label);
  if (update->change.empty() && verb != "create") {
    return absl::StrCat("#", label, " already was that way; nothing changed");
  }
  return GroupChangeText(label, update->after, update->change, options_.name,
                         /*first_known=*/verb == "create");
}

void Peer::TellMembers(const GroupUpdate& update, const std::string& label) {
  // Everyone before and after hears of it, through the outbox: one sealed
  // copy each, kept until it arrives, like any message.
  if (!update.notify.empty() && !update.change.empty()) {
    ChatMessage notice = NewGroupMessage(
        update.after, GroupChangeText(label, update.after, update.change,
                                      /*own_name=*/""));
    notice.group_change = true;
    for (const std::string& name : update.notify) contacts_->Talked(name);
    QueueGroupMessage(std::move(notice), update.notify, /*to_partner=*/false,
                      /*echo=*/false);
  }
}

absl::StatusOr<std::string> Peer::AskToLeave(const GroupState& state,
                                             const std::string& label) {
  ChatMessage request = NewGroupMessage(
      state, absl::StrCat("asks to leave the group ", state.display_name));
  request.group_leave = true;
  QueueGroupMessage(std::move(request), {state.owner}, /*to_partner=*/false,
                    /*echo=*/false);
  return absl::StrCat("asked ", PrintableName(state.owner),
                      ", the owner, to take you out of #", label,
                      "; you are out once their peer has done it");
}

void Peer::OnLeaveRequest(const ChatMessage& message) {
  std::optional<KnownGroup> known = store_->groups().Latest(message.group_id);
  if (!known.has_value() ||
      NameKey(known->state.owner) != NameKey(options_.name)) {
    return;  // Not ours to grant (any more).
  }
  absl::MutexLock lock(&leave_mu_);
  if (leave_requests_.size() < kMaxLeaveRequests) {
    leave_requests_.push_back({message.group_id, message.from});
  }
}

void Peer::GrantLeaveRequests() {
  std::vector<std::pair<std::string, std::string>> requests;
  {
    absl::MutexLock lock(&leave_mu_);
    requests.swap(leave_requests_);
  }
  std::map<std::string, std::string> labels;
  for (const auto& [group_id, name] : requests) {
    absl::StatusOr<GroupUpdate> update = groups_->Remove(group_id, {name});
    if (labels.empty()) labels = GroupLabelsOf(store_->groups());
    const std::string label = GroupLabelIn(labels, group_id);
    if (!update.ok()) {
      // The registry away: tried again on the next round.
      if (update.status().code() == absl::StatusCode::kUnavailable) {
        absl::MutexLock lock(&leave_mu_);
        if (leave_requests_.size() < kMaxLeaveRequests) {
          leave_requests_.push_back({group_id, name});
        }
        continue;
      }
      // Out already (NOT_FOUND): nothing to do.
      if (update.status().code() != absl::StatusCode::kNotFound) {
        PeerEvent event = ErrorEvent(absl::StrCat(
            PrintableName(name), " asked to leave #", label,
            ", and taking them out failed: ", update.status().message(),
            "; /group remove ", label, " ", PrintableName(name)));
        event.group = label;
        Emit(event);
      }
      continue;
    }
    TellMembers(*update, label);
    PeerEvent event = InfoEvent(absl::StrCat(
        "#", label, ": ", PrintableName(name), " asked to leave, and is out"));
    event.group = label;
    Emit(event);
  }
}

void Peer::OnGroupAdvanced(const std::vector<GroupAdvance>& advanced) {
  std::map<std::string, std::string> labels = GroupLabelsOf(store_->groups());
  for (const GroupAdvance& advance : advanced) {
    if (!advance.latest.has_value()) continue;
    if (!advance.first_known && advance.change.empty()) continue;
    const std::string label = GroupLabelIn(labels, advance.group_id);
    PeerEvent event =
        InfoEvent(GroupChangeText(label, *advance.latest, advance.change,
                                  options_.name, advance.first_known));
    event.group = label;
    Emit(event);
    // Members met through the group, not in person: their fingerprints,
    // to compare.
    const std::vector<registry::GroupMember>& met =
        advance.first_known ? advance.latest->members : advance.change.added;
    for (const registry::GroupMember& member : met) {
      if (NameKey(member.name) == NameKey(options_.name) ||
          keys_->IsPinned(member.name)) {
        continue;
      }
      PeerEvent fingerprint = InfoEvent(absl::StrCat(
          "#", label, ": ", PrintableName(member.name), "'s key is ",
          Fingerprint(member.key), "; you have not talked with ",
          PrintableName(member.name), " before: compare it with them (/verify ",
          PrintableName(member.name), ")"));
      fingerprint.group = label;
      Emit(fingerprint);
    }
  }
}

absl::StatusOr<std::string> Peer::SendToGroup(const std::string& target,
                                              const std::string& text,
                                              bool to_partner) {
  CHAT_RETURN_IF_ERROR(ValidateMessageText(text));
  CHAT_ASSIGN_OR_RETURN(GroupTarget group, FindGroup(target));
  std::optional<KnownGroup> known = store_->groups().Latest(group.group_id);
  if (!known.has_value() || !known->member) {
    return absl::FailedPreconditionError(absl::StrCat(
        "you are not in #", group.label,
        known.has_value() && known->state.ended ? " (it has ended)" : ""));
  }
  std::vector<std::string> recipients;
  for (const registry::GroupMember& member : known->state.members) {
    if (NameKey(member.name) != NameKey(options_.name)) {
      recipients.push_back(member.name);
    }
  }
  if (recipients.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("nobody else is in #", group.label, " yet: /group add ",
                     group.label, " NAME"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::FailedPreconditionError("the peer is shutting down");
    }
  }
  ChatMessage message = NewGroupMessage(known->state, text);
  std::string id = message.id;
  QueueGroupMessage(std::move(message), std::move(recipients), to_partner,
                    /*echo=*/true);
  return id;
}

void Peer::QueueGroupMessage(ChatMessage message,
                             std::vector<std::string> recipients,
                             bool to_partner, bool echo) {
  const std::string group_id = message.group_id;
  store_->outbox().AddToGroup(
      std::move(message), std::move(recipients),
      [this, to_partner, echo,
       group_id](absl::StatusOr<std::vector<ChatMessage>> copies) {
        if (!copies.ok() || copies->empty()) {
          PeerEvent event = MakeEvent(EventKind::kSendResult);
          event.status = SendStatus::kFailed;
          event.text = "could not write it to your outbox";
          event.detail = copies.status().ToString();
          event.message.group_id = group_id;
          Emit(event);
          return;
        }
        if (echo) {
          // The outbox wrote the message to the history as sent; the
          // screen echoes it once, not once per member.
          PeerEvent event = MakeEvent(EventKind::kSendResult);
          event.to_partner = to_partner;
          event.status = SendStatus::kSent;
          event.message = copies->front();
          // To the group, not to its first member.
          event.group = GroupLabelIn(GroupLabelsOf(store_->groups()), group_id);
          event.message.to = absl::StrCat("#", event.group);
          reads_->OnSendState(event);
        }
        absl::MutexLock lock(&mu_);
        if (stopping_) return;  // They wait in the outbox.
        for (ChatMessage& copy : *copies) {
          QueueLocked({std::move(copy)}, to_partner);
        }
      });
}

}  // namespace chat::peer
