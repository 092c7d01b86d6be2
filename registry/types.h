// The registry's vocabulary, shared by the server, its storage and every
// client: names and leases, watch events, mail. Plain structs, no protos.

#ifndef CHAT_REGISTRY_TYPES_H_
#define CHAT_REGISTRY_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/identity.h"

namespace chat::registry {

// One name and where to reach it, as readers see it.
struct Entry {
  std::string name;  // As first registered.
  std::string address;
  bool is_static = false;
  Millis ttl{0};         // What each renewal grants; 0 for static entries.
  Millis expires_in{0};  // Left on the lease when read; 0 for static entries.
  // The key the name is bound to; none for static entries (and leases
  // registered without a key).
  std::optional<PublicKey> public_key;
  // What it offers ("chat", "greet"; registry/names.h). Empty from a client
  // older than services: read as "chat" (OffersChat()).
  std::vector<std::string> services;
};

struct RegisterRequest {
  RegisterRequest() = default;
  // The usual four fields, and a key: `{name, address, ttl, lease_id}`.
  RegisterRequest(std::string name_in, std::string address_in,
                  Millis ttl_in = Millis(0), std::string lease_id_in = "",
                  std::optional<PublicKey> public_key_in = std::nullopt)
      : name(std::move(name_in)),
        address(std::move(address_in)),
        ttl(ttl_in),
        lease_id(std::move(lease_id_in)),
        public_key(public_key_in) {}

  std::string name;
  std::string address;
  Millis ttl{0};         // 0 asks for the default; clamped to the bounds.
  std::string lease_id;  // Empty for a new lease.
  // The registrant's key. A Store takes the signature as checked: the
  // service verifies it before it calls the store. Whether the proof is
  // fresh is the store's to check (proof_unix_ms).
  std::optional<PublicKey> public_key;
  // The proof as it travels (see proto RegisterRequest); filled in by
  // RegistryClient::Register from its Identity, checked by the service.
  // A chat-register-v1 proof carries a challenge; a chat-register-v2 one
  // carries proof_unix_ms instead.
  std::string challenge;
  std::string signature;
  // When the registrant signed a chat-register-v2 proof (Unix ms, its wall
  // clock); 0 without one (no key, or a v1 proof whose challenge the
  // service used up). With it, the Store takes the registration only when
  // the proof is fresh: within LeasePolicy::proof_skew of the store's wall
  // clock and later than the last proof it took for the name
  // (store_rules.h CheckProofFreshness), and records it in the same write.
  int64_t proof_unix_ms = 0;
  // The caller's host (chat::ClientHost), set by the service: what a
  // registration without a key counts against (NameQuotas::max_per_client).
  std::string client;
  // What the program offers (CanonicalServices(); the service checks them,
  // the store keeps them as given). Empty: a client older than services.
  std::vector<std::string> services;
};

// A name bound to a key (Registry.GetBinding): while a lease of the key
// holds it (`online`) and for the registry's reserve period after.
struct Binding {
  std::string name;  // As first registered.
  PublicKey key;
  bool online = false;
  // When the reservation ends; absl::InfiniteFuture() while online.
  absl::Time reserved_until = absl::InfiniteFuture();
};

struct Lease {
  std::string lease_id;  // 128 random bits, hex.
  Entry entry;
};

struct ListPage {
  std::vector<Entry> entries;
  std::string next_page_token;  // Empty on the last page.
  // Live entries in the whole registry for a List without a prefix; 0 when
  // not counted (a prefix, or an older registry). With a service filter,
  // the live entries that offer it.
  int64_t total_size = 0;
  // The service the page (and total_size) is filtered by; empty when not
  // filtered, also when a registry older than services ignored the filter.
  std::string service;
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
  // The store's revision of the change (kPut, kDelete after kSynced and
  // those replayed by a resumed watch); for kSynced, the revision the
  // watcher's view is at: resuming from it misses nothing. 0 for the
  // snapshot's kInitial entries. Only ever grows within one store (see
  // Store::Subscribe for what a revision means on each backend).
  int64_t revision = 0;
  // kSynced only: true when the watch resumed from a revision (what came
  // before kSynced were the changes after it), false after a snapshot.
  bool resumed = false;
};

// Names the items an Ack removes: those of the recipient with `id` and, when
// `digest` is set, that MailItem::digest (exactly one item); with an empty
// `digest`, every item with that id (an older peer's Ack).
struct MailRef {
  std::string id;
  std::string digest;
};

struct MailItem {
  // kReadReceipt: sealed read receipts (proto MailItem.READ_RECEIPT),
  // deposited like messages. kExpired: made by the mailbox when a message
  // expired unread (proto MailItem.EXPIRED), never deposited.
  enum class Kind { kMessage, kReceipt, kReadReceipt, kExpired };
  Kind kind = Kind::kMessage;
  std::string id;  // Made by the sender; with the digest, unique per
                   // recipient.
  std::string sender;
  std::string recipient;  // A valid name; compared case-insensitively.
  std::string payload;    // Opaque.
  // ContentDigest(payload), set by the mailbox: with `id`, what names this
  // item (two deposits under one id with other payloads are two items).
  std::string digest;
  // Who deposited it, as the server knows them (set by the service, never
  // by the client): what the per-sender limits count against.
  std::string origin;
  absl::Time deposited_at = absl::InfinitePast();  // Set by the mailbox.
  int64_t seq = 0;  // Arrival order in this mailbox, set by the mailbox.
};

// What the id of a kExpired item starts with, before the id of the message
// that expired: part of the wire contract between the mailbox and peers.
inline constexpr char kExpiredIdPrefix[] = "expired:";

struct MailboxStats {
  size_t count = 0;
  size_t bytes = 0;
  absl::Duration oldest_age = absl::ZeroDuration();
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_TYPES_H_
