// How peer events look: lines for people, JSON lines for scripts.

#ifndef CHAT_PEER_FORMAT_H_
#define CHAT_PEER_FORMAT_H_

#include <string>

#include "absl/time/time.h"
#include "peer/events.h"

namespace chat::peer {

// The zone the user's times are shown in: $TZ when it names a zone this
// machine knows ("Europe/Rome", ":Europe/Rome", or a zoneinfo file's path),
// else the zone of /etc/localtime, else UTC; never an error line. An empty
// TZ counts as unset, so docker-compose can pass `TZ: ${TZ:-}` from a host
// that has none and the container's /etc/localtime still holds (glibc and
// Abseil would take an empty TZ for UTC).
absl::TimeZone UserTimeZone();
// The same from explicit inputs (for tests): `tz` is $TZ (null: unset),
// `localtime` the file that says the machine's zone.
absl::TimeZone UserTimeZone(const char* tz, const std::string& localtime);

struct TextStyle {
  bool color = false;
  std::string own_name;
  absl::TimeZone time_zone = UserTimeZone();
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
