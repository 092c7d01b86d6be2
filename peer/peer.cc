#include "peer/peer.h"

#include <grpc/support/log.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_server.h"
#include "common/ids.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "peer/group_text.h"
#include "peer/grpc_transport.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"

namespace chat::peer {

using registry::Entry;
using registry::NameKey;

class Peer::FollowerEvents final : public EventSink {
 public:
  explicit FollowerEvents(EventSink* events) : events_(events) {}

  void OnEvent(const PeerEvent& event) override {
    events_->OnEvent(event);
    if (event.kind == EventKind::kSummary) {
      absl::MutexLock lock(&mu_);
      summarized_ = true;
    }
  }

  // Whether the summary came within `timeout`.
  bool WaitForSummary(const Clock& clock, Millis timeout)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return clock.AwaitFor(&mu_, absl::Condition(&summarized_), timeout);
  }

 private:
  EventSink* const events_;  // Not owned.
  absl::Mutex mu_;
  bool summarized_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

// How often the history's age limit is applied (also at start).
constexpr absl::Duration kHistoryTrimEvery = absl::Hours(1);

// How often the hold-back loop runs: a few times per limit, so a held
// message waits at most ~1.25x it.
Millis HoldBackTick(Millis hold_back) {
  return std::max(hold_back / 4, Millis(10));
}

// The key the registry binds `name` to now, as KeyBook's directory says it.
absl::StatusOr<std::optional<PublicKey>> BoundKey(
    registry::RegistryClient& registry, const std::string& name) {
  absl::StatusOr<registry::Binding> binding = registry.GetBinding(name);
  // kUnimplemented: a registry from before keys, which binds nothing.
  if (binding.status().code() == absl::StatusCode::kNotFound ||
      binding.status().code() == absl::StatusCode::kUnimplemented) {
    return std::optional<PublicKey>();
  }
  if (!binding.ok()) return binding.status();
  return std::optional<PublicKey>(binding->key);
}

// The peer's store; kAlreadyExists when another chat-peer of this name
// holds it, kFailedPrecondition when it cannot be opened otherwise.
absl::StatusOr<std::unique_ptr<PeerStore>> OpenStore(const PeerOptions& options,
                                                     const Clock& clock) {
  absl::StatusOr<std::unique_ptr<PeerStore>> store = OpenPeerStore(
      options.store_path, clock, options.sync_full, options.store_limits);
  if (store.ok()) return store;
  // Another chat-peer of this name on this data directory: the name is
  // taken here, as it would be in the registry (exit 1, not "cannot
  // start"), said in words a person can act on.
  if (std::optional<int64_t> pid = LockHolderPid(store.status())) {
    return absl::AlreadyExistsError(absl::StrCat(
        options.name, " is already running here",
        *pid > 0 ? absl::StrCat(" (pid ", *pid, ")") : std::string()));
  }
  return absl::FailedPreconditionError(std::string(store.status().message()));
}

// Our identity, from PeerOptions::identity_path (or beside the store), or
// a new one kept nowhere for an in-memory store. Errors as
// Identity::LoadOrCreate.
absl::StatusOr<std::unique_ptr<Identity>> LoadIdentity(
    const PeerOptions& options) {
  std::string identity_path = options.identity_path;
  if (identity_path.empty() && options.store_path != ":memory:") {
    identity_path = std::filesystem::path(options.store_path)
                        .replace_extension(".key")
                        .string();
  }
  if (identity_path.empty()) {
    return std::make_unique<Identity>(Identity::Generate());
  }
  CHAT_ASSIGN_OR_RETURN(Identity identity,
                        Identity::LoadOrCreate(identity_path));
  return std::make_unique<Identity>(std::move(identity));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Peer>> Peer::Start(const PeerOptions& options,
                                                  EventSink* events,
                                                  const Clock& clock) {
  CHAT_RETURN_IF_ERROR(registry::ValidateName(options.name));
  CHAT_RETURN_IF_ERROR(
      registry::ParseRegistryAddresses(options.registry).status());
  if (!options.advertise.empty()) {
    CHAT_RETURN_IF_ERROR(registry::ValidateAddress(options.advertise));
  }
  std::unique_ptr<Peer> peer(new Peer(options, events, clock));
  // The registry client, the lease keeper and the hold-back loop take
  // callbacks, not interfaces: each calls one named method of it.
  Peer* raw = peer.get();

  // The store, and what writes our messages' states into its history.
  CHAT_ASSIGN_OR_RETURN(peer->store_, OpenStore(options, clock));
  PeerStore& roles = *peer->store_;
  // From here on every event about a group carries the group's label.
  peer->labeler_ = std::make_unique<GroupLabelingSink>(&roles.groups(), events);
  events = peer->labeler_.get();
  peer->events_ = events;
  peer->recorder_ = std::make_unique<HistoryRecorder>(&roles.history(), events);
  roles.history().Trim();  // Then hourly, on the hold-back loop.

  // Who we are.
  CHAT_ASSIGN_OR_RETURN(peer->identity_, LoadIdentity(options));

  // The registry.
  CHAT_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> channel_tls,
                        MakeChannelCredentials(options.tls.client));
  CHAT_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> server_tls,
                        MakeServerCredentials(options.tls.serve));
  peer->registry_ = registry::RegistryClient::Connect(
      options.registry, options.rpc_timeout, Millis(1000), channel_tls);
  registry::RegistryClient* const registry = peer->registry_.get();
  // Registration proofs are dated on the peer's clock.
  registry->SetClock(clock);
  registry->SetSwitchListener(
      [raw](const std::string& from, const std::string& to,
            const absl::Status& why) { raw->RegistrySwitched(from, to, why); });

  // Whom we follow, whose keys we trust, how we seal.
  CHAT_ASSIGN_OR_RETURN(std::vector<Contact> contacts,
                        roles.contacts().Contacts());
  Contacts::Options contact_options;
  contact_options.own_name = options.name;
  contact_options.max_followed = std::max<size_t>(options.max_followed, 1);
  peer->contacts_ = std::make_unique<Contacts>(
      &roles.contacts(), std::move(contacts), contact_options, clock);
  for (const std::string& name : options.follow) {
    CHAT_RETURN_IF_ERROR(peer->contacts_->Follow(name));
  }
  CHAT_ASSIGN_OR_RETURN(std::vector<Pin> pins, roles.pins().Pins());
  const OnlineSet* const online = &peer->online_;
  KeyBook::Options key_options;
  key_options.directory = [registry](const std::string& name) {
    return BoundKey(*registry, name);
  };
  key_options.is_static = [online](const std::string& name) {
    return online->IsStatic(name);
  };
  key_options.events = events;
  peer->keys_ = std::make_unique<KeyBook>(&roles.pins(), std::move(pins),
                                          std::move(key_options), clock);
  peer->envelope_ = std::make_unique<Envelope>(options.name, *peer->identity_,
                                               peer->keys_.get(), clock);

  // Our groups, and the gate every arriving group message passes.
  peer->WireGroups();

  // How messages go to other peers: to the address the watch keeps fresh
  // for those followed (so an outage does not stop a conversation), else
  // the one the registry resolves, whose key the book compares first.
  GrpcTransportOptions transport_options;
  transport_options.rpc_timeout = options.rpc_timeout;
  transport_options.dialing = PeerDialing{
      channel_tls, options.tls.client.enabled(), options.tls.peer_name};
  transport_options.max_channels = std::max<size_t>(options.max_channels, 1);
  transport_options.online = online;
  transport_options.listings = peer->keys_.get();
  peer->transport_ = NewGrpcTransport(registry, peer->envelope_.get(),
                                      std::move(transport_options));
  Transport* const transport = peer->transport_.get();

  // Where our messages' states go: the read tracker, then the history,
  // then the front end.
  CHAT_ASSIGN_OR_RETURN(std::vector<ReadNote> read_notes,
                        roles.read_notes().ReadNotes());
  ReadTracker::Options read_options;
  read_options.own_name = options.name;
  read_options.enabled = options.read_receipts;
  read_options.retry = options.read_receipt_retry;
  read_options.envelope = peer->envelope_.get();
  read_options.send_direct = [transport](const std::string& to,
                                         const ::ReadReceipts& receipts) {
    return transport->SendReadReceipts(to, receipts);
  };
  read_options.deposit = [registry](const registry::MailItem& item) {
    return registry->Deposit(item);
  };
  peer->reads_ = std::make_unique<ReadTracker>(
      peer->recorder_.get(), &roles.read_notes(), &roles.outbox(),
      std::move(read_notes), clock, std::move(read_options));

  // What arrives: strangers limited, then the inbox (Accept).
  peer->strangers_ =
      std::make_unique<StrangerGate>(options.strangers, events, clock);
  peer->service_ = std::make_unique<ChatService>(
      options.name, static_cast<MessageSink*>(peer.get()), clock,
      peer->envelope_.get(), &DefaultCallGate(), peer->reads_.get());
  ServerConfig config;
  config.listen_address = options.listen;
  config.services = {peer->service_.get()};
  config.health_names = {"ChattingService"};
  config.max_streams_per_connection = kPeerMaxStreamsPerConnection;
  config.credentials = server_tls;
  SupervisorOptions supervisor;
  // Through gRPC's logger: it goes where gRPC's own "Failed accept4" line
  // went, not onto the chat screen.
  supervisor.on_event = [](const std::string& line) {
    gpr_log(GPR_ERROR, "%s", line.c_str());
  };
  CHAT_ASSIGN_OR_RETURN(peer->server_,
                        SupervisedServer::Start(config, std::move(supervisor)));

  // Our name in the registry, kept.
  registry::LeaseKeeper::Options keeper_options;
  keeper_options.name = options.name;
  keeper_options.address = options.advertise;
  keeper_options.listen = options.listen;
  keeper_options.port = peer->server_->port();
  keeper_options.ttl = options.ttl;
  keeper_options.services = {registry::kChatService};
  keeper_options.reclaim_lease_id = roles.lease().SavedLeaseId();
  keeper_options.identity = peer->identity_.get();
  // Without it a restart after a crash waits for the old lease to expire.
  keeper_options.on_lease = [lease =
                                 &roles.lease()](const std::string& lease_id) {
    lease->SaveLeaseId(lease_id).IgnoreError();
  };
  keeper_options.on_change = [events](const std::string& text) {
    events->OnEvent(InfoEvent(text));
  };
  keeper_options.on_reachable = [raw](bool reachable,
                                      const absl::Status& status) {
    raw->RegistryReachable(reachable, status);
  };
  absl::StatusOr<std::unique_ptr<registry::LeaseKeeper>> keeper =
      registry::LeaseKeeper::Start(registry, keeper_options, clock);
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
  ready.fingerprint = Fingerprint(peer->identity_->public_key());
  peer->Emit(ready);

  // What the last run left: shown and sent again.
  CHAT_RETURN_IF_ERROR(peer->ResumeLastRun());

  // Who of those followed is online, and our mailbox.
  peer->StartFollowing();

  // Held messages released when they waited long enough; the history's
  // age; strangers refused.
  peer->next_history_trim_ = clock.Wall() + kHistoryTrimEvery;
  peer->hold_back_.emplace(clock, HoldBackTick(options.hold_back),
                           [raw] { return raw->HoldBackRound(); });

  // Know who is online before returning, so every later arrival is news
  // and --peer does not wait for someone already here. Bounded: a slow
  // registry only delays the first snapshot.
  peer->online_.WaitUntilSynced(clock, options.rpc_timeout);
  // And until the summary of that snapshot is out, so that what the front
  // end prints next (the partner line) comes after it.
  peer->follower_events_->WaitForSummary(clock, options.rpc_timeout);

  return peer;
}

absl::Status Peer::ResumeLastRun() {
  absl::StatusOr<std::vector<ChatMessage>> unshown = store_->inbox().Unshown();
  if (unshown.ok()) Release(*unshown, /*repeated=*/true);
  CHAT_ASSIGN_OR_RETURN(std::vector<OutboxEntry> outbox,
                        store_->outbox().Entries());
  // Each recipient's messages in one go (the outbox lists them together,
  // in order), so the first window can carry them all.
  std::vector<std::vector<ChatMessage>> runs;
  size_t resent = 0;
  for (OutboxEntry& entry : outbox) {
    // Stored ones wait in a mailbox; their receipts will come.
    if (entry.stored) continue;
    if (runs.empty() ||
        NameKey(runs.back().front().to) != NameKey(entry.message.to)) {
      runs.emplace_back();
    }
    runs.back().push_back(std::move(entry.message));
    ++resent;
  }
  {
    absl::MutexLock lock(&mu_);
    for (std::vector<ChatMessage>& run : runs) {
      QueueLocked(std::move(run), /*to_partner=*/false);
    }
  }
  if (resent > 0) {
    Emit(InfoEvent(absl::StrCat("sending ", resent,
                                resent == 1 ? " message" : " messages",
                                " left in your outbox")));
  }
  return absl::OkStatus();
}

void Peer::StartFollowing() {
  RegistryFollower::Options follower_options;
  follower_options.own_name = options_.name;
  follower_options.contacts = contacts_.get();
  follower_options.presence = this;
  follower_options.listings = keys_.get();
  follower_options.quiet_when_unreachable = true;
  follower_events_ = std::make_unique<FollowerEvents>(events_);
  follower_ = std::make_unique<RegistryFollower>(registry_.get(), &online_,
                                                 follower_events_.get(), clock_,
                                                 std::move(follower_options));
  MailListener::Options mail_options;
  mail_options.own_name = options_.name;
  mail_options.keeper = keeper_.get();
  mail_options.envelope = envelope_.get();
  mail_options.released = this;
  mail_options.deliveries = reads_.get();
  mail_options.read_receipts = reads_.get();
  mail_ = std::make_unique<MailListener>(registry_.get(), mail_inbox_.get(),
                                         &store_->outbox(), events_, clock_,
                                         std::move(mail_options));
}

Peer::Peer(PeerOptions options, EventSink* events, const Clock& clock)
    : options_(std::move(options)), events_(events), clock_(clock) {}

Peer::~Peer() { Shutdown(); }

absl::StatusOr<std::string> Peer::Send(const std::string& to,
                                       const std::string& text,
                                       bool to_partner) {
  if (IsGroupTarget(to)) return SendToGroup(to, text, to_partner);
  CHAT_RETURN_IF_ERROR(registry::ValidateName(to));
  CHAT_RETURN_IF_ERROR(ValidateMessageText(text));
  CHAT_RETURN_IF_ERROR(CheckRecipient(to));
  contacts_->Talked(to);  // Whom we write to we follow.
  ChatMessage message = NewMessage(text);
  message.to = to;
  std::string id = message.id;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::FailedPreconditionError("the peer is shutting down");
    }
  }
  // Written to the outbox before the first attempt; many sends share one
  // commit. Callbacks come in call order, so the queue keeps that order.
  store_->outbox().Add(
      std::move(message),
      [this, to, to_partner](absl::StatusOr<ChatMessage> added) {
        PeerEvent event = MakeEvent(EventKind::kSendResult, to);
        event.to_partner = to_partner;
        if (!added.ok()) {
          event.status = SendStatus::kFailed;
          event.text = "could not write it to your outbox";
          event.detail = added.status().ToString();
          reads_->OnSendState(event);
          return;
        }
        event.status = SendStatus::kSent;
        event.message = *added;
        reads_->OnSendState(event);
        absl::MutexLock lock(&mu_);
        // Shutting down: it waits in the outbox for the next start.
        if (!stopping_) QueueLocked({*added}, to_partner);
      });
  return id;
}

ChatMessage Peer::NewMessage(const std::string& text) const {
  ChatMessage message;
  message.sent_at = clock_.Wall();
  message.id = NewUuidV7(message.sent_at);
  message.from = options_.name;
  message.text = text;
  message.lab_time = LabTime(message.sent_at);
  return message;
}

void Peer::QueueLocked(std::vector<ChatMessage> messages, bool to_partner) {
  if (messages.empty()) return;
  const std::string to = messages.front().to;
  std::unique_ptr<Conversation>& conversation = conversations_[NameKey(to)];
  if (conversation == nullptr) {
    Conversation::Options conversation_options;
    conversation_options.to = to;
    conversation_options.retry_min = options_.retry_min;
    conversation_options.retry_max = options_.retry_max;
    conversation = std::make_unique<Conversation>(
        std::move(conversation_options), transport_.get(), &store_->outbox(),
        static_cast<RecipientDirectory*>(this), reads_.get(), events_, clock_);
  }
  conversation->Enqueue(std::move(messages), to_partner);
}

size_t Peer::Window(const std::string& to) {
  // A static entry is how a lab peer (or another program that knows no
  // sequence numbers) gets a name: it shows messages as they arrive, so
  // they must arrive in order, one at a time.
  // A name the watch has not listed (yet) may be one too: one at a time
  // until it is known.
  std::optional<Entry> online = online_.Find(to);
  return online.has_value() && !online->is_static ? kSendWindow : 1;
}

bool Peer::IsStatic(const std::string& to) {
  // A lab peer reads no mailbox: its messages wait in the outbox.
  // Asked only when a message could not be delivered; a name the watch
  // has not listed yet (just followed) is asked of the registry.
  std::optional<Entry> online = online_.Find(to);
  if (online.has_value()) return online->is_static;
  absl::StatusOr<Entry> resolved = registry_->Resolve(to);
  return resolved.ok() && resolved->is_static;
}

void Peer::OnMoved(const std::string& name) { transport_->Forget(name); }

void Peer::RegistrySwitched(const std::string& from, const std::string& to,
                            const absl::Status& why) {
  PeerEvent event = InfoEvent(absl::StrCat(
      "the registry at ", from, " is unreachable; using the one at ", to));
  event.detail = why.ToString();
  Emit(event);
}

void Peer::RegistryReachable(bool reachable, const absl::Status& status) {
  // The one source of "the registry is away / back": the keeper asks it
  // on its own schedule, whether or not anyone sends or is followed, so
  // the user hears it once each way, not once per message or stream.
  PeerEvent event =
      InfoEvent(reachable ? kRegistryBackNotice : kRegistryAwayNotice);
  if (!status.ok()) event.detail = status.ToString();
  Emit(event);
  // What waited for a resolve or the mailbox can go now.
  if (reachable) NudgeAll();
}

std::optional<Millis> Peer::HoldBackRound() {
  TrimHistoryWhenDue();  // The same loop keeps the history's age.
  GrantLeaveRequests();  // And takes out those who asked to leave.
  strangers_->Tick();    // And tells what strangers were refused.
  store_->inbox().ReleaseOverdue(absl::FromChrono(options_.hold_back),
                                 [this](absl::StatusOr<Received> received) {
                                   if (!received.ok()) return;
                                   Release(received->ready, /*repeated=*/false);
                                 });
  return HoldBackTick(options_.hold_back);
}

namespace {

absl::Status NotChatPeer(const Entry& entry) {
  return absl::FailedPreconditionError(
      absl::StrCat(entry.name, " is not a chat peer (it offers: ",
                   absl::StrJoin(entry.services, ", "), ")"));
}

}  // namespace

absl::Status Peer::CheckRecipient(const std::string& to) {
  if (std::optional<Entry> online = online_.Find(to); online.has_value()) {
    return registry::OffersChat(online->services) ? absl::OkStatus()
                                                  : NotChatPeer(*online);
  }
  if (contacts_->Follows(to) || keys_->IsPinned(to)) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (conversations_.contains(NameKey(to))) return absl::OkStatus();
  }
  // A name new to us: rare (a first message, or a typo), so it may cost a
  // call or two; the registry away is no reason to refuse it.
  return AskRegistryAbout(to);
}

absl::Status Peer::RecipientExists(const std::string& to) {
  if (keys_->IsPinned(to)) return absl::OkStatus();  // Bound to a key.
  absl::Status known = AskRegistryAbout(to);
  return known.code() == absl::StatusCode::kNotFound ? known : absl::OkStatus();
}

absl::Status Peer::AskRegistryAbout(const std::string& to) {
  absl::StatusOr<Entry> entry = registry_->Resolve(to);
  if (entry.ok()) {
    return registry::OffersChat(entry->services) ? absl::OkStatus()
                                                 : NotChatPeer(*entry);
  }
  if (entry.status().code() != absl::StatusCode::kNotFound) {
    return absl::OkStatus();
  }
  absl::StatusOr<registry::Binding> binding = registry_->GetBinding(to);
  if (binding.status().code() != absl::StatusCode::kNotFound) {
    return absl::OkStatus();  // Bound (offline, reserved), or unknown now.
  }
  return absl::NotFoundError(
      absl::StrCat("nobody named ", to,
                   " is registered; check the name (/peers lists who is "
                   "online)"));
}

void Peer::Nudge(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = conversations_.find(NameKey(name));
  if (it != conversations_.end()) it->second->Nudge();
}

void Peer::NudgeAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, conversation] : conversations_) conversation->Nudge();
}

absl::StatusOr<registry::ListPage> Peer::ListPeers(
    const std::string& page_token, int page_size) {
  return registry_->List("", std::max(page_size, 1), page_token,
                         registry::kChatService);
}

absl::Status Peer::Follow(const std::string& name) {
  return contacts_->Follow(name);
}

bool Peer::Unfollow(const std::string& name) {
  return contacts_->Unfollow(name);
}

std::vector<std::string> Peer::Followed() { return contacts_->Followed(); }

std::vector<Entry> Peer::FollowedOnline() {
  std::vector<Entry> online;
  for (const std::string& name : contacts_->Followed()) {
    std::optional<Entry> entry = online_.Find(name);
    if (entry.has_value()) online.push_back(*std::move(entry));
  }
  return online;
}

std::vector<std::string> Peer::CompletionNames() {
  std::vector<std::string> names;
  for (std::string& name : contacts_->Followed()) {
    std::optional<Entry> entry = online_.Find(name);
    if (entry.has_value() && !registry::OffersChat(entry->services)) continue;
    names.push_back(std::move(name));
  }
  return names;
}

void Peer::TrimHistoryWhenDue() {
  if (clock_.Wall() < next_history_trim_) return;
  next_history_trim_ = clock_.Wall() + kHistoryTrimEvery;
  store_->history().Trim();
}

absl::StatusOr<std::string> Peer::ConversationTarget(const std::string& name) {
  if (IsGroupTarget(name)) {
    CHAT_ASSIGN_OR_RETURN(GroupTarget group, FindGroup(name));
    return GroupConversation(group.group_id);
  }
  CHAT_RETURN_IF_ERROR(registry::ValidateName(name));
  return name;
}

absl::StatusOr<HistoryPage> Peer::History(const std::string& name, int limit) {
  CHAT_ASSIGN_OR_RETURN(std::string target, ConversationTarget(name));
  return store_->history().Page(target, limit);
}

absl::StatusOr<int64_t> Peer::ForgetHistory(const std::string& name) {
  CHAT_ASSIGN_OR_RETURN(std::string target, ConversationTarget(name));
  return store_->history().Forget(target);
}

KeyView Peer::Verify(const std::string& name) { return keys_->Verify(name); }

absl::StatusOr<KeyView> Peer::Trust(const std::string& name) {
  absl::StatusOr<KeyView> trusted = keys_->Trust(name);
  if (trusted.ok()) {
    // What waited for the new key goes now; what came from it while it was
    // not trusted waits in our mailbox, unacknowledged: read it again.
    Nudge(name);
    if (mail_ != nullptr) mail_->Reread();
  }
  return trusted;
}

void Peer::MarkRead(const std::string& name) {
  if (reads_ == nullptr) return;
  if (!IsGroupTarget(name)) {
    reads_->MarkRead(name);
    return;
  }
  // A group the user no longer has (or names ambiguously) has nothing
  // shown to read.
  absl::StatusOr<GroupTarget> group = FindGroup(name);
  if (group.ok()) reads_->MarkGroupRead(group->group_id);
}

bool Peer::IsOnline(const std::string& name) {
  return online_.Find(name).has_value();
}

bool Peer::WaitUntilOnline(const std::string& name) {
  // Only those followed are watched; a bad name or a full set is never
  // online to us.
  if (!contacts_->Follow(name).ok()) return online_.Find(name).has_value();
  return online_.WaitUntilOnline(name);
}

void Peer::Interrupt() { online_.StopWaiting(); }

void Peer::Shutdown() {
  absl::flat_hash_map<std::string, std::unique_ptr<Conversation>> draining;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    draining = std::move(conversations_);
  }
  online_.StopWaiting();
  if (follower_ != nullptr) follower_->Stop();
  if (mail_ != nullptr) mail_->Stop();
  draining.clear();  // Each conversation tries what it holds, then ends.
  if (reads_ != nullptr) reads_->Stop();  // What is owed stays noted.
  if (hold_back_.has_value()) hold_back_->Stop();
  if (keeper_ != nullptr) keeper_->Stop();  // Unregisters.
  // Arrivals waiting for a group state are answered before the server
  // waits for every answer.
  if (direct_inbox_ != nullptr) direct_inbox_->Stop();
  if (server_ != nullptr) server_->Stop(Millis(1000));
}

void Peer::Accept(const ChatMessage& message, AcceptCallback done) {
  // A stranger's plain message is refused before it is kept, so the sender
  // hears it was not taken: nothing acknowledged is lost.
  if (message.unverified && !contacts_->Knows(message.from)) {
    if (absl::Status admitted =
            strangers_->Admit(message.from, message.source_host);
        !admitted.ok()) {
      done(admitted);
      return;
    }
  }
  // Kept durably first, then shown, then acknowledged: a sender that hears
  // OK may forget the message. A retry or copy is acknowledged, shown once.
  direct_inbox_->Receive(message, [this, done = std::move(done)](
                                      absl::StatusOr<Received> received) {
    if (!received.ok()) {
      done(absl::UnavailableError(absl::StrCat(
          "the recipient cannot keep it now: ", received.status().message())));
      return;
    }
    Release(received->ready, /*repeated=*/false);
    done(absl::OkStatus());
  });
}

void Peer::Release(const std::vector<ChatMessage>& messages, bool repeated) {
  if (messages.empty()) return;
  std::vector<ReadNote> unread;
  for (const ChatMessage& message : messages) {
    // Whom we hear from we follow, unless nothing proves who it is and we
    // never talked with it: a stranger's name (or thousands of them) must
    // not push out those the user follows.
    if (!message.unverified || contacts_->Knows(message.from)) {
      contacts_->Talked(message.from);
    }
    Show(message, repeated);
    // A group's message is read in the group's conversation; its receipt
    // goes to its sender alone.
    if (std::optional<ReadNote> note = reads_->Shown(message)) {
      unread.push_back(*std::move(note));
    }
  }
  // After they were shown: a run killed before this shows them again
  // (Unshown, `repeated`), never loses them.
  store_->inbox().MarkShown(messages, unread);
}

void Peer::Show(const ChatMessage& message, bool repeated) {
  // A change notice is shown as the change it announced, when the gate
  // verified it (OnGroupAdvanced); its own text is for programs without
  // groups.
  if (message.group_change) return;
  // A request to leave is granted, not shown.
  if (message.group_leave) {
    OnLeaveRequest(message);
    return;
  }
  PeerEvent event = MakeEvent(EventKind::kMessage, message.from);
  if (message.unverified) {
    std::vector<std::string> known = contacts_->Followed();
    std::vector<std::string> pinned = keys_->PinnedNames();
    known.insert(known.end(), pinned.begin(), pinned.end());
    known.push_back(options_.name);
    event.looks_like = lookalikes_.Imitated(message.from, known);
  }
  event.message = message;
  event.repeated = repeated;
  Emit(event);
}

}  // namespace chat::peer
