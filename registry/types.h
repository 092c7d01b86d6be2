// The registry's vocabulary, shared by the server, its storage and every
// client: names and leases, watch events, mail. Plain structs, no protos.

#ifndef CHAT_REGISTRY_TYPES_H_
#define CHAT_REGISTRY_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"

namespace chat::registry {

// One name and where to reach it, as readers see it.
struct Entry {
  std::string name;  // As first registered.
  std::string address;
  bool is_static = false;
  Millis ttl{0};         // What each renewal grants; 0 for static entries.
  Millis expires_in{0};  // Left on the lease when read; 0 for static entries.
};

struct RegisterRequest {
  std::string name;
  std::string address;
  Millis ttl{0};         // 0 asks for the default; clamped to the bounds.
  std::string lease_id;  // Empty for a new lease.
};

struct Lease {
  std::string lease_id;  // 128 random bits, hex.
  Entry entry;
};

struct ListPage {
  std::vector<Entry> entries;
  std::string next_page_token;  // Empty on the last page.
};

enum class EventType { kPut, kDelete, kSynced };
enum class EventReason {
  kNone,  // For kSynced.
  kInitial,
  kRegistered,
  kAddressChanged,
  kUnregistered,
  kExpired
};

struct WatchEvent {
  EventType type = EventType::kPut;
  EventReason reason = EventReason::kNone;
  Entry entry;  // For kDelete, the entry as it was.
};

struct MailItem {
  enum class Kind { kMessage, kReceipt };
  Kind kind = Kind::kMessage;
  std::string id;  // Unique per recipient.
  std::string sender;
  std::string recipient;  // A valid name; compared case-insensitively.
  std::string payload;    // Opaque.
  absl::Time deposited_at = absl::InfinitePast();  // Set by the mailbox.
  int64_t seq = 0;  // Arrival order in this mailbox, set by the mailbox.
};

struct MailboxStats {
  size_t count = 0;
  size_t bytes = 0;
  absl::Duration oldest_age = absl::ZeroDuration();
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_TYPES_H_
