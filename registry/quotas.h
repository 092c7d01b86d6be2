// How much of the registry one client may take: names per key, per client
// host and static entries (enforced by the store's rules), and mail per
// recipient, per sender and in all (enforced by the mailbox). Every field is
// an option of chat-registry, listed in docs/limits.md.

#ifndef CHAT_REGISTRY_QUOTAS_H_
#define CHAT_REGISTRY_QUOTAS_H_

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace chat::registry {

// Names one owner may hold. A name counts against its owner from the
// registration that creates it until it is unregistered, released or
// removed by the expiry loop (an expired lease still counts until then).
struct NameQuotas {
  // Live names registered with one key (--max-names-per-key).
  size_t max_per_key = 32;
  // Live names registered without a key from one client host
  // (chat::ClientHost; --max-names-per-client).
  size_t max_per_client = 1000;
  // Static entries in all (--max-static-names): PutStatic is admin-only, but
  // a leaked token must not fill the registry either.
  size_t max_static = 10000;
};

// What may wait in the mailbox. Receipts count like messages everywhere.
struct MailboxLimits {
  // Per recipient.
  size_t max_items = 10000;                      // --mailbox-max-messages
  size_t max_bytes = 16 * 1024 * 1024;           // --mailbox-max-mb
  size_t max_payload_bytes = 16 * 1024;          // One item (fixed).
  absl::Duration max_age = absl::Hours(24 * 7);  // --mailbox-max-age-days
  // Per sender (MailItem::origin: who deposited it, as the server knows
  // them), across every recipient.
  size_t max_items_per_sender = 20000;  // --mailbox-max-sender-messages
  size_t max_bytes_per_sender = 64 * 1024 * 1024;  // --mailbox-max-sender-mb
  // Every item of every mailbox: kept well inside the disk, so a full
  // mailbox never takes the room the names need (--mailbox-max-total-mb).
  size_t max_total_bytes = size_t{1024} * 1024 * 1024;
};

// Every quota of the registry, as chat-registry's options set them.
struct Quotas {
  NameQuotas names;
  MailboxLimits mailbox;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_QUOTAS_H_
