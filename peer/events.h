// What a running peer tells its front end (terminal, JSON lines, tests).

#ifndef CHAT_PEER_EVENTS_H_
#define CHAT_PEER_EVENTS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "peer/message.h"
#include "registry/types.h"

namespace chat::peer {

enum class EventKind {
  kReady,       // Registered and serving: `name`, `address`, `fingerprint`.
  kMessage,     // A message arrived: `message`.
  kSendResult,  // A state of one of our messages: `message`, `status`,
                // and `text` (why it failed, was stored or waits).
  kOnline,      // `name`, followed, registered at `address`.
  kOffline,     // `name`, followed, left; `text` says why (unregistered,
                // expired).
  kSummary,     // Once, when the registry is first followed: `count` others
                // online (-1: not known), `peers` the followed ones online.
  kPeers,       // One page of a listing (/peers): `peers`, `page` (from 1),
                // `more` (another page follows), `count` (everyone online,
                // -1: not known).
  kPartner,     // Plain lines now go to `name`.
  kInfo,        // Something worth a line: `text`.
  kError,       // Something went wrong: `text`.
  kHistory,     // What was said with `name` (/history, /chat): `history`,
                // oldest first, and `count` (messages kept with `name` in
                // all); `preview`: the few lines /chat shows first.
};

// A message's states, in the order they come: kSent (in our durable
// outbox; again, with a reason, each time an attempt fails and it waits to
// be tried again), then kStored (waiting in the recipient's mailbox in the
// registry) and/or kDelivered (the recipient's peer has it), then kRead
// (the recipient's user saw it; only when both sides send read receipts).
// kFailed is final: it can never be sent (the outbox lets it go). kExpired
// is final too: it waited in the recipient's mailbox until the mailbox let
// it go unread (`text` says how long).
enum class SendStatus { kSent, kStored, kDelivered, kRead, kExpired, kFailed };

// One message of a conversation as the peer's history keeps it (PeerStore).
struct HistoryEntry {
  // id, from, to, text, sent_at; for theirs also received_at, late and
  // unverified. No sequence numbers.
  ChatMessage message;
  bool ours = false;  // We sent it; else we received (and showed) it.
  // Ours: the furthest state it reached (kSent ... kRead; kExpired and
  // kFailed end it); a group message's is the lowest of its copies'
  // (HistoryStore::RecordSendState).
  SendStatus status = SendStatus::kSent;
  // Ours to a group: how many members it went to (one copy each), and how
  // many of those copies were delivered, so the screen can say "delivered
  // to 2 of 3". Both 0 for any other message.
  int copies = 0;
  int delivered_copies = 0;
  // Ours to a group: the members whose read receipt came for their copy,
  // as the message named them, sorted case-insensitively. Empty for any
  // other message.
  std::vector<std::string> read_by;
};

struct PeerEvent {
  EventKind kind = EventKind::kInfo;
  std::string name;
  std::string address;
  std::string text;
  ChatMessage message;
  SendStatus status = SendStatus::kDelivered;
  std::vector<registry::Entry> peers;
  // For kReady: our key's Fingerprint().
  std::string fingerprint;
  // For kSendResult: the recipient is the current partner (echo without @).
  bool to_partner = false;
  // For kSendResult kDelivered: the recipient is bound to no key (a lab
  // peer), so only its word, or the registry's, says it has the message;
  // "delivered (unverified)". Without it, the recipient's key proved it.
  bool unverified = false;
  // For kMessage: shown before, perhaps, by a run of this peer that died
  // before it could note that it had shown it.
  bool repeated = false;
  // For kMessage from a sender bound to no key: the name of someone the
  // user knows (followed or pinned) that the sender's name looks like but
  // is not ("аlice", Cyrillic a, for "alice"); empty otherwise.
  std::string looks_like;
  // For kSummary and kPeers: how many are online (-1: not known).
  int64_t count = -1;
  // For kPeers: which page of the listing (from 1), and whether more follow.
  int page = 0;
  bool more = false;
  // The technical detail behind `text` (a gRPC status, say), for --verbose
  // and the JSON event's `detail`; never on the terminal's one line.
  std::string detail;
  // For kHistory: the messages, oldest first, and whether this is /chat's
  // preview (a few lines, no heading).
  std::vector<HistoryEntry> history;
  bool preview = false;
  // For an event about a group, or a message of one: the group's label as
  // the console shows it after '#' ("team", "team~3f2a"; GroupLabels).
  std::string group;
};

inline PeerEvent MakeEvent(EventKind kind, std::string name = "",
                           std::string address = "", std::string text = "") {
  PeerEvent event;
  event.kind = kind;
  event.name = std::move(name);
  event.address = std::move(address);
  event.text = std::move(text);
  return event;
}
inline PeerEvent InfoEvent(std::string text) {
  return MakeEvent(EventKind::kInfo, "", "", std::move(text));
}
inline PeerEvent ErrorEvent(std::string text) {
  return MakeEvent(EventKind::kError, "", "", std::move(text));
}

// Receives events. Thread-safe: called from several threads at once.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnEvent(const PeerEvent& event) = 0;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_EVENTS_H_
