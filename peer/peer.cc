#include "peer/peer.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "common/grpc_server.h"
#include "common/ids.h"
#include "common/net.h"
#include "common/status.h"
#include "registry/names.h"

namespace chat::peer {

using registry::Entry;
using registry::EventReason;
using registry::EventType;
using registry::NameKey;

namespace {

// Messages to one recipient sent at once on the fast path.
constexpr size_t kSendWindow = 64;

// Gives the memory of a large watch snapshot back to the system once it is
// in (see the allocator note in peer/main.cc).
void ReleaseFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

// Failures a later attempt may not meet: the recipient or the registry may
// come back, a full mailbox may be drained. Anything else is final.
bool WorthRetrying(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnauthenticated:
      return false;
    default:
      return true;
  }
}

}  // namespace

// The ordered queue of outbox messages to one recipient, drained by its own
// thread so a slow or unreachable peer never holds up messages to others.
// A message that can be neither delivered nor stored is tried again, with
// growing pauses, and holds back the ones after it: order comes first.
class Conversation {
 public:
  Conversation(Peer* peer, std::string to) : peer_(peer), to_(std::move(to)) {
    thread_ = std::thread(&Conversation::Run, this);
  }

  // Gives each queued message one more try, then stops; what cannot go
  // stays in the outbox.
  ~Conversation() {
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
    }
    thread_.join();
  }

  void Enqueue(ChatMessage message, bool to_partner) {
    absl::MutexLock lock(&mu_);
    queue_.push_back({std::move(message), to_partner});
  }

  // Cuts the pause before the next attempt short (the recipient is back).
  void Nudge() {
    absl::MutexLock lock(&mu_);
    nudged_ = true;
  }

 private:
  struct Item {
    ChatMessage message;
    bool to_partner;
  };

  void Run() {
    Millis pause = peer_->options_.retry_min;
    while (true) {
      std::vector<Item> batch;
      bool closing;
      const size_t window = peer_->WindowFor(to_);
      {
        absl::MutexLock lock(&mu_);
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
            peer_->store_->OutboxFloor(item.message.to, item.message.sequence);
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
        std::vector<absl::Status> sent = peer_->SendAll(fresh);
        for (size_t i = 0; i < fresh.size(); ++i) {
          (sent[i].ok() ? delivered_ : tried).insert(fresh[i].id);
        }
      }
      // Then in order: report what went through; the rest takes the slow
      // path (resolve afresh, retry, mailbox), which keeps order.
      for (Item& item : batch) {
        if (delivered_.erase(item.message.id) > 0) {
          Finish(item, SendStatus::kDelivered,
                 retried_ ? "on a later attempt" : "");
          continue;
        }
        std::string why;
        absl::StatusOr<SendStatus> outcome =
            peer_->Deliver(item.message, &why,
                           /*tried_cached=*/tried.contains(item.message.id));
        if (outcome.ok()) {
          Finish(item, *outcome,
                 *outcome == SendStatus::kStored
                     ? why
                     : (retried_ ? "on a later attempt" : ""));
          continue;
        }
        if (!WorthRetrying(outcome.status())) {
          Finish(item, SendStatus::kFailed,
                 std::string(outcome.status().message()));
          continue;
        }
        if (!retried_) {
          retried_ = true;
          PeerEvent event = MakeEvent(EventKind::kSendResult, item.message.to);
          event.status = SendStatus::kSent;
          event.text = std::string(outcome.status().message());
          event.message = item.message;
          event.to_partner = item.to_partner;
          peer_->Emit(event);
        }
        if (closing) {
          // The rest wait behind this one, in the outbox, for the next run.
          size_t left;
          {
            absl::MutexLock lock(&mu_);
            left = queue_.size();
            queue_.clear();
          }
          peer_->Emit(InfoEvent(absl::StrCat(
              left, left == 1 ? " message" : " messages", " to ",
              item.message.to,
              " wait in your outbox; they go out when you start again")));
          return;
        }
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(
            absl::Condition(
                +[](Conversation* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
                  return c->nudged_ || c->closing_;
                },
                this),
            absl::Milliseconds(pause.count()));
        pause = std::min(pause * 2, peer_->options_.retry_max);
        break;  // Try the head again.
      }
      if (!retried_) pause = peer_->options_.retry_min;
    }
  }

  // Reports the head's final state (`item` is the head) and lets it go.
  void Finish(Item& item, SendStatus status, std::string text) {
    if (status == SendStatus::kStored) {
      peer_->store_->MarkStored(item.message.id);
    } else {
      peer_->store_->RemoveFromOutbox(item.message.id);
    }
    PeerEvent event = MakeEvent(EventKind::kSendResult, item.message.to);
    event.status = status;
    event.text = std::move(text);
    event.to_partner = item.to_partner;
    event.message = std::move(item.message);
    peer_->Emit(event);
    retried_ = false;
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
  }

  Peer* const peer_;  // Not owned; outlives this.
  const std::string to_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool nudged_ ABSL_GUARDED_BY(mu_) = false;
  // Run()'s thread only: the head has failed before; ids that went through
  // on the fast path but are not reported yet (they wait behind the head).
  bool retried_ = false;
  absl::flat_hash_set<std::string> delivered_;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<Peer>> Peer::Start(const PeerOptions& options,
                                                  EventSink* events,
                                                  const Clock& clock) {
  CHAT_RETURN_IF_ERROR(registry::ValidateName(options.name));
  if (!options.advertise.empty()) {
    CHAT_RETURN_IF_ERROR(registry::ValidateAddress(options.advertise));
  }
  std::unique_ptr<Peer> peer(new Peer(options, events, clock));
  absl::StatusOr<std::unique_ptr<PeerStore>> store =
      OpenPeerStore(options.store_path, clock, options.sync_full);
  if (!store.ok()) {
    return absl::FailedPreconditionError(std::string(store.status().message()));
  }
  peer->store_ = *std::move(store);
  peer->registry_ =
      registry::RegistryClient::Connect(options.registry, options.rpc_timeout);
  peer->service_ = std::make_unique<ChatService>(
      options.name, static_cast<MessageSink*>(peer.get()), clock);

  ServerConfig config;
  config.listen_address = options.listen;
  config.services = {peer->service_.get()};
  config.health_names = {"ChattingService"};
  CHAT_ASSIGN_OR_RETURN(RunningServer running, StartServer(config));
  peer->server_ = std::move(running.server);

  registry::LeaseKeeper::Options keeper_options;
  keeper_options.name = options.name;
  keeper_options.address = options.advertise;
  keeper_options.listen = options.listen;
  keeper_options.port = running.port;
  keeper_options.ttl = options.ttl;
  keeper_options.reclaim_lease_id = peer->store_->SavedLeaseId();
  Peer* raw = peer.get();
  keeper_options.on_lease = [raw](const std::string& lease_id) {
    // Without it a restart after a crash waits for the old lease to expire.
    raw->store_->SaveLeaseId(lease_id).IgnoreError();
  };
  keeper_options.on_change = [raw](const std::string& text) {
    raw->Emit(InfoEvent(text));
  };
  absl::StatusOr<std::unique_ptr<registry::LeaseKeeper>> keeper =
      registry::LeaseKeeper::Start(peer->registry_.get(), keeper_options,
                                   clock);
  if (!keeper.ok()) {
    if (keeper.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("the name is taken: ", keeper.status().message()));
    }
    return keeper.status();
  }
  peer->keeper_ = *std::move(keeper);
  peer->address_ = peer->keeper_->address();
  PeerEvent ready;
  ready.kind = EventKind::kReady;
  ready.name = options.name;
  ready.address = peer->address_;
  peer->Emit(ready);
  // What a killed run recorded but may not have shown, then what it left
  // in the outbox: sent again on its own.
  absl::StatusOr<std::vector<ChatMessage>> unshown = peer->store_->Unshown();
  if (unshown.ok()) peer->Show(*unshown, /*repeated=*/true);
  CHAT_ASSIGN_OR_RETURN(std::vector<OutboxEntry> outbox,
                        peer->store_->Outbox());
  size_t resent = 0;
  {
    absl::MutexLock lock(&peer->mu_);
    for (const OutboxEntry& entry : outbox) {
      // Stored ones wait in a mailbox; their receipts will come.
      if (entry.stored) continue;
      peer->QueueLocked(entry.message, /*to_partner=*/false);
      ++resent;
    }
  }
  if (resent > 0) {
    peer->Emit(InfoEvent(absl::StrCat("sending ", resent,
                                      resent == 1 ? " message" : " messages",
                                      " left in your outbox")));
  }
  peer->watch_thread_ = std::thread(&Peer::WatchLoop, raw);
  peer->mail_thread_ = std::thread(&Peer::MailLoop, raw);
  peer->hold_back_thread_ = std::thread(&Peer::HoldBackLoop, raw);
  {
    // Know who is online before returning, so every later arrival is news
    // and --peer does not wait for someone already here. Bounded: a slow
    // registry only delays the first snapshot.
    absl::MutexLock lock(&peer->mu_);
    peer->mu_.AwaitWithTimeout(absl::Condition(&peer->watch_synced_),
                               absl::Milliseconds(options.rpc_timeout.count()));
  }

  return peer;
}

Peer::Peer(PeerOptions options, EventSink* events, const Clock& clock)
    : options_(std::move(options)), events_(events), clock_(clock) {}

Peer::~Peer() { Shutdown(); }

absl::StatusOr<std::string> Peer::Send(const std::string& to,
                                       const std::string& text,
                                       bool to_partner) {
  CHAT_RETURN_IF_ERROR(registry::ValidateName(to));
  CHAT_RETURN_IF_ERROR(ValidateMessageText(text));
  ChatMessage message;
  message.sent_at = clock_.Wall();
  message.id = NewUuidV7(message.sent_at);
  message.from = options_.name;
  message.to = to;
  message.text = text;
  message.lab_time = LabTime(message.sent_at);
  std::string id = message.id;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::FailedPreconditionError("the peer is shutting down");
    }
  }
  // Written to the outbox before the first attempt; many sends share one
  // commit. Callbacks come in call order, so the queue keeps that order.
  store_->AddToOutbox(
      std::move(message),
      [this, to, to_partner](absl::StatusOr<ChatMessage> added) {
        PeerEvent event = MakeEvent(EventKind::kSendResult, to);
        event.to_partner = to_partner;
        if (!added.ok()) {
          event.status = SendStatus::kFailed;
          event.text = absl::StrCat("could not write it to your outbox: ",
                                    added.status().message());
          Emit(event);
          return;
        }
        event.status = SendStatus::kSent;
        event.message = *added;
        Emit(event);
        absl::MutexLock lock(&mu_);
        // Shutting down: it waits in the outbox for the next start.
        if (!stopping_) QueueLocked(*added, to_partner);
      });
  return id;
}

void Peer::QueueLocked(const ChatMessage& message, bool to_partner) {
  std::unique_ptr<Conversation>& conversation =
      conversations_[NameKey(message.to)];
  if (conversation == nullptr) {
    conversation = std::make_unique<Conversation>(this, message.to);
  }
  conversation->Enqueue(message, to_partner);
}

absl::StatusOr<std::vector<Entry>> Peer::ListPeers() {
  return registry_->ListAll("");
}

std::vector<std::string> Peer::OnlineNames() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  names.reserve(online_.size());
  for (const OnlinePeer& online : online_) {
    names.push_back(std::string(online.name()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool Peer::WaitUntilOnline(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto done = [this, &name]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || interrupted_ || online_.contains(name);
  };
  mu_.Await(absl::Condition(&done));
  return online_.contains(name);
}

void Peer::Interrupt() {
  absl::MutexLock lock(&mu_);
  interrupted_ = true;
}

void Peer::Shutdown() {
  absl::flat_hash_map<std::string, std::unique_ptr<Conversation>> draining;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    draining = std::move(conversations_);
    if (watch_ != nullptr) watch_->Cancel();
    if (mail_ != nullptr) mail_->Cancel();
  }
  draining.clear();  // Each conversation tries what it holds, then ends.
  if (watch_thread_.joinable()) watch_thread_.join();
  if (mail_thread_.joinable()) mail_thread_.join();
  if (hold_back_thread_.joinable()) hold_back_thread_.join();
  if (keeper_ != nullptr) keeper_->Stop();  // Unregisters.
  if (server_ != nullptr) {
    StopServer(*server_, Millis(1000));
    server_->Wait();
  }
}

void Peer::Accept(const ChatMessage& message, AcceptCallback done) {
  // Kept durably first, then shown, then acknowledged: a sender that hears
  // OK may forget the message. A retry or copy is acknowledged, shown once.
  store_->Receive(message, [this, done = std::move(done)](
                               absl::StatusOr<Received> received) {
    if (!received.ok()) {
      done(absl::UnavailableError(absl::StrCat(
          "the recipient cannot keep it now: ", received.status().message())));
      return;
    }
    Show(received->ready, /*repeated=*/false);
    done(absl::OkStatus());
  });
}

void Peer::Show(const std::vector<ChatMessage>& messages, bool repeated) {
  if (messages.empty()) return;
  std::vector<std::string> ids;
  for (const ChatMessage& message : messages) {
    PeerEvent event = MakeEvent(EventKind::kMessage, message.from);
    event.message = message;
    event.repeated = repeated;
    Emit(event);
    ids.push_back(message.id);
  }
  store_->MarkShown(ids);
}

void Peer::HoldBackLoop() {
  const absl::Duration limit = absl::Milliseconds(options_.hold_back.count());
  // Checked a few times per limit: a held message waits at most ~1.25x it.
  const absl::Duration tick = std::max(limit / 4, absl::Milliseconds(10));
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick)) {
    mu_.Unlock();
    store_->ReleaseOverdue(limit, [this](absl::StatusOr<Received> received) {
      if (received.ok()) Show(received->ready, /*repeated=*/false);
    });
    mu_.Lock();
  }
}

Peer::OnlinePeer::OnlinePeer(const Entry& entry, uint32_t generation_in)
    : generation(generation_in),
      text_(new char[entry.name.size() + entry.address.size() + 2]),
      is_static_(entry.is_static) {
  char* end = std::copy(entry.name.begin(), entry.name.end(), text_.get());
  *end++ = '\0';
  end = std::copy(entry.address.begin(), entry.address.end(), end);
  *end = '\0';
}

absl::string_view Peer::OnlinePeer::name() const {
  return absl::string_view(text_.get());
}

absl::string_view Peer::OnlinePeer::address() const {
  return absl::string_view(text_.get() + name().size() + 1);
}

size_t Peer::NameKeyHash::operator()(absl::string_view name) const {
  // Valid names are at most 64 characters: fold them without allocating.
  char folded[64];
  if (name.size() > sizeof(folded)) {
    return absl::Hash<std::string>()(NameKey(std::string(name)));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    folded[i] = absl::ascii_tolower(static_cast<unsigned char>(name[i]));
  }
  return absl::Hash<absl::string_view>()(
      absl::string_view(folded, name.size()));
}

bool Peer::NoteOnlineLocked(const Entry& entry, uint32_t generation) {
  auto it = online_.find(absl::string_view(entry.name));
  if (it == online_.end()) {
    online_.emplace(entry, generation);
    return true;
  }
  if (it->name() == entry.name && it->address() == entry.address &&
      it->is_static() == entry.is_static) {
    it->generation = generation;
    return false;
  }
  // Another address, or registered again with other capitals: keep it as it
  // is now.
  const bool news = it->address() != entry.address;
  online_.erase(it);
  online_.emplace(entry, generation);
  return news;
}

void Peer::WatchLoop() {
  const std::string own_key = NameKey(options_.name);
  Millis backoff(200);
  bool first_sync = true;
  bool reported_loss = false;
  // After a reconnect, the name keys whose arrival (or new address) the next
  // sync reports; kept across a stream that breaks before it is synced.
  absl::flat_hash_set<std::string> arrived;
  while (true) {
    std::unique_ptr<registry::WatchStream> stream = registry_->Watch("");
    // Owned by watch_ (so Shutdown() can cancel it); only this thread
    // replaces it.
    registry::WatchStream* watch = stream.get();
    uint32_t generation;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      watch_ = std::move(stream);
      generation = ++watch_generation_;
    }
    // The snapshot goes straight into online_, marked with this stream's
    // generation, rather than into a second map to swap in: with a large
    // registry that second copy was most of the peer's memory. After a
    // reconnect, only the differences are collected, to report them.
    bool synced = false;
    registry::WatchEvent event;
    while (watch->Next(&event)) {
      if (!event.entry.name.empty() && NameKey(event.entry.name) == own_key) {
        continue;  // Our own comings and goings are not news.
      }
      if (synced) {
        ApplyWatchEvent(event);
        continue;
      }
      if (event.type == EventType::kPut) {
        absl::MutexLock lock(&mu_);
        if (NoteOnlineLocked(event.entry, generation) && !first_sync) {
          arrived.insert(NameKey(event.entry.name));
        }
        continue;
      }
      if (event.type != EventType::kSynced) continue;
      synced = true;
      backoff = Millis(200);
      if (reported_loss) {
        Emit(InfoEvent("following the registry again"));
        reported_loss = false;
      }
      // Whoever the snapshot did not list left while we were not watching.
      std::vector<PeerEvent> changes;
      PeerEvent here = MakeEvent(EventKind::kPeers);
      {
        absl::MutexLock lock(&mu_);
        for (auto it = online_.begin(); it != online_.end();) {
          if (it->generation == generation) {
            ++it;
            continue;
          }
          if (!first_sync) {
            changes.push_back(MakeEvent(EventKind::kOffline,
                                        std::string(it->name()),
                                        std::string(it->address()), "left"));
          }
          online_.erase(it++);
        }
        watch_synced_ = true;
        if (first_sync) {
          here.peers.reserve(online_.size());
          for (const OnlinePeer& online : online_) {
            Entry entry;
            entry.name = std::string(online.name());
            entry.address = std::string(online.address());
            entry.is_static = online.is_static();
            here.peers.push_back(std::move(entry));
          }
        } else {
          for (const std::string& key : arrived) {
            auto online = online_.find(key);
            if (online == online_.end()) continue;
            changes.push_back(MakeEvent(EventKind::kOnline,
                                        std::string(online->name()),
                                        std::string(online->address()), ""));
            // Messages waiting for this peer need not wait out their pause.
            auto it = conversations_.find(key);
            if (it != conversations_.end()) it->second->Nudge();
          }
        }
      }
      if (first_sync) {
        // Say who is here already; later arrivals come one by one.
        std::sort(
            here.peers.begin(), here.peers.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
        Emit(here);
      } else {
        for (const PeerEvent& change : changes) {
          ForgetStub(NameKey(change.name));
          Emit(change);
        }
      }
      first_sync = false;
      arrived = {};
      here = PeerEvent();  // Freed before the trim.
      ReleaseFreedMemory();
    }
    absl::Status status = watch->Finish();
    {
      absl::MutexLock lock(&mu_);
      watch_.reset();
      if (stopping_) return;
    }
    if (!reported_loss) {
      Emit(InfoEvent(absl::StrCat("lost the registry watch (", status.message(),
                                  "); reconnecting")));
      reported_loss = true;
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                         absl::Milliseconds(backoff.count()));
    if (stopping_) return;
    backoff = std::min(backoff * 2, Millis(5000));
  }
}

void Peer::ApplyWatchEvent(const registry::WatchEvent& event) {
  const std::string key = NameKey(event.entry.name);
  PeerEvent change;
  change.name = event.entry.name;
  change.address = event.entry.address;
  if (event.type == EventType::kPut) {
    change.kind = EventKind::kOnline;
    absl::MutexLock lock(&mu_);
    NoteOnlineLocked(event.entry, watch_generation_);
    // Messages waiting for this peer need not wait out their pause.
    auto it = conversations_.find(key);
    if (it != conversations_.end()) it->second->Nudge();
  } else if (event.type == EventType::kDelete) {
    change.kind = EventKind::kOffline;
    change.text =
        event.reason == EventReason::kExpired ? "lease expired" : "left";
    absl::MutexLock lock(&mu_);
    online_.erase(absl::string_view(event.entry.name));
  } else {
    return;
  }
  ForgetStub(key);
  Emit(change);
}

void Peer::MailLoop() {
  Millis backoff(200);
  while (true) {
    // The keeper may be registering afresh, with a new lease.
    const std::string lease_id = keeper_->lease().lease_id;
    std::unique_ptr<registry::MailStream> stream;
    if (!lease_id.empty()) stream = registry_->Listen(options_.name, lease_id);
    registry::MailStream* mail = stream.get();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      mail_ = std::move(stream);
    }
    if (mail != nullptr) {
      registry::MailItem item;
      while (mail->Next(&item)) {
        backoff = Millis(200);
        HandleMail(item, lease_id);
      }
      mail->Finish().IgnoreError();  // The keeper reports registry trouble.
    }
    absl::MutexLock lock(&mu_);
    mail_.reset();
    mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                         absl::Milliseconds(backoff.count()));
    if (stopping_) return;
    backoff = std::min(backoff * 2, Millis(5000));
  }
}

void Peer::HandleMail(const registry::MailItem& item,
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
    if (message.to.empty()) message.to = options_.name;
    if (!ValidateMessageText(message.text).ok()) {
      Emit(ErrorEvent(absl::StrCat("dropped unreadable mail from ",
                                   PrintableText(item.sender))));
    } else {
      absl::Notification kept;
      absl::Status status;
      store_->Receive(
          message, [this, &kept, &status](absl::StatusOr<Received> received) {
            if (received.ok()) Show(received->ready, /*repeated=*/false);
            status = received.status();
            kept.Notify();
          });
      kept.WaitForNotification();
      if (!status.ok()) return;  // Not acknowledged: it comes again.
    }
  }
  // Kept (or known) now: the mailbox may let it go.
  absl::Status acked = registry_->Ack(options_.name, lease_id, {item.id});
  if (!acked.ok()) {
    Emit(InfoEvent(absl::StrCat("could not acknowledge mail (", acked.message(),
                                "); it may come again")));
  }
}

absl::StatusOr<std::shared_ptr<::ChattingService::Stub>> Peer::StubFor(
    const std::string& name, bool fresh) {
  const std::string key = NameKey(name);
  if (!fresh) {
    absl::MutexLock lock(&stubs_mu_);
    auto it = stubs_.find(key);
    if (it != stubs_.end()) return it->second.stub;
  }
  absl::StatusOr<Entry> entry = registry_->Resolve(name);
  if (!entry.ok()) {
    if (entry.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat(name, " is not online"));
    }
    return entry.status();
  }
  auto stub = std::shared_ptr<::ChattingService::Stub>(
      ::ChattingService::NewStub(grpc::CreateChannel(
          entry->address, grpc::InsecureChannelCredentials())));
  absl::MutexLock lock(&stubs_mu_);
  stubs_[key] = CachedStub{entry->address, stub};
  return stub;
}

void Peer::ForgetStub(const std::string& key) {
  absl::MutexLock lock(&stubs_mu_);
  stubs_.erase(key);
}

size_t Peer::WindowFor(const std::string& name) {
  // A static entry is how a lab peer (or another program that knows no
  // sequence numbers) gets a name: it shows messages as they arrive, so
  // they must arrive in order, one at a time.
  absl::MutexLock lock(&mu_);
  auto it = online_.find(name);
  if (it != online_.end() && it->is_static()) return 1;
  return kSendWindow;
}

std::vector<absl::Status> Peer::SendAll(
    const std::vector<ChatMessage>& messages) {
  if (messages.empty()) return {};
  absl::StatusOr<std::shared_ptr<::ChattingService::Stub>> stub =
      StubFor(messages.front().to, /*fresh=*/false);
  if (!stub.ok())
    return std::vector<absl::Status>(messages.size(), stub.status());
  struct Call {
    grpc::ClientContext context;
    ::Message request;
    ::NullMsg response;
    absl::Status status;
  };
  std::vector<Call> calls(messages.size());
  absl::BlockingCounter pending(static_cast<int>(messages.size()));
  const auto deadline = std::chrono::system_clock::now() + options_.rpc_timeout;
  for (size_t i = 0; i < messages.size(); ++i) {
    Call& call = calls[i];
    call.context.set_deadline(deadline);
    call.request = ToProto(messages[i]);
    (*stub)->async()->SendMessage(&call.context, &call.request, &call.response,
                                  [&call, &pending](grpc::Status status) {
                                    call.status = FromGrpcStatus(status);
                                    pending.DecrementCount();
                                  });
  }
  pending.Wait();
  std::vector<absl::Status> statuses;
  for (Call& call : calls) statuses.push_back(std::move(call.status));
  return statuses;
}

absl::StatusOr<SendStatus> Peer::Deliver(const ChatMessage& message,
                                         std::string* why, bool tried_cached) {
  absl::Status direct = DeliverDirectly(message, tried_cached);
  if (direct.ok()) return SendStatus::kDelivered;
  const bool absent = direct.code() == absl::StatusCode::kNotFound ||
                      direct.code() == absl::StatusCode::kUnavailable;
  if (!absent) return direct;
  registry::MailItem item;
  item.id = message.id;
  item.sender = message.from;
  item.recipient = message.to;
  ToProto(message).SerializeToString(&item.payload);
  absl::Status stored = registry_->Deposit(item);
  if (!stored.ok()) {
    return absl::Status(
        stored.code(),
        absl::StrCat(direct.message(), "; and it could not be stored: ",
                     stored.code() == absl::StatusCode::kUnimplemented
                         ? "this registry has no mailbox"
                         : std::string(stored.message())));
  }
  *why = absl::StrCat(direct.message(), "; it waits in ", message.to,
                      "'s mailbox");
  return SendStatus::kStored;
}

absl::Status Peer::DeliverDirectly(const ChatMessage& message,
                                   bool tried_cached) {
  const ::Message proto = ToProto(message);
  absl::Status last;
  for (int attempt = tried_cached ? 1 : 0; attempt < 2; ++attempt) {
    // The second attempt resolves afresh: the peer may have moved.
    auto stub = StubFor(message.to, /*fresh=*/attempt > 0);
    if (!stub.ok()) return stub.status();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         options_.rpc_timeout);
    ::NullMsg response;
    grpc::Status status = (*stub)->SendMessage(&context, proto, &response);
    if (status.ok()) return absl::OkStatus();
    last = FromGrpcStatus(status);
    const bool stale =
        status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
    if (!stale) break;
    ForgetStub(NameKey(message.to));
  }
  if (last.code() == absl::StatusCode::kUnavailable ||
      last.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::UnavailableError(
        absl::StrCat(message.to, " is unreachable (", last.message(), ")"));
  }
  return last;
}

}  // namespace chat::peer
