// What a receiving peer decides about a group message before it keeps it:
// whether its sender was a member of the group as the message says it saw
// it, whether that state is the one this peer verified, and whether this
// peer is still in the group.

#ifndef CHAT_PEER_GROUP_GATE_H_
#define CHAT_PEER_GROUP_GATE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "peer/events.h"
#include "peer/group_book.h"
#include "peer/group_directory.h"
#include "peer/group_rules.h"
#include "peer/message.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

// The key the peer trusts for a name: the one that opened the name's sealed
// messages (the peer answers from its KeyBook's pins). Thread-safe.
class SenderKeys {
 public:
  virtual ~SenderKeys() = default;
  // nullopt when no key is trusted for `name` (never met, or blocked until
  // the user says /trust).
  virtual std::optional<PublicKey> TrustedKey(const std::string& name) = 0;
};

// What admitting a group message found out on the way.
struct GroupVerdict {
  // What the states fetched for this message did to what the peer knows,
  // for the screen ("dave joined team"). States another message's fetch
  // brought first are reported with that message, not again here.
  std::vector<GroupAdvance> advanced;
  // The state the message was judged by (empty for a direct message): the
  // one its sender saw, or the latest when that one is older than anything
  // this peer verified.
  registry::GroupState judged_by;
  // For an admitted membership-change notice (ChatMessage::group_change):
  // what the version it names changed from the one before, as this peer
  // verified both, whichever message's fetch brought them; nullopt for
  // other messages, or when the state before is not held.
  std::optional<registry::GroupChange> announced;
};

// Judges arriving group messages by the peer's verified group states,
// fetching from the registry the states a message names that the peer does
// not know yet.
//
// A message is judged, in this order:
//  1. A direct message (no group_id): admitted, nothing to judge.
//  2. A group not known, or a version newer than the latest known: the
//     versions after the latest known are fetched from `directory` (a few
//     pages at most, up to the message's version) and handed to the book.
//     A group the peer does not know is kept only when some fetched state
//     lists `self`, so strangers' groups cannot fill the book. Still short
//     of the message's version: kUnavailable.
//  3. The state S of the message's version must have the message's hash;
//     two states with one version raise a fork alarm (a kError event, once
//     per group and version) when the sender is a member of S as held
//     here (a stranger's mismatch is refused as a stranger's, no alarm). When S
//     is older than anything verified here, the latest state judges the message
//     and no hash is compared.
//  4. The sender must be listed in S with the key SenderKeys trusts for it,
//     and S not ended. A membership-change notice must instead come from
//     the owner of the state before S (of S for version 1): the one who
//     signed the change.
//  5. When a later state known no longer lists the sender with that key (or
//     has ended), a message dated after that state was signed is refused; a
//     message dated before it is kept.
//  6. `self` must be listed in the latest known state, and it not ended;
//     but a notice from the owner who signed S is admitted when `self` was
//     in the state it changed: it tells us we were removed or the group
//     ended.
//
// Refusals are told to `events` (kInfo; kError for a key that disagrees
// with the trusted one) at most once a minute per sender, on the injected
// monotonic clock; never with the message's text.
//
// Thread-safe: gRPC threads and the mail thread admit at once. The
// registry, the book and `events` are called without the gate's lock held.
class GroupGate {
 public:
  struct Options {
    registry::GroupMember self;  // Our name and key.
    // Pages of states fetched for one message at most.
    int max_fetch_pages = 4;
  };

  // `book`, `directory`, `keys`, `events` and `clock` are not owned and
  // must outlive this.
  GroupGate(GroupBook* book, GroupDirectory* directory, SenderKeys* keys,
            EventSink* events, const Clock& clock, Options options);

  GroupGate(const GroupGate&) = delete;
  GroupGate& operator=(const GroupGate&) = delete;

  // OK: keep and show it. kUnavailable: the state it names cannot be
  // fetched now (the registry away, or it hands out no such version yet);
  // nothing is decided, try again later. Refused for good, never shown:
  // kPermissionDenied (the sender is not a member, was removed before it
  // sent it, its key is not the one trusted; a group we are not in, or
  // that nobody holds), kFailedPrecondition (it names a state that forks
  // ours), kInvalidArgument (malformed group fields), kResourceExhausted
  // (a group this peer has no room to learn).
  absl::StatusOr<GroupVerdict> Admit(const ChatMessage& message)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether Admit(message) would ask the registry first (a group message
  // of a group not known, or of a version newer than the latest known): a
  // caller that must not wait on the registry (a gRPC callback thread)
  // hands such a message to a thread that may.
  bool NeedsFetch(const ChatMessage& message);

 private:
  // Brings the book up to `message`'s version when it can (rule 2); the
  // advances go to `advanced`. kUnavailable, or a refusal's status.
  absl::Status CatchUp(const ChatMessage& message,
                       const std::optional<KnownGroup>& known,
                       std::vector<GroupAdvance>* advanced)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Hands `fetched` to the book; `known_group`: the book knows the group.
  absl::Status ApplyFetched(const ChatMessage& message, bool known_group,
                            std::vector<registry::GroupState>* fetched,
                            std::vector<GroupAdvance>* advanced)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Tells of a fork of `group_id` at `version`, once per both.
  void RaiseForkAlarm(const std::string& group_id, const std::string& label,
                      int64_t version, const std::string& detail)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Tells of the refusal (rate limited) and returns `status`.
  absl::Status Refuse(const ChatMessage& message, absl::Status status,
                      EventKind kind = EventKind::kInfo)
      ABSL_LOCKS_EXCLUDED(mu_);

  GroupBook& book_;
  GroupDirectory& directory_;
  SenderKeys& keys_;
  EventSink& events_;
  const Clock& clock_;
  const Options options_;

  absl::Mutex mu_;
  // Sender's NameKey -> when its last refusal was told (bounded).
  absl::flat_hash_map<std::string, MonoTime> refusal_told_ ABSL_GUARDED_BY(mu_);
  // "group_id/version" of each fork alarm raised (bounded).
  absl::flat_hash_set<std::string> fork_alarms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_GATE_H_
