#include "registry/mailbox_service.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/status.h"

namespace chat::registry {
namespace {

constexpr int kMaxAckIds = 1000;

// Streams a recipient's mailbox: what waits, then each arrival, one write in
// flight at a time. Items stay until acknowledged, so nothing is lost when
// the stream breaks.
class ListenReactor final : public grpc::ServerWriteReactor<v1::MailItem> {
 public:
  ListenReactor(Store* store, Mailbox* mailbox, std::string name,
                std::string lease_id)
      : store_(store),
        mailbox_(mailbox),
        name_(std::move(name)),
        lease_id_(std::move(lease_id)) {
    auto subscription = mailbox_->OnArrival(name_, [this] { Pump(); });
    {
      absl::MutexLock lock(&mu_);
      subscription_ = std::move(subscription);
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) broken_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    Pump();
  }

  void OnDone() override {
    std::unique_ptr<ArrivalSubscription> subscription;
    {
      absl::MutexLock lock(&mu_);
      subscription = std::move(subscription_);
    }
    subscription.reset();  // No Pump() after this.
    delete this;
  }

 private:
  // Decides under the lock, acts outside it (see WatchReactor).
  void Pump() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    grpc::Status finish_status;
    {
      absl::MutexLock lock(&mu_);
      if (subscription_ == nullptr || writing_ || finished_) return;
      absl::Status status = broken_ ? absl::CancelledError("client went away")
                                    : store_->VerifyLease(name_, lease_id_);
      if (status.ok() && pending_.empty()) {
        absl::StatusOr<std::vector<MailItem>> items =
            mailbox_->Peek(name_, last_seq_, 32);
        if (!items.ok()) {
          status = items.status();
        } else {
          for (MailItem& item : *items) pending_.push_back(std::move(item));
        }
      }
      if (!status.ok()) {
        finished_ = true;
        action = kFinish;
        finish_status = ToGrpcStatus(status);
      } else if (!pending_.empty()) {
        out_.Clear();
        MailItemToProto(pending_.front(), &out_);
        last_seq_ = pending_.front().seq;
        pending_.pop_front();
        writing_ = true;
        action = kWrite;
      }
    }
    if (action == kWrite) StartWrite(&out_);
    if (action == kFinish) Finish(finish_status);
  }

  Store* const store_;      // Not owned.
  Mailbox* const mailbox_;  // Not owned.
  const std::string name_;
  const std::string lease_id_;

  absl::Mutex mu_;
  std::unique_ptr<ArrivalSubscription> subscription_ ABSL_GUARDED_BY(mu_);
  std::deque<MailItem> pending_ ABSL_GUARDED_BY(mu_);
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  v1::MailItem out_;  // The item being written; only while writing_.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
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

void MailItemToProto(const MailItem& item, v1::MailItem* proto) {
  proto->set_kind(item.kind == MailItem::Kind::kReceipt
                      ? v1::MailItem::RECEIPT
                      : v1::MailItem::MESSAGE);
  proto->set_id(item.id);
  proto->set_sender(item.sender);
  proto->set_recipient(item.recipient);
  proto->set_payload(item.payload);
  if (item.deposited_at != absl::InfinitePast()) {
    proto->set_deposited_at_unix_ms(absl::ToUnixMillis(item.deposited_at));
  }
}

MailItem MailItemFromProto(const v1::MailItem& proto) {
  MailItem item;
  item.kind = proto.kind() == v1::MailItem::RECEIPT ? MailItem::Kind::kReceipt
                                                    : MailItem::Kind::kMessage;
  item.id = proto.id();
  item.sender = proto.sender();
  item.recipient = proto.recipient();
  item.payload = proto.payload();
  if (proto.deposited_at_unix_ms() > 0) {
    item.deposited_at = absl::FromUnixMillis(proto.deposited_at_unix_ms());
  }
  return item;
}

MailboxService::MailboxService(Store* store, Mailbox* mailbox)
    : store_(store), mailbox_(mailbox) {}

grpc::ServerUnaryReactor* MailboxService::Deposit(
    grpc::CallbackServerContext* context, const v1::DepositRequest* request,
    v1::DepositResponse* /*response*/) {
  if (request->item().kind() == v1::MailItem::RECEIPT) {
    return Respond(context, absl::InvalidArgumentError(
                                "receipts are made by the registry, not sent"));
  }
  MailItem item = MailItemFromProto(request->item());
  item.kind = MailItem::Kind::kMessage;
  return Respond(context, mailbox_->Deposit(item));
}

grpc::ServerWriteReactor<v1::MailItem>* MailboxService::Listen(
    grpc::CallbackServerContext* /*context*/,
    const v1::ListenRequest* request) {
  absl::Status allowed =
      store_->VerifyLease(request->name(), request->lease_id());
  if (!allowed.ok()) return new ListenRefusal(allowed);
  return new ListenReactor(store_, mailbox_, request->name(),
                           request->lease_id());
}

grpc::ServerUnaryReactor* MailboxService::Ack(
    grpc::CallbackServerContext* context, const v1::AckRequest* request,
    v1::AckResponse* response) {
  if (request->ids_size() > kMaxAckIds) {
    return Respond(context, absl::InvalidArgumentError(absl::StrCat(
                                "at most ", kMaxAckIds, " ids per Ack")));
  }
  absl::Status allowed =
      store_->VerifyLease(request->name(), request->lease_id());
  if (!allowed.ok()) return Respond(context, allowed);
  absl::StatusOr<size_t> removed = mailbox_->Ack(
      request->name(), {request->ids().begin(), request->ids().end()});
  if (removed.ok()) response->set_removed(static_cast<int32_t>(*removed));
  return Respond(context, removed.status());
}

grpc::ServerUnaryReactor* MailboxService::Stat(
    grpc::CallbackServerContext* context, const v1::StatRequest* request,
    v1::StatResponse* response) {
  absl::StatusOr<MailboxStats> stats = mailbox_->Stat(request->name());
  if (stats.ok()) {
    response->set_count(static_cast<int64_t>(stats->count));
    response->set_bytes(static_cast<int64_t>(stats->bytes));
    response->set_oldest_age_ms(absl::ToInt64Milliseconds(stats->oldest_age));
  }
  return Respond(context, stats.status());
}

}  // namespace chat::registry
