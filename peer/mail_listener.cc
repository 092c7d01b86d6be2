#include "peer/mail_listener.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace chat::peer {
MailListener::MailListener(registry::RegistryClient* registry, PeerStore* store,
                           EventSink* events, const Clock& clock,
                           Options options)
    : registry_(registry),
      store_(store),
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
  lease_id_ = options_.lease_id();
  if (lease_id_.empty()) return nullptr;
  return registry_->Listen(options_.own_name, lease_id_);
}

void MailListener::Handle(const registry::MailItem& item) {
  if (item.kind == registry::MailItem::Kind::kReceipt) {
    absl::StatusOr<std::optional<OutboxEntry>> taken =
        store_->TakeFromOutbox(item.id);
    if (!taken.ok()) return;  // Not acknowledged: the receipt comes again.
    // Not in the outbox: reported delivered already (a copy went directly).
    if (taken->has_value()) {
      PeerEvent event = MakeEvent(EventKind::kSendResult, item.sender);
      event.status = SendStatus::kDelivered;
      event.message = (*taken)->message;
      event.text = "from the mailbox";
      Emit(event);
    }
  } else {
    ::Message proto;
    ChatMessage message;
    if (proto.ParseFromString(item.payload)) message = FromProto(proto);
    message.id = item.id;  // The mailbox's id is the one to acknowledge.
    message.received_at = clock_.Wall();
    message.late = true;
    if (message.from.empty()) message.from = item.sender;
    if (message.to.empty()) message.to = options_.own_name;
    if (!ValidateMessageText(message.text).ok()) {
      Emit(ErrorEvent(absl::StrCat("dropped unreadable mail from ",
                                   PrintableText(item.sender))));
    } else {
      absl::Notification kept;
      absl::Status status;
      store_->Receive(
          message, [this, &kept, &status](absl::StatusOr<Received> received) {
            if (received.ok()) options_.show(received->ready);
            status = received.status();
            kept.Notify();
          });
      kept.WaitForNotification();
      if (!status.ok()) return;  // Not acknowledged: it comes again.
    }
  }
  // Kept (or known) now: the mailbox may let it go.
  absl::Status acked = registry_->Ack(options_.own_name, lease_id_, {item.id});
  if (!acked.ok()) {
    Emit(InfoEvent(absl::StrCat("could not acknowledge mail (", acked.message(),
                                "); it may come again")));
  }
}

}  // namespace chat::peer
