// Store-and-forward storage: items wait per recipient until the recipient
// acknowledges them. A second interface beside Store, so an etcd-backed
// registry can bring its own.

#ifndef CHAT_REGISTRY_MAILBOX_MAILBOX_H_
#define CHAT_REGISTRY_MAILBOX_MAILBOX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registry/quotas.h"
#include "registry/types.h"

namespace chat::registry {

// A receipt's payload (sealed by the peer that made it) is at most this.
inline constexpr size_t kMaxReceiptPayloadBytes = 1024;
// A read receipt's payload (sealed by the reader, up to 64 ids) is at most
// this.
inline constexpr size_t kMaxReadReceiptPayloadBytes = 8192;

// MailboxLimits (registry/quotas.h): what may wait, per recipient, per
// sender and in all.

// Destroying it stops the callbacks; after the destructor returns none runs.
class ArrivalSubscription {
 public:
  virtual ~ArrivalSubscription() = default;
};

// Contract (tests/registry/mailbox/mailbox_test.cc runs it against every
// implementation):
// - Deposit() is durable before it returns (it survives kill -9 and power
//   loss) and idempotent per (recipient, id, payload): an item is named by
//   its id and the digest of its payload (MailItem::digest), so a deposit
//   under an id already there with another payload is kept beside it.
// - Items come back in arrival order and stay until acknowledged or older
//   than max_age.
// - Errors: kInvalidArgument, kResourceExhausted (limits), kUnavailable
//   (storage). A failed call changes nothing.
// Thread-safe.
class Mailbox {
 public:
  virtual ~Mailbox() = default;

  // Stores `item` (kMessage, or kReadReceipt with a payload of at most
  // kMaxReadReceiptPayloadBytes) for its recipient; item.digest is ignored
  // (the mailbox sets it). A repeated (recipient, id, payload) is OK and
  // stores nothing; another payload under the same id is another item.
  // kResourceExhausted, saying which limit, when the recipient already holds
  // max_items messages or max_bytes; kInvalidArgument for another kind.
  virtual absl::Status Deposit(const MailItem& item) = 0;

  // Up to `max` items for `recipient` with seq > `after_seq`, oldest first,
  // each with its digest.
  virtual absl::StatusOr<std::vector<MailItem>> Peek(
      const std::string& recipient, int64_t after_seq, size_t max) = 0;

  // Removes the items of `recipient` that `items` name (MailRef: by id and
  // digest; by id alone when the digest is empty; unknown ones are ignored)
  // and, in the same transaction, deposits those of `receipts`
  // (made by the acknowledging peer; the mailbox makes none) that answer a
  // kMessage this call removed: kind kReceipt, id the message's, sender
  // `recipient` and recipient the message's sender (both compared
  // case-insensitively), payload at most kMaxReceiptPayloadBytes. Other
  // receipts are dropped, and so is a receipt its recipient's mailbox has
  // no room for (receipts count against its limits like messages); the Ack
  // succeeds all the same. Returns how many items were removed.
  virtual absl::StatusOr<size_t> Ack(const std::string& recipient,
                                     const std::vector<MailRef>& items,
                                     const std::vector<MailItem>& receipts) = 0;

  // Ack() by ids alone: every item of `recipient` with one of `ids`.
  absl::StatusOr<size_t> AckIds(const std::string& recipient,
                                const std::vector<std::string>& ids,
                                const std::vector<MailItem>& receipts) {
    std::vector<MailRef> items;
    items.reserve(ids.size());
    for (const std::string& id : ids) items.push_back({id, ""});
    return Ack(recipient, items, receipts);
  }

  // What waits for `recipient`: count, payload bytes, age of the oldest.
  virtual absl::StatusOr<MailboxStats> Stat(const std::string& recipient) = 0;

  // Calls `on_arrival` after items for `recipient` were stored. Called from
  // the mailbox's thread; must not call back into the mailbox.
  virtual std::unique_ptr<ArrivalSubscription> OnArrival(
      const std::string& recipient, std::function<void()> on_arrival) = 0;

  // Removes items older than max_age; returns how many. In the same
  // transaction, for each kMessage removed whose sender is a valid name,
  // deposits one kExpired item for that sender: id kExpiredIdPrefix + the
  // message's id, sender the message's recipient, recipient its sender,
  // payload max_age in milliseconds (decimal). Receipts of any kind that
  // expire make none. An expiry receipt counts against its recipient's
  // limits and the total like any item (it has no origin); one without room
  // is dropped.
  virtual absl::StatusOr<size_t> ExpireOld() = 0;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_MAILBOX_MAILBOX_H_
