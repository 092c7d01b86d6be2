// Peer's start-up: Peer::Start opens the store, loads our identity, wires
// the parts and registers our name; then what the last run left is resumed
// and the following begins. The running peer is peer.cc.

#include <grpc/support/log.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "peer/group_text.h"
#include "peer/grpc_transport.h"
#include "peer/peer.h"
#include "peer/peer_internal.h"
#include "registry/names.h"

namespace chat::peer {

using peer_internal::HoldBackTick;
using peer_internal::kHistoryTrimEvery;
using registry::NameKey;

namespace {

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

}  // namespace chat::peer
