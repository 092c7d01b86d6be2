#include "peer/inbox_rules.h"

#include <algorithm>

#include "registry/names.h"

namespace chat::peer {

std::string ConversationWith(const std::string& name) {
  return registry::NameKey(name);
}

std::string GroupConversation(const std::string& group_id) {
  return "#" + group_id;
}

std::string ConversationNamed(const std::string& name_or_group) {
  if (!name_or_group.empty() && name_or_group.front() == '#') {
    return name_or_group;
  }
  return ConversationWith(name_or_group);
}

std::string ConversationOfReceived(const ChatMessage& message) {
  if (!message.group_id.empty()) return GroupConversation(message.group_id);
  return ConversationWith(message.from);
}

std::string ConversationOfSent(const ChatMessage& message) {
  if (!message.group_id.empty()) return GroupConversation(message.group_id);
  return ConversationWith(message.to);
}

Numbered NextOutbound(const std::optional<OutboundCounter>& counter,
                      const std::string& fresh_epoch) {
  if (!counter.has_value()) return Numbered{fresh_epoch, 1};
  return Numbered{counter->epoch, counter->next_sequence};
}

int64_t SequenceFloor(const std::set<int64_t>& outstanding, int64_t fallback) {
  if (outstanding.empty()) return fallback;
  return std::min(*outstanding.begin(), fallback);
}

bool IsSequenced(const ChatMessage& message) { return message.sequence != 0; }

Admission Admit(const ChatMessage& message,
                const std::optional<InboundCounter>& inbound) {
  Admission admission;
  int64_t next = message.sequence_floor;
  if (inbound.has_value()) {
    if (inbound->epoch == message.sequence_epoch) {
      next = inbound->next_sequence;
    } else {
      admission.abandoned_epoch = inbound->epoch;
    }
  }
  if (message.sequence_floor > next) {
    admission.release_below = message.sequence_floor;
    next = message.sequence_floor;
  }
  // The one awaited (most messages), or late; further on, it waits.
  admission.hold = message.sequence > next;
  if (message.sequence == next) ++next;
  admission.next = next;
  return admission;
}

bool ReleasesOthersFirst(const Admission& admission) {
  return admission.abandoned_epoch.has_value() || admission.release_below > 0;
}

int64_t ReleaseInOrder(int64_t next,
                       absl::FunctionRef<bool(int64_t)> release_if_held) {
  while (release_if_held(next)) ++next;
  return next;
}

int64_t OverdueBeforeMs(absl::Time now, absl::Duration limit) {
  return absl::ToUnixMillis(now - limit);
}

int64_t ShownThrough(int64_t through, const std::set<int64_t>& unshown,
                     int64_t released) {
  const int64_t reachable = unshown.empty() ? released : *unshown.begin() - 1;
  return std::max(through, reachable);
}

bool UnreadOnArrival(const ChatMessage& message) { return !message.unverified; }

std::optional<int64_t> TrustedSentMs(const ChatMessage& message) {
  if (message.unverified || message.sent_at == absl::InfinitePast()) {
    return std::nullopt;
  }
  return absl::ToUnixMillis(message.sent_at);
}

bool IsReplay(const ChatMessage& message, const Watermarks& watermarks) {
  const std::optional<int64_t> sent_ms = TrustedSentMs(message);
  if (!sent_ms.has_value()) return false;  // Nothing to protect.
  for (const std::optional<int64_t>& mark :
       {watermarks.sender_ms, watermarks.everyone_ms}) {
    if (mark.has_value() && *mark >= *sent_ms) return true;
  }
  return false;
}

bool IsDuplicate(bool seen_from_sender, const ChatMessage& message,
                 const Watermarks& watermarks) {
  return seen_from_sender || IsReplay(message, watermarks);
}

int64_t WatermarksToFold(int64_t senders, int64_t kept) {
  return std::max<int64_t>(0, senders - kept);
}

}  // namespace chat::peer
