// Unique, time-sortable identifiers for messages.

#ifndef CHAT_COMMON_IDS_H_
#define CHAT_COMMON_IDS_H_

#include <string>

#include "absl/time/time.h"

namespace chat {

// A UUIDv7 (RFC 9562) for time `now`: 48 bits of Unix milliseconds, then 74
// random bits, as 36 lowercase characters. Ids made later sort later (across
// milliseconds); ids never repeat in practice.
std::string NewUuidV7(absl::Time now);

// Whether `id` looks like an id a peer may send: 1-64 printable ASCII bytes.
bool IsPlausibleMessageId(const std::string& id);

}  // namespace chat

#endif  // CHAT_COMMON_IDS_H_
