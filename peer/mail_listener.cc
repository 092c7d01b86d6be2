#include "peer/mail_listener.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace chat::peer {
namespace {

constexpr Millis kFirstBackoff{200};
constexpr Millis kMaxBackoff{5000};

}  // namespace

MailListener::MailListener(registry::RegistryClient* registry, PeerStore* store,
                           EventSink* events, const Clock& clock,
                           Options options)
    : registry_(registry),
      store_(store),
      events_(events),
      clock_(clock),
      options_(std::move(options)) {
  loop_.emplace(clock, Millis(0), [this] { return ListenOnce(); });
}

MailListener::~MailListener() { Stop(); }

void MailListener::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (mail_ != nullptr) mail_->Cancel();
  }
  loop_->Stop();
}

std::optional<Millis> MailListener::ListenOnce() {
  // The keeper may be registering afresh, with a new lease.
  const std::string lease_id = options_.lease_id();
  std::unique_ptr<registry::MailStream> stream;
  if (!lease_id.empty()) {
    stream = registry_->Listen(options_.own_name, lease_id);
  }
  registry::MailStream* mail = stream.get();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return std::nullopt;
    mail_ = std::move(stream);
  }
  if (mail != nullptr) {
    registry::MailItem item;
    while (mail->Next(&item)) {
      backoff_ = kFirstBackoff;
      Handle(item, lease_id);
    }
    mail->Finish().IgnoreError();  // The keeper reports registry trouble.
  }
  {
    absl::MutexLock lock(&mu_);
    mail_.reset();
    if (stopping_) return std::nullopt;
  }
  const Millis pause = backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  return pause;
}

void MailListener::Handle(const registry::MailItem& item,
                          const std::string& lease_id) {
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
  absl::Status acked = registry_->Ack(options_.own_name, lease_id, {item.id});
  if (!acked.ok()) {
    Emit(InfoEvent(absl::StrCat("could not acknowledge mail (", acked.message(),
                                "); it may come again")));
  }
}

}  // namespace chat::peer
