#include "peer/conversation.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace chat::peer {
namespace {

// Failures a later attempt may not meet: the recipient or the registry may
// come back, a full mailbox may be drained. Anything else is final, and so
// is a recipient that does not exist (kNotFound: an offline one is stored).
bool WorthRetrying(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnauthenticated:
      return false;
    default:
      return true;
  }
}

// The details of two statuses, for PeerEvent::detail.
std::string JoinDetails(const absl::Status& first, const absl::Status& second) {
  const std::string a = StatusDetail(first);
  const std::string b = StatusDetail(second);
  if (a.empty() || b.empty()) return a + b;
  return absl::StrCat(a, "; then ", b);
}

}  // namespace

Conversation::Conversation(Options options, Transport* transport,
                           Outbox* outbox, RecipientDirectory* recipients,
                           DeliveryListener* deliveries, EventSink* events,
                           const Clock& clock)
    : options_(std::move(options)),
      transport_(transport),
      outbox_(outbox),
      recipients_(recipients),
      deliveries_(deliveries),
      events_(events),
      clock_(clock) {
  thread_ = std::thread(&Conversation::Run, this);
}

Conversation::~Conversation() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  thread_.join();
}

void Conversation::Enqueue(std::vector<ChatMessage> messages, bool to_partner) {
  absl::MutexLock lock(&mu_);
  for (ChatMessage& message : messages) {
    queue_.push_back({std::move(message), to_partner});
  }
}

void Conversation::Nudge() {
  absl::MutexLock lock(&mu_);
  nudged_ = true;
}

void Conversation::Run() {
  Millis pause = options_.retry_min;
  while (true) {
    std::vector<Item> batch;
    bool closing;
    const size_t window = std::max<size_t>(recipients_->Window(options_.to), 1);
    {
      absl::MutexLock lock(&mu_);
      // Not a wait for time: for work, or the end.
      mu_.Await(absl::Condition(
          +[](Conversation* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
            return c->closing_ || !c->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // Closing, and nothing left to send.
      const size_t n = std::min(queue_.size(), window);
      batch.assign(queue_.begin(), queue_.begin() + n);
      closing = closing_;
      nudged_ = false;
    }
    for (Item& item : batch) {
      item.message.sequence_floor =
          outbox_->Floor(item.message, item.message.sequence);
    }
    // Fast path: the whole window at once, straight to the recipient, so
    // its inbox commits them together. Skipped while the head is being
    // retried: the recipient is away.
    absl::flat_hash_set<std::string> tried;  // On the fast path, failed.
    if (!retried_) {
      std::vector<ChatMessage> fresh;
      for (const Item& item : batch) {
        if (!delivered_.contains(item.message.id)) {
          fresh.push_back(item.message);
        }
      }
      std::vector<absl::StatusOr<Delivery>> sent =
          transport_->SendWindow(fresh);
      for (size_t i = 0; i < fresh.size(); ++i) {
        if (i < sent.size() && sent[i].ok()) {
          delivered_[fresh[i].id] = *sent[i];
        } else {
          tried.insert(fresh[i].id);
        }
      }
    }
    // Then in order: report what went through; the rest takes the slow
    // path (resolve afresh, retry, mailbox), which keeps order.
    for (Item& item : batch) {
      if (auto it = delivered_.find(item.message.id); it != delivered_.end()) {
        const bool unverified = it->second == Delivery::kUnverified;
        delivered_.erase(it);
        Finish(item, SendStatus::kDelivered,
               retried_ ? "on a later attempt" : "", "", unverified);
        continue;
      }
      std::string why;
      std::string detail;
      bool unverified = false;
      absl::StatusOr<SendStatus> outcome =
          Deliver(item.message,
                  /*tried_directly=*/tried.contains(item.message.id), &why,
                  &detail, &unverified);
      if (outcome.ok()) {
        Finish(item, *outcome,
               *outcome == SendStatus::kStored
                   ? why
                   : (retried_ ? "on a later attempt" : ""),
               detail, unverified);
        continue;
      }
      if (!WorthRetrying(outcome.status())) {
        Finish(item, SendStatus::kFailed,
               std::string(outcome.status().message()),
               StatusDetail(outcome.status()));
        continue;
      }
      if (!retried_) {  // Told once per failing head.
        retried_ = true;
        PeerEvent event = MakeEvent(EventKind::kSendResult, item.message.to);
        event.status = SendStatus::kSent;
        event.text = std::string(outcome.status().message());
        event.detail = StatusDetail(outcome.status());
        event.message = item.message;
        event.to_partner = item.to_partner;
        deliveries_->OnSendState(event);
      }
      if (closing) {
        // The rest wait behind this one, in the outbox, for the next run.
        size_t left;
        {
          absl::MutexLock lock(&mu_);
          left = queue_.size();
          queue_.clear();
        }
        events_->OnEvent(InfoEvent(absl::StrCat(
            left, left == 1 ? " message" : " messages", " to ", item.message.to,
            left == 1 ? " waits in your outbox; it goes out"
                      : " wait in your outbox; they go out",
            " when you start again")));
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        clock_.AwaitFor(&mu_,
                        absl::Condition(
                            +[](Conversation* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                                 c->mu_) { return c->nudged_ || c->closing_; },
                            this),
                        pause);
      }
      pause = std::min(pause * 2, options_.retry_max);
      break;  // Try the head again.
    }
    if (!retried_) pause = options_.retry_min;
  }
}

absl::StatusOr<SendStatus> Conversation::Deliver(const ChatMessage& message,
                                                 bool tried_directly,
                                                 std::string* why,
                                                 std::string* detail,
                                                 bool* unverified) {
  absl::StatusOr<Delivery> sent =
      transport_->SendOne(message, /*fresh=*/tried_directly);
  if (sent.ok()) {
    *unverified = *sent == Delivery::kUnverified;
    return SendStatus::kDelivered;
  }
  const absl::Status& direct = sent.status();
  const bool absent = direct.code() == absl::StatusCode::kNotFound ||
                      direct.code() == absl::StatusCode::kUnavailable;
  if (!absent) return direct;
  if (recipients_->IsStatic(options_.to) && !IsRegistryUnreachable(direct)) {
    // A static entry (a lab peer) reads no mailbox: what would wait there
    // would wait for nobody. It waits in the outbox and is tried again.
    return WithDetail(absl::UnavailableError("it is unreachable"),
                      StatusDetail(direct));
  }
  if (direct.code() == absl::StatusCode::kNotFound) {
    // Not registered now: offline, or nobody of that name at all (typed
    // while the registry was away, so never checked). Nobody would ever
    // read such a mailbox.
    absl::Status exists = recipients_->Exists(options_.to);
    if (exists.code() == absl::StatusCode::kNotFound) {
      return WithDetail(std::move(exists), StatusDetail(direct));
    }
  }
  absl::Status stored = transport_->Deposit(message);
  if (!stored.ok()) {
    std::string reason;
    if (IsRegistryUnreachable(stored)) {
      reason = IsRegistryUnreachable(direct)
                   ? std::string(kRegistryUnreachable)
                   : absl::StrCat(direct.message(), " and so is the registry");
    } else {
      reason = absl::StrCat(direct.message(), " and ", stored.message());
    }
    return WithDetail(absl::Status(stored.code(), reason),
                      JoinDetails(direct, stored));
  }
  *why = std::string(direct.message());
  *detail = StatusDetail(direct);
  return SendStatus::kStored;
}

void Conversation::Finish(Item& item, SendStatus status, std::string text,
                          std::string detail, bool unverified) {
  if (status == SendStatus::kStored) {
    outbox_->MarkStored(item.message.id, item.message.to);
  } else {
    outbox_->Remove(item.message.id, item.message.to);
  }
  PeerEvent event = MakeEvent(EventKind::kSendResult, item.message.to);
  event.status = status;
  event.text = std::move(text);
  event.detail = std::move(detail);
  event.unverified = unverified;
  event.to_partner = item.to_partner;
  event.message = std::move(item.message);
  deliveries_->OnSendState(event);
  retried_ = false;
  absl::MutexLock lock(&mu_);
  queue_.pop_front();
}

}  // namespace chat::peer
