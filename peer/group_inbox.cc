#include "peer/group_inbox.h"

#include <utility>

namespace chat::peer {

void GroupCheckedInbox::Receive(ChatMessage message, ReceivedCallback done) {
  if (!message.group_id.empty()) {
    absl::StatusOr<GroupVerdict> verdict = gate_.Admit(message);
    if (!verdict.ok()) {
      done(verdict.status());
      return;
    }
    if (!verdict->advanced.empty()) changes_.OnGroupAdvanced(verdict->advanced);
  }
  inbox_.Receive(std::move(message), std::move(done));
}

}  // namespace chat::peer
