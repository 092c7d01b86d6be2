#include "registry/server/mailbox_service.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/limits.h"
#include "common/status.h"
#include "registry/convert.h"
#include "registry/names.h"
#include "registry/server/pumped_stream.h"

namespace chat::registry {
namespace {

constexpr int kMaxAckIds = 1000;

// Streams a recipient's mailbox: what waits, then each arrival. Items stay
// until acknowledged, so nothing is lost when the stream breaks.
class ListenReactor final
    : public PumpedStream<v1::MailItem, ArrivalSubscription> {
 public:
  ListenReactor(Store* store, Mailbox* mailbox, std::string name,
                std::string lease_id,
                std::unique_ptr<StreamGate::Ticket> ticket)
      : ticket_(std::move(ticket)),
        store_(store),
        mailbox_(mailbox),
        name_(std::move(name)),
        lease_id_(std::move(lease_id)) {
    Attach(mailbox_->OnArrival(name_, [this] { Pump(); }));
  }

 private:
  bool Next(ArrivalSubscription&, v1::MailItem* out, absl::Status* end) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // The lease may have expired or passed to someone else meanwhile.
    *end = store_->VerifyLease(name_, lease_id_);
    if (!end->ok()) return false;
    if (pending_.empty()) {
      absl::StatusOr<std::vector<MailItem>> items =
          mailbox_->Peek(name_, last_seq_, 32);
      if (!items.ok()) {
        *end = items.status();
        return false;
      }
      for (MailItem& item : *items) pending_.push_back(std::move(item));
    }
    if (pending_.empty()) return false;
    out->Clear();
    MailItemToProto(pending_.front(), out);
    last_seq_ = pending_.front().seq;
    pending_.pop_front();
    return true;
  }

  const std::unique_ptr<StreamGate::Ticket>
      ticket_;              // Our place; held to the end.
  Store* const store_;      // Not owned.
  Mailbox* const mailbox_;  // Not owned.
  const std::string name_;
  const std::string lease_id_;
  std::deque<MailItem> pending_ ABSL_GUARDED_BY(mu_);
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

// A reactor that ends the stream at once with `status`.
class ListenRefusal final : public grpc::ServerWriteReactor<v1::MailItem> {
 public:
  explicit ListenRefusal(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

MailboxService::MailboxService(Store* store, Mailbox* mailbox, CallGate* gate,
                               StreamLimits limits)
    : store_(store),
      mailbox_(mailbox),
      admission_(gate, Admission::Listen(limits)) {}

grpc::ServerUnaryReactor* MailboxService::Deposit(
    grpc::CallbackServerContext* context, const v1::DepositRequest* request,
    v1::DepositResponse* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  const v1::MailItem::Kind kind = request->item().kind();
  if (kind == v1::MailItem::RECEIPT) {
    return Respond(context,
                   absl::InvalidArgumentError(
                       "item.kind: receipts are not deposited; they travel "
                       "with the Ack of the message they answer"));
  }
  if (kind == v1::MailItem::EXPIRED) {
    return Respond(context, absl::InvalidArgumentError(
                                "item.kind: only the registry makes EXPIRED "
                                "items, when mail expires unread"));
  }
  MailItem item = MailItemFromProto(request->item());
  // Read receipts are sealed by their maker like messages; anything else
  // (an unknown kind from a newer client) is taken as a message.
  item.kind = kind == v1::MailItem::READ_RECEIPT ? MailItem::Kind::kReadReceipt
                                                 : MailItem::Kind::kMessage;
  // A deposit carries no credential: its sender is the host it comes from.
  item.origin = ClientHost(context->peer());
  return Respond(context, mailbox_->Deposit(item));
}

grpc::ServerWriteReactor<v1::MailItem>* MailboxService::Listen(
    grpc::CallbackServerContext* context, const v1::ListenRequest* request) {
  if (absl::Status admitted = admission_.OpenStream(*context); !admitted.ok()) {
    return new ListenRefusal(admitted);
  }
  absl::Status allowed =
      store_->VerifyLease(request->name(), request->lease_id());
  if (!allowed.ok()) return new ListenRefusal(allowed);
  absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> ticket =
      admission_.HoldStream(*context, request->lease_id());
  if (!ticket.ok()) return new ListenRefusal(ticket.status());
  return new ListenReactor(store_, mailbox_, request->name(),
                           request->lease_id(), *std::move(ticket));
}

grpc::ServerUnaryReactor* MailboxService::Ack(
    grpc::CallbackServerContext* context, const v1::AckRequest* request,
    v1::AckResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (request->ids_size() > kMaxAckIds) {
    return Respond(context, absl::InvalidArgumentError(absl::StrCat(
                                "at most ", kMaxAckIds, " ids per Ack")));
  }
  if (request->digests_size() > request->ids_size()) {
    return Respond(context, absl::InvalidArgumentError(
                                "digests: at most one per acknowledged id"));
  }
  if (request->receipts_size() > request->ids_size()) {
    return Respond(context, absl::InvalidArgumentError(
                                "receipts: at most one per acknowledged id"));
  }
  std::vector<MailItem> receipts;
  for (int i = 0; i < request->receipts_size(); ++i) {
    const v1::MailItem& receipt = request->receipts(i);
    if (receipt.kind() != v1::MailItem::RECEIPT) {
      return Respond(context, absl::InvalidArgumentError(absl::StrCat(
                                  "receipts[", i, "].kind must be RECEIPT")));
    }
    if (receipt.payload().size() > kMaxReceiptPayloadBytes) {
      return Respond(
          context,
          absl::InvalidArgumentError(absl::StrCat(
              "receipts[", i, "].payload is ", receipt.payload().size(),
              " bytes; the limit is ", kMaxReceiptPayloadBytes)));
    }
    if (receipt.id().empty() || receipt.id().size() > 64) {
      return Respond(context, absl::InvalidArgumentError(absl::StrCat(
                                  "receipts[", i, "].id must be 1-64 bytes")));
    }
    receipts.push_back(MailItemFromProto(receipt));
    // Made by the holder of the lease checked below.
    receipts.back().origin = NameKey(request->name());
  }
  absl::Status allowed =
      store_->VerifyLease(request->name(), request->lease_id());
  if (!allowed.ok()) return Respond(context, allowed);
  std::vector<MailRef> items;
  items.reserve(static_cast<size_t>(request->ids_size()));
  for (int i = 0; i < request->ids_size(); ++i) {
    items.push_back({request->ids(i),
                     i < request->digests_size() ? request->digests(i) : ""});
  }
  absl::StatusOr<size_t> removed =
      mailbox_->Ack(request->name(), items, receipts);
  if (removed.ok()) response->set_removed(static_cast<int32_t>(*removed));
  return Respond(context, removed.status());
}

grpc::ServerUnaryReactor* MailboxService::Stat(
    grpc::CallbackServerContext* context, const v1::StatRequest* request,
    v1::StatResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  absl::StatusOr<MailboxStats> stats = mailbox_->Stat(request->name());
  if (stats.ok()) {
    response->set_count(static_cast<int64_t>(stats->count));
    response->set_bytes(static_cast<int64_t>(stats->bytes));
    response->set_oldest_age_ms(absl::ToInt64Milliseconds(stats->oldest_age));
  }
  return Respond(context, stats.status());
}

}  // namespace chat::registry
