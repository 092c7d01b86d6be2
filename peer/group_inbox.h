// The inbox as the peer's receiving paths see it: a group message is judged
// by the GroupGate before the store's inbox keeps it, so the direct path
// (ChatService) and the mailbox (MailListener) apply the same rules.

#ifndef CHAT_PEER_GROUP_INBOX_H_
#define CHAT_PEER_GROUP_INBOX_H_

#include <vector>

#include "peer/group_gate.h"
#include "peer/group_rules.h"
#include "peer/inbox.h"

namespace chat::peer {

// Told what the states fetched to judge a message changed (a member came,
// we were removed), before the message is kept; from the receiving thread.
class GroupChangeListener {
 public:
  virtual ~GroupChangeListener() = default;
  virtual void OnGroupAdvanced(const std::vector<GroupAdvance>& advanced) = 0;
};

// Receive() of a group message asks the gate first: refused, `done` gets
// the gate's error (kUnavailable: try later; any other code: refused for
// good, never kept or shown); admitted, the store's inbox keeps it. A direct
// message goes straight to the store's inbox, as do the other calls.
// Thread-safe; `inbox`, `gate` and `changes` are not owned and outlive this.
class GroupCheckedInbox final : public Inbox {
 public:
  GroupCheckedInbox(Inbox* inbox, GroupGate* gate, GroupChangeListener* changes)
      : inbox_(*inbox), gate_(*gate), changes_(*changes) {}

  void Receive(ChatMessage message, ReceivedCallback done) override;
  void MarkShown(const std::vector<ChatMessage>& messages,
                 const std::vector<ReadNote>& unread) override {
    inbox_.MarkShown(messages, unread);
  }
  void ReleaseOverdue(absl::Duration limit, ReceivedCallback done) override {
    inbox_.ReleaseOverdue(limit, std::move(done));
  }
  absl::StatusOr<std::vector<ChatMessage>> Unshown() override {
    return inbox_.Unshown();
  }

 private:
  Inbox& inbox_;
  GroupGate& gate_;
  GroupChangeListener& changes_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_INBOX_H_
