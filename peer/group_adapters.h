// Small adapters between the peer's groups and the rest of it: the keys a
// group lists and checks, as the key book trusts them, and the label an
// event about a group is shown with.

#ifndef CHAT_PEER_GROUP_ADAPTERS_H_
#define CHAT_PEER_GROUP_ADAPTERS_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/identity.h"
#include "peer/events.h"
#include "peer/group_book.h"
#include "peer/group_gate.h"
#include "peer/group_manager.h"
#include "peer/key_book.h"

namespace chat::peer {

// Every known group's label (GroupLabels), by group id.
std::map<std::string, std::string> GroupLabelsOf(GroupBook& book);
// The label of `group_id` in `labels`; the id's first 8 characters for a
// group not among them.
std::string GroupLabelIn(const std::map<std::string, std::string>& labels,
                         const std::string& group_id);

// Gives an event about a group's message its label (PeerEvent::group) on
// its way to `next`. Thread-safe; `book` and `next` are not owned and
// outlive this.
class GroupLabelingSink final : public EventSink {
 public:
  GroupLabelingSink(GroupBook* book, EventSink* next)
      : book_(*book), next_(*next) {}
  void OnEvent(const PeerEvent& event) override;

 private:
  GroupBook& book_;
  EventSink& next_;
};

// The keys groups list (MemberKeys: when we change a group) and check
// (SenderKeys: when a member's message arrives): the ones the key book
// trusts, so a group never overrides a pin. Thread-safe; `keys` is not owned
// and outlives this.
class TrustedGroupKeys final : public MemberKeys, public SenderKeys {
 public:
  explicit TrustedGroupKeys(KeyBook* keys) : keys_(*keys) {}
  // KeyBook::KeyFor, asking the registry when needed; kFailedPrecondition
  // for a name with no key.
  absl::StatusOr<PublicKey> KeyToList(const std::string& name) override;
  // KeyBook::KeyFor without asking the registry (callers may be gRPC
  // callback threads); nullopt when no key is known now.
  std::optional<PublicKey> TrustedKey(const std::string& name) override;

 private:
  KeyBook& keys_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_ADAPTERS_H_
