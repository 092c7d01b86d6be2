#include "registry/mailbox/mailbox_rules.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "common/status.h"
#include "registry/mailbox/mailbox.h"
#include "registry/names.h"

namespace chat::registry {

size_t ChargedBytes(size_t payload_bytes) {
  return payload_bytes + kMailItemOverheadBytes;
}

absl::Status ValidateDeposit(const MailItem& item,
                             const MailboxLimits& limits) {
  CHAT_RETURN_IF_ERROR(ValidateName(item.recipient));
  if (item.id.empty() || item.id.size() > 64) {
    return absl::InvalidArgumentError("mail id must be 1-64 bytes");
  }
  if (item.sender.empty() || item.sender.size() > 64) {
    return absl::InvalidArgumentError("mail sender must be 1-64 bytes");
  }
  if (item.payload.size() > limits.max_payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("mail payload is ", item.payload.size(),
                     " bytes; the limit is ", limits.max_payload_bytes));
  }
  if (item.kind != MailItem::Kind::kMessage &&
      item.kind != MailItem::Kind::kReadReceipt) {
    return absl::InvalidArgumentError(
        "only messages and read receipts are deposited");
  }
  if (item.kind == MailItem::Kind::kReadReceipt &&
      item.payload.size() > kMaxReadReceiptPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("read receipt payload is ", item.payload.size(),
                     " bytes; the limit is ", kMaxReadReceiptPayloadBytes));
  }
  return absl::OkStatus();
}

absl::Status CheckMailLimits(const MailItem& item, const MailboxLimits& limits,
                             const MailUsage& recipient,
                             const MailUsage& sender, size_t total_bytes) {
  const size_t bytes = item.payload.size();
  if (recipient.count >= limits.max_items) {
    return LimitError(
        absl::StrCat("the mailbox of ", item.recipient, " is full (",
                     recipient.count, " messages waiting)"),
        static_cast<int64_t>(limits.max_items), "mailbox-max-messages");
  }
  if (recipient.bytes + bytes > limits.max_bytes) {
    return LimitError(
        absl::StrCat("the mailbox of ", item.recipient, " is full (",
                     recipient.bytes, " bytes waiting)"),
        static_cast<int64_t>(limits.max_bytes), "mailbox-max-mb");
  }
  if (!item.origin.empty()) {
    if (sender.count >= limits.max_items_per_sender) {
      return LimitError(absl::StrCat("too much mail waiting from ", item.origin,
                                     " (", sender.count, " items)"),
                        static_cast<int64_t>(limits.max_items_per_sender),
                        "mailbox-max-sender-messages");
    }
    if (sender.bytes + bytes > limits.max_bytes_per_sender) {
      return LimitError(absl::StrCat("too much mail waiting from ", item.origin,
                                     " (", sender.bytes, " bytes)"),
                        static_cast<int64_t>(limits.max_bytes_per_sender),
                        "mailbox-max-sender-mb");
    }
  }
  if (total_bytes + ChargedBytes(bytes) > limits.max_total_bytes) {
    return LimitError(
        absl::StrCat("the mailbox is full (", total_bytes, " bytes in all)"),
        static_cast<int64_t>(limits.max_total_bytes), "mailbox-max-total-mb");
  }
  return absl::OkStatus();
}

bool AcceptsReceipt(const std::string& acker_key, const MailItem& receipt,
                    const std::string& message_sender) {
  return receipt.kind == MailItem::Kind::kReceipt &&
         NameKey(receipt.sender) == acker_key &&
         ValidateName(receipt.recipient).ok() &&
         NameKey(receipt.recipient) == NameKey(message_sender) &&
         receipt.payload.size() <= kMaxReceiptPayloadBytes;
}

std::optional<MailItem> ExpiryReceipt(const MailItem& expired,
                                      absl::Duration max_age) {
  if (expired.kind != MailItem::Kind::kMessage) return std::nullopt;
  if (!ValidateName(expired.sender).ok()) return std::nullopt;
  MailItem receipt;
  receipt.kind = MailItem::Kind::kExpired;
  receipt.id = absl::StrCat(kExpiredIdPrefix, expired.id);
  if (receipt.id.size() > 64) return std::nullopt;
  receipt.sender = expired.recipient;
  receipt.recipient = expired.sender;
  receipt.payload = absl::StrCat(absl::ToInt64Milliseconds(max_age));
  return receipt;
}

}  // namespace chat::registry
