// The limits on the registry's long-lived streams (Watch, Listen): how much
// one request may ask for, how much may wait for one stream, and how many
// streams one client may hold. Every one is an option of chat-registry,
// listed in docs/limits.md ("Watch and Listen streams").

#ifndef CHAT_REGISTRY_STREAM_LIMITS_H_
#define CHAT_REGISTRY_STREAM_LIMITS_H_

#include <cstddef>

namespace chat::registry {

struct StreamLimits {
  // Names one Watch may ask for (WatchRequest.names); more is
  // RESOURCE_EXHAUSTED (--max-watch-names).
  size_t max_watch_names = 1000;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STREAM_LIMITS_H_
