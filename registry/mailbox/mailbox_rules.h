// The rules of the Mailbox contract that do not depend on how mail is
// stored: which items may be deposited, what counts against the limits and
// which limit a refusal names, which receipts an Ack keeps and what an
// expiry tells the sender. Written once, shared by the SQLite mailbox and
// the etcd one; the contract suite (tests/registry/mailbox/mailbox_test.cc)
// judges them through both.

#ifndef CHAT_REGISTRY_MAILBOX_MAILBOX_RULES_H_
#define CHAT_REGISTRY_MAILBOX_MAILBOX_RULES_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "registry/quotas.h"
#include "registry/types.h"

namespace chat::registry {

// What each item costs against MailboxLimits::max_total_bytes beside its
// payload: its row (or keys), and index entries, so that a flood of empty
// items is bounded as well.
inline constexpr size_t kMailItemOverheadBytes = 256;

// What one item of `payload_bytes` costs against max_total_bytes.
size_t ChargedBytes(size_t payload_bytes);

// Items (messages and receipts) waiting for one recipient, or from one
// sender: count and payload bytes.
struct MailUsage {
  size_t count = 0;
  size_t bytes = 0;
};

// OK when `item` may be handed to Deposit(): a valid recipient, an id and a
// sender of 1-64 bytes, a payload within max_payload_bytes, a kMessage or a
// kReadReceipt of at most kMaxReadReceiptPayloadBytes. Otherwise
// kInvalidArgument saying what is wrong.
absl::Status ValidateDeposit(const MailItem& item, const MailboxLimits& limits);

// OK when one more item `item` fits beside what waits: `recipient` (its
// recipient's usage), `sender` (its origin's; not looked at when
// item.origin is empty) and `total_bytes` (ChargedBytes of every item).
// Otherwise kResourceExhausted (LimitError) naming the first limit it would
// go past and its option.
absl::Status CheckMailLimits(const MailItem& item, const MailboxLimits& limits,
                             const MailUsage& recipient,
                             const MailUsage& sender, size_t total_bytes);

// Whether an Ack by `acker_key` (NameKey of the acknowledging recipient)
// keeps `receipt`, made for a kMessage it removed from `message_sender`:
// a kReceipt with the message's id (the caller matched it), from the acker,
// to the message's sender (a valid name: a lab peer's free-form name has
// no mailbox), payload at most kMaxReceiptPayloadBytes. Nobody can make a
// receipt appear for a message it did not receive, or in a third mailbox.
bool AcceptsReceipt(const std::string& acker_key, const MailItem& receipt,
                    const std::string& message_sender);

// The kExpired item ExpireOld() deposits for `expired`, or nullopt when it
// makes none: only a kMessage whose sender is a valid name is reported
// (receipts answer nothing, so expiry never feeds itself), and only when
// the receipt's id (kExpiredIdPrefix + id) is one a peer could make.
std::optional<MailItem> ExpiryReceipt(const MailItem& expired,
                                      absl::Duration max_age);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_MAILBOX_MAILBOX_RULES_H_
