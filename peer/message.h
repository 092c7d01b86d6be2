// A chat message as the peer handles it, and the rules for its text.

#ifndef CHAT_PEER_MESSAGE_H_
#define CHAT_PEER_MESSAGE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/chat.pb.h"

namespace chat::peer {

inline constexpr size_t kMaxMessageBytes = 4096;

struct ChatMessage {
  std::string id;    // UUIDv7 from the sender, or given on arrival.
  std::string from;  // Sender's name.
  std::string to;    // Intended recipient; empty from a lab peer.
  std::string text;
  absl::Time sent_at = absl::InfinitePast();  // Unknown for a lab peer.
  std::string lab_time;  // The lab's "time" field, as the sender wrote it.
  absl::Time received_at = absl::InfinitePast();  // Set by the receiver.
  // Place in its conversation (see chat.proto); 0 when not sequenced.
  int64_t sequence = 0;
  std::string sequence_epoch;
  int64_t sequence_floor = 0;
  // The group it belongs to (see chat.proto): its id, and the version and
  // GroupStateHash of the group's state its sender saw. Empty group_id: a
  // direct message. A group message is always sealed, these fields inside.
  std::string group_id;
  int64_t group_version = 0;
  std::string group_state_hash;
  // A membership change (chat.proto group_change): the group's owner says
  // version group_version exists; its text is not shown.
  bool group_change = false;
  // A member asks the owner to take it out (chat.proto group_leave); its
  // text is not shown.
  bool group_leave = false;
  // Not on the wire: it waited for us in our mailbox.
  bool late = false;
  // Not on the wire: it came plain, from a name bound to no key (a lab
  // peer), so nothing proves who wrote it. Shown marked "(unverified)".
  bool unverified = false;
  // Not on the wire: the host it came from straight (ClientHost(), the key
  // of per-client limits); empty when not known (from the mailbox).
  std::string source_host;
};

// OK for 1..4096 bytes of valid UTF-8; kInvalidArgument saying what is wrong.
absl::Status ValidateMessageText(const std::string& text);

// `text` made safe to print on a terminal, so it shows what was sent and
// only that: control characters (which could move the cursor or recolour the
// screen) become U+FFFD; invisible and bidi characters are written out
// ("<U+202E>"). See VisibleText() in common/unicode.h.
std::string PrintableText(const std::string& text);
// A sender's name made safe to print: PrintableText(), and white space at
// either end written out ("alice<U+0020>"). See VisibleName().
std::string PrintableName(const std::string& name);

// True when `proto` carries any of the group fields (group_id,
// group_version, group_state_hash, group_change, group_leave): it claims to
// be a group message.
bool HasGroupFields(const ::Message& proto);

// OK when `proto` carries no group field, or all three well-formed: a group
// id of 32 lowercase hex characters, a version of 1 or more and a state hash
// of 32 bytes (the sizes of registry/groups/group_state.h).
// kInvalidArgument naming the field otherwise.
absl::Status ValidateGroupFields(const ::Message& proto);

// A group's control message (a change notice, a request to leave): told to
// the user as what it does, never as a line of the conversation, and kept
// out of the history.
inline bool IsGroupControl(const ChatMessage& message) {
  return message.group_change || message.group_leave;
}

::Message ToProto(const ChatMessage& message);
// Fields that are only usable whole (the sequence, the group) are taken
// only when well-formed, else left empty; callers that must not mistake a
// malformed group message for a direct one check ValidateGroupFields first.
ChatMessage FromProto(const ::Message& proto);

}  // namespace chat::peer

#endif  // CHAT_PEER_MESSAGE_H_
