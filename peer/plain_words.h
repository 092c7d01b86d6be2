// Plain words for the user: when a call to the registry fails, one plain
// sentence, never gRPC's text ("failed to connect to all addresses; last
// error: UNKNOWN: ipv4:..."), which goes to the event's detail (--verbose,
// JSON) as Transport's statuses do (peer/transport.h); counts as people
// read them.

#ifndef CHAT_PEER_PLAIN_WORDS_H_
#define CHAT_PEER_PLAIN_WORDS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "peer/events.h"

namespace chat::peer {

// One sentence saying why `doing` (what the user asked, as it would follow
// "cannot": "list who is online") failed with `status` from the registry:
//  - unreachable (kUnavailable, kDeadlineExceeded, kCancelled): "the
//    registry is unreachable, so you cannot list who is online now; try
//    again in a moment";
//  - kUnimplemented: the registry is too old for it;
//  - kUnknown, kInternal, kDataLoss, kUnauthenticated: it failed on the
//    registry's side (or in TLS), see --verbose;
//  - anything else is the registry's own refusal, in its own words ("cannot
//    list who is online: too many ... (limit 16, --max-...)").
std::string RegistryFailureText(const absl::Status& status,
                                const std::string& doing);

// The same as a kError event with `status` as its detail.
PeerEvent RegistryErrorEvent(const absl::Status& status,
                             const std::string& doing);

// 12345 -> "12,345"; -12345 -> "-12,345".
std::string WithCommas(int64_t n);

}  // namespace chat::peer

#endif  // CHAT_PEER_PLAIN_WORDS_H_
