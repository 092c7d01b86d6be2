// How peer events look: lines for people, JSON lines for scripts.

#ifndef CHAT_PEER_FORMAT_H_
#define CHAT_PEER_FORMAT_H_

#include <string>

#include "absl/time/time.h"
#include "peer/events.h"

namespace chat::peer {

struct TextStyle {
  bool color = false;
  std::string own_name;
  absl::TimeZone time_zone = absl::LocalTimeZone();
};

// The event as text for a terminal, ending in '\n'. Untrusted text (names,
// messages) is made printable first.
std::string FormatText(const PeerEvent& event, const TextStyle& style);

// The event as one JSON object and '\n'. "event" names the kind: ready,
// message, send, online, offline, summary, peers, partner, info, error,
// history.
std::string FormatJson(const PeerEvent& event);

}  // namespace chat::peer

#endif  // CHAT_PEER_FORMAT_H_
