#include "peer/mail_listener.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "peer/plain_words.h"
#include "registry/names.h"

namespace chat::peer {
MailListener::MailListener(registry::RegistryClient* registry, Inbox* inbox,
                           Outbox* outbox, EventSink* events,
                           const Clock& clock, Options options)
    : registry_(registry),
      inbox_(inbox),
      outbox_(outbox),
      events_(events),
      clock_(clock),
      options_(std::move(options)) {
  Stream::Callbacks callbacks;
  callbacks.open = [this] { return Open(); };
  callbacks.on_item = [this](const registry::MailItem& item) {
    Handle(item);
    return true;
  };
  // The lease keeper reports registry trouble.
  callbacks.on_end = [](const absl::Status&) {};
  stream_.emplace(clock, std::move(callbacks));
}

MailListener::~MailListener() { Stop(); }

std::unique_ptr<registry::MailStream> MailListener::Open() {
  // The keeper may be registering afresh, with a new lease.
  lease_id_ = options_.keeper->lease().lease_id;
  if (lease_id_.empty()) return nullptr;
  return registry_->Listen(options_.own_name, lease_id_);
}

void MailListener::Handle(const registry::MailItem& item) {
  std::vector<registry::MailItem> receipts;
  bool ack = false;
  switch (item.kind) {
    case registry::MailItem::Kind::kReceipt:
      ack = HandleReceipt(item);
      break;
    case registry::MailItem::Kind::kReadReceipt:
      ack = HandleReadReceipts(item);
      break;
    case registry::MailItem::Kind::kExpired:
      ack = HandleExpired(item);
      break;
    case registry::MailItem::Kind::kMessage:
      ack = HandleMessage(item, receipts);
      break;
  }
  if (!ack) return;  // It comes again with the next stream.
  // Kept (or known, or refused for good) now: the mailbox may let it go.
  absl::Status acked =
      registry_->Ack(options_.own_name, lease_id_,
                     {registry::MailRef{item.id, item.digest}}, receipts);
  if (!acked.ok()) {
    PeerEvent event = InfoEvent(
        absl::StrCat(RegistryFailureText(acked, "acknowledge your mail"),
                     "; it may come again"));
    event.detail = acked.ToString();
    Emit(event);
  }
}

bool MailListener::HandleReceipt(const registry::MailItem& item) {
  absl::StatusOr<Proof> genuine =
      options_.envelope->CheckReceipt(item.sender, item.id, item.payload);
  if (!genuine.ok()) return false;  // The key is unknown now: later.
  if (*genuine == Proof::kInvalid) return true;  // Not by that key: away.
  absl::StatusOr<std::optional<OutboxEntry>> taken =
      outbox_->Take(item.id, item.sender);
  if (!taken.ok()) return false;  // Not acknowledged: the receipt comes again.
  // Not in the outbox: reported delivered already (a copy went directly).
  if (taken->has_value()) {
    PeerEvent event = MakeEvent(EventKind::kSendResult, item.sender);
    event.status = SendStatus::kDelivered;
    event.message = (*taken)->message;
    event.text = "from the mailbox";
    // A recipient without a key: only the registry vouches for it.
    event.unverified = *genuine == Proof::kNoKey;
    options_.deliveries->OnSendState(event);
  }
  return true;
}

bool MailListener::HandleReadReceipts(const registry::MailItem& item) {
  ::ReadReceipts receipts;
  if (options_.read_receipts == nullptr ||
      !receipts.ParseFromString(item.payload) ||
      registry::NameKey(receipts.sender()) != registry::NameKey(item.sender)) {
    return true;  // Nothing to take them, or not what they claim: let go.
  }
  absl::Status taken =
      options_.read_receipts->TakeReadReceipts(receipts, /*may_wait=*/true);
  // Refused for good (forged, malformed): let go; the key unknown now: later.
  return taken.code() != absl::StatusCode::kUnavailable;
}

bool MailListener::HandleExpired(const registry::MailItem& item) {
  if (!absl::StartsWith(item.id, registry::kExpiredIdPrefix)) return true;
  const std::string id =
      item.id.substr(std::strlen(registry::kExpiredIdPrefix));
  // Only one of ours to that recipient still in the outbox: nobody can end
  // another message. The registry makes the item only for mail that waited
  // in that mailbox, so the message was stored (our own mark of it is not
  // waited for, and may still be on its way to the file).
  absl::StatusOr<std::optional<OutboxEntry>> taken =
      outbox_->Take(id, item.sender);
  if (!taken.ok()) return false;         // Comes again.
  if (!taken->has_value()) return true;  // Not ours, or delivered meanwhile.
  int64_t waited_ms = 0;
  if (!absl::SimpleAtoi(item.payload, &waited_ms)) waited_ms = 0;
  PeerEvent event = MakeEvent(EventKind::kSendResult, (*taken)->message.to);
  event.status = SendStatus::kExpired;
  event.message = (*taken)->message;
  event.text = ExpiredText((*taken)->message.to, waited_ms);
  options_.deliveries->OnSendState(event);
  return true;
}

std::string ExpiredText(const std::string& recipient, int64_t waited_ms) {
  constexpr int64_t kMinute = 60 * 1000;
  constexpr int64_t kHour = 60 * kMinute;
  constexpr int64_t kDay = 24 * kHour;
  auto count = [](int64_t n, const char* unit) {
    return absl::StrCat(n, " ", unit, n == 1 ? "" : "s");
  };
  std::string waited;
  if (waited_ms >= kDay) {
    waited = count(waited_ms / kDay, "day");
  } else if (waited_ms >= kHour) {
    waited = count(waited_ms / kHour, "hour");
  } else if (waited_ms >= kMinute) {
    waited = count(waited_ms / kMinute, "minute");
  } else {
    waited = count(std::max<int64_t>(waited_ms / 1000, 0), "second");
  }
  if (waited_ms <= 0) {
    return absl::StrCat("it expired unread in ", recipient, "'s mailbox");
  }
  return absl::StrCat("it waited ", waited, " in ", recipient,
                      "'s mailbox and expired");
}

bool MailListener::HandleMessage(const registry::MailItem& item,
                                 std::vector<registry::MailItem>& receipts) {
  ::Message proto;
  if (!proto.ParseFromString(item.payload) ||
      (!proto.sealed().empty() && proto.id() != item.id)) {
    Emit(ErrorEvent(absl::StrCat("dropped unreadable mail from ",
                                 PrintableText(item.sender))));
    return true;
  }
  if (proto.sender().empty()) proto.set_sender(item.sender);
  absl::StatusOr<ChatMessage> opened =
      options_.envelope->Unwrap(proto, /*may_wait=*/true);
  if (!opened.ok()) {
    // Refused for good (forged, spoofed, malformed): unseen, and let go.
    return opened.status().code() != absl::StatusCode::kUnavailable;
  }
  ChatMessage message = *std::move(opened);
  message.id = item.id;  // The mailbox's id is the one to acknowledge.
  message.received_at = clock_.Wall();
  message.late = true;
  if (message.to.empty()) message.to = options_.own_name;
  if (!ValidateMessageText(message.text).ok()) {
    Emit(ErrorEvent(absl::StrCat("dropped unreadable mail from ",
                                 PrintableText(item.sender))));
    return true;
  }
  absl::Notification kept;
  absl::Status status;
  inbox_->Receive(message,
                  [this, &kept, &status](absl::StatusOr<Received> received) {
                    if (received.ok())
                      options_.released->OnReleased(received->ready);
                    status = received.status();
                    kept.Notify();
                  });
  kept.WaitForNotification();
  // kUnavailable: not kept now (the file, or a group state the registry
  // could not give): not acknowledged, it comes again. Any other error is
  // the inbox refusing it for good (a group message from a non-member):
  // let go, unseen, without a receipt.
  if (!status.ok()) return status.code() != absl::StatusCode::kUnavailable;
  if (!message.unverified) {
    // Only the sender can open it: a receipt nobody else could have made.
    absl::StatusOr<std::optional<std::string>> receipt =
        options_.envelope->Receipt(message.from, item.id);
    if (receipt.ok() && receipt->has_value()) {
      registry::MailItem made;
      made.kind = registry::MailItem::Kind::kReceipt;
      made.id = item.id;
      made.sender = options_.own_name;
      made.recipient = message.from;
      made.payload = **std::move(receipt);
      receipts.push_back(std::move(made));
    }
  }
  return true;
}

}  // namespace chat::peer
