#include "peer/peer.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
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

constexpr size_t kMaxSeenIds = 10000;
constexpr size_t kMaxStoredRemembered = 10000;

}  // namespace

// The ordered queue of messages to one recipient, drained by its own thread
// so a slow or unreachable peer never holds up messages to others.
class Conversation {
 public:
  explicit Conversation(Peer* peer) : peer_(peer) {
    thread_ = std::thread(&Conversation::Run, this);
  }

  // Drains what is queued, then stops.
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

 private:
  struct Item {
    ChatMessage message;
    bool to_partner;
  };

  void Run() {
    while (true) {
      Item item;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Conversation* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
              return c->closing_ || !c->queue_.empty();
            },
            this));
        if (queue_.empty()) return;  // Closing, and nothing left to send.
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      std::string why;
      absl::StatusOr<SendStatus> outcome = peer_->Deliver(item.message, &why);
      PeerEvent event;
      event.kind = EventKind::kSendResult;
      event.name = item.message.to;
      event.message = std::move(item.message);
      event.to_partner = item.to_partner;
      event.status = outcome.value_or(SendStatus::kFailed);
      event.text = outcome.ok() ? why : std::string(outcome.status().message());
      peer_->Emit(event);
    }
  }

  Peer* const peer_;  // Not owned; outlives this.
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
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

  peer->address_ = options.advertise;
  if (peer->address_.empty()) {
    peer->address_ = DefaultAdvertisedAddress(options.listen, running.port);
  }
  if (peer->address_.empty()) {
    absl::StatusOr<std::string> local = LocalAddressToward(options.registry);
    if (!local.ok()) {
      return absl::UnavailableError(
          absl::StrCat("registry at ", options.registry,
                       " is unreachable: ", local.status().message()));
    }
    peer->address_ = absl::StrCat(*local, ":", running.port);
  }

  registry::LeaseKeeper::Options keeper_options;
  keeper_options.name = options.name;
  keeper_options.address = peer->address_;
  keeper_options.ttl = options.ttl;
  Peer* raw = peer.get();
  keeper_options.on_change = [raw](const std::string& text) {
    raw->Emit(InfoEvent(text));
  };
  absl::StatusOr<std::unique_ptr<registry::LeaseKeeper>> keeper =
      registry::LeaseKeeper::Start(peer->registry_.get(), keeper_options);
  if (!keeper.ok()) {
    if (keeper.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("the name is taken: ", keeper.status().message()));
    }
    return keeper.status();
  }
  peer->keeper_ = *std::move(keeper);
  PeerEvent ready;
  ready.kind = EventKind::kReady;
  ready.name = options.name;
  ready.address = peer->address_;
  peer->Emit(ready);
  peer->watch_thread_ = std::thread(&Peer::WatchLoop, raw);
  peer->mail_thread_ = std::thread(&Peer::MailLoop, raw);
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

  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::FailedPreconditionError("the peer is shutting down");
  }
  std::unique_ptr<Conversation>& conversation = conversations_[NameKey(to)];
  if (conversation == nullptr)
    conversation = std::make_unique<Conversation>(this);
  conversation->Enqueue(std::move(message), to_partner);
  return id;
}

absl::StatusOr<std::vector<Entry>> Peer::ListPeers() {
  return registry_->ListAll("");
}

std::vector<std::string> Peer::OnlineNames() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [key, entry] : online_) names.push_back(entry.name);
  std::sort(names.begin(), names.end());
  return names;
}

bool Peer::WaitUntilOnline(const std::string& name) {
  const std::string key = NameKey(name);
  absl::MutexLock lock(&mu_);
  auto done = [this, &key]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || interrupted_ || online_.contains(key);
  };
  mu_.Await(absl::Condition(&done));
  return online_.contains(key);
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
  draining.clear();  // Each conversation sends what it holds, then ends.
  if (watch_thread_.joinable()) watch_thread_.join();
  if (mail_thread_.joinable()) mail_thread_.join();
  if (keeper_ != nullptr) keeper_->Stop();  // Unregisters.
  if (server_ != nullptr) {
    StopServer(*server_, Millis(1000));
    server_->Wait();
  }
}

bool Peer::FirstSighting(const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (!seen_ids_.insert(id).second) return false;
  seen_order_.push_back(id);
  if (seen_order_.size() > kMaxSeenIds) {
    seen_ids_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  return true;
}

absl::Status Peer::Accept(const ChatMessage& message) {
  // A retry after a lost answer: acknowledged again, shown once.
  if (!FirstSighting(message.id)) return absl::OkStatus();
  PeerEvent event;
  event.kind = EventKind::kMessage;
  event.name = message.from;
  event.message = message;
  Emit(event);
  return absl::OkStatus();
}

void Peer::WatchLoop() {
  Millis backoff(200);
  bool first_sync = true;
  bool reported_loss = false;
  while (true) {
    std::unique_ptr<registry::WatchStream> stream = registry_->Watch("");
    // Owned by watch_ (so Shutdown() can cancel it); only this thread
    // replaces it.
    registry::WatchStream* watch = stream.get();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      watch_ = std::move(stream);
    }
    absl::flat_hash_map<std::string, Entry> snapshot;
    bool synced = false;
    registry::WatchEvent event;
    while (watch->Next(&event)) {
      if (!event.entry.name.empty() &&
          NameKey(event.entry.name) == NameKey(options_.name)) {
        continue;  // Our own comings and goings are not news.
      }
      if (synced) {
        ApplyWatchEvent(event);
        continue;
      }
      if (event.type == EventType::kPut) {
        snapshot[NameKey(event.entry.name)] = event.entry;
        continue;
      }
      if (event.type != EventType::kSynced) continue;
      synced = true;
      backoff = Millis(200);
      if (reported_loss) {
        Emit(InfoEvent("following the registry again"));
        reported_loss = false;
      }
      // Replace what we knew with the snapshot; after a reconnect, report
      // the differences.
      std::vector<PeerEvent> changes;
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [key, entry] : online_) {
          if (!snapshot.contains(key)) {
            changes.push_back(MakeEvent(EventKind::kOffline, entry.name,
                                        entry.address, "left"));
          }
        }
        for (const auto& [key, entry] : snapshot) {
          auto it = online_.find(key);
          if (it == online_.end() || it->second.address != entry.address) {
            changes.push_back(
                MakeEvent(EventKind::kOnline, entry.name, entry.address, ""));
          }
        }
        online_ = std::move(snapshot);
        watch_synced_ = true;
      }
      if (first_sync) {
        // Say who is here already; later arrivals come one by one.
        PeerEvent here = MakeEvent(EventKind::kPeers);
        {
          absl::MutexLock lock(&mu_);
          for (const auto& [key, entry] : online_) here.peers.push_back(entry);
        }
        std::sort(
            here.peers.begin(), here.peers.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
        Emit(here);
      } else {
        for (const PeerEvent& change : changes) {
          if (change.kind == EventKind::kOffline)
            ForgetStub(NameKey(change.name));
          Emit(change);
        }
      }
      first_sync = false;
      snapshot.clear();
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
    online_[key] = event.entry;
  } else if (event.type == EventType::kDelete) {
    change.kind = EventKind::kOffline;
    change.text =
        event.reason == EventReason::kExpired ? "lease expired" : "left";
    absl::MutexLock lock(&mu_);
    online_.erase(key);
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
    PeerEvent event = MakeEvent(EventKind::kSendResult, item.sender);
    event.status = SendStatus::kDelivered;
    {
      absl::MutexLock lock(&mu_);
      auto it = stored_.find(item.id);
      if (it != stored_.end()) {
        event.message = it->second;
        stored_.erase(it);
      }
    }
    event.message.id = item.id;
    event.message.to = item.sender;
    event.message.from = options_.name;
    event.text = "delivered from the mailbox";
    Emit(event);
  } else {
    ::Message proto;
    ChatMessage message;
    if (proto.ParseFromString(item.payload)) message = FromProto(proto);
    message.id = item.id;  // The mailbox's id is the one to acknowledge.
    message.received_at = clock_.Wall();
    if (message.from.empty()) message.from = item.sender;
    if (message.to.empty()) message.to = options_.name;
    if (!ValidateMessageText(message.text).ok()) {
      Emit(ErrorEvent(absl::StrCat("dropped unreadable mail from ",
                                   PrintableText(item.sender))));
    } else if (FirstSighting(message.id)) {
      PeerEvent event = MakeEvent(EventKind::kMessage, message.from);
      event.message = std::move(message);
      event.late = true;
      Emit(event);
    }
  }
  // Shown (or known) now: the mailbox may let it go.
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

absl::StatusOr<SendStatus> Peer::Deliver(const ChatMessage& message,
                                         std::string* why) {
  absl::Status direct = DeliverDirectly(message);
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
  absl::MutexLock lock(&mu_);
  if (stored_.size() < kMaxStoredRemembered) stored_[message.id] = message;
  return SendStatus::kStored;
}

absl::Status Peer::DeliverDirectly(const ChatMessage& message) {
  const ::Message proto = ToProto(message);
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
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
