#include "tests/bench/lab.h"

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/overload.h"
#include "common/random.h"
#include "common/status.h"
#include "common/tls.h"
#include "peer/message.h"
#ifdef CHAT_BENCH_ETCD
#include "registry/etcd/etcd_store.h"
#endif
#include "peer/sealing.h"
#include "proto/chat.grpc.pb.h"
#include "registry/client/registry_client.h"
#include "registry/groups/sqlite_group_store.h"
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/store/sqlite_store.h"

namespace chat::bench {
namespace {

constexpr char kSenderName[] = "bench-sender";
constexpr char kReceiverName[] = "bench-receiver";
constexpr char kGroupName[] = "team";
// How long a group may take to be made and to carry its first message to
// every member.
constexpr absl::Duration kGroupReadyLimit = absl::Seconds(60);
// How long the receiver may take to learn the direct sender's key.
constexpr absl::Duration kFirstContactLimit = absl::Seconds(10);

std::string Numbered(const char* prefix, int i) {
  std::string digits = std::to_string(i);
  return absl::StrCat(
      prefix, std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0'),
      digits);
}

}  // namespace

void SendResults::Expect(const std::string& id, DoneCallback done, int copies) {
  std::string outcome;
  {
    absl::MutexLock lock(&mu_);
    Tally& tally = tallies_[id];
    if (static_cast<int>(tally.recipients.size()) < copies) {
      tally.expected = copies;
      tally.done = std::move(done);
      return;
    }
    outcome = std::move(tally.outcome);
    tallies_.erase(id);
  }
  done(outcome);
}

void SendResults::OnEvent(const peer::PeerEvent& event) {
  // Only the final state counts: kSent comes first, for every message.
  if (event.kind != peer::EventKind::kSendResult ||
      event.status == peer::SendStatus::kSent) {
    return;
  }
  std::string outcome;
  if (event.status == peer::SendStatus::kStored) outcome = "stored";
  if (event.status == peer::SendStatus::kFailed) outcome = "failed";
  DoneCallback done;
  {
    absl::MutexLock lock(&mu_);
    Tally& tally = tallies_[event.message.id];
    // A copy stored in the mailbox may be delivered later: it counted
    // once already, as stored.
    if (!tally.recipients.insert(event.message.to).second) return;
    if (tally.outcome.empty()) tally.outcome = std::move(outcome);
    if (tally.expected == 0 ||
        static_cast<int>(tally.recipients.size()) < tally.expected) {
      return;
    }
    done = std::move(tally.done);
    outcome = std::move(tally.outcome);
    tallies_.erase(event.message.id);
  }
  done(outcome);
}

Lab::Lab() = default;

Lab::~Lab() {
  // Before the directory that holds their files goes.
  floor_.reset();
  register_floor_.reset();
  if (sender_ != nullptr) sender_->Shutdown();
  for (const std::unique_ptr<peer::Peer>& member : members_) {
    member->Shutdown();
  }
  for (const std::unique_ptr<ChildProcess>& member : member_processes_) {
    StopChild(*member, Millis(5000), "chat-peer").IgnoreError();
  }
  if (receiver_ != nullptr) receiver_->Shutdown();
  if (registry_ != nullptr) registry_->Shutdown(Millis(1000));
  if (greeter_server_ != nullptr) {
    StopServer(*greeter_server_, Millis(1000));
    greeter_server_->Wait();
  }
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::unique_ptr<Lab>> Lab::Start(const LabOptions& options) {
  std::unique_ptr<Lab> lab(new Lab());
  lab->options_ = options;
  TlsServerFiles serve;
  TlsClientFiles verify;
  if (!options.tls_dir.empty()) {
    serve.cert_file = options.tls_dir + "/localhost.crt";
    serve.key_file = options.tls_dir + "/localhost.key";
    verify.ca_file = options.tls_dir + "/ca.crt";
  }
  CHAT_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> server_tls,
                        MakeServerCredentials(serve));
  CHAT_ASSIGN_OR_RETURN(lab->credentials_, MakeChannelCredentials(verify));
  if (options.tls_dir.empty()) lab->credentials_ = nullptr;
  ServerConfig config;
  config.listen_address = "127.0.0.1:0";
  config.credentials = server_tls;
  config.services = {&lab->greeter_service_};
  config.health_names = {greeter::kGreetServiceName};
  absl::StatusOr<RunningServer> greeter = StartServer(config);
  if (!greeter.ok()) return greeter.status();
  lab->greeter_server_ = std::move(greeter->server);
  lab->greeter_port_ = greeter->port;
  if (!options.registry && !options.floor && !options.register_floor) {
    return lab;
  }

  std::error_code error;
  lab->dir_ = std::filesystem::temp_directory_path(error) /
              ("chat-bench-" + RandomHex(8));
  if (error || !std::filesystem::create_directories(lab->dir_, error)) {
    return absl::UnavailableError(
        absl::StrCat("cannot create a scratch directory: ", error.message()));
  }
  if (options.floor) {
    absl::StatusOr<std::unique_ptr<DurableFloor>> floor =
        DurableFloor::Start(lab->dir_ / "floor.db", options.peer_sync_full,
                            server_tls, lab->direct_identity_.public_key());
    if (!floor.ok()) return floor.status();
    lab->floor_ = *std::move(floor);
  }
  if (options.register_floor) {
    absl::StatusOr<std::unique_ptr<RegisterFloor>> floor =
        RegisterFloor::Start(lab->dir_ / "register-floor.db", server_tls);
    if (!floor.ok()) return floor.status();
    lab->register_floor_ = *std::move(floor);
  }
  if (!options.registry) return lab;
  const std::string db_path = lab->dir_ / "registry.db";
  // The real registry's defaults (registry/main.cc), except that the bench's
  // own leases may last an hour, so none expires between rounds.
  registry::SqliteStoreOptions store_options;
  // The lab registers every bench name with a few keys, and --names may ask
  // for more static entries than the registry's default allows: no name
  // quota.
  store_options.name_quotas.max_per_key = SIZE_MAX;
  store_options.name_quotas.max_per_client = SIZE_MAX;
  store_options.name_quotas.max_static = SIZE_MAX;
  store_options.lease_policy.max_ttl = kLabLeaseTtl;
  absl::StatusOr<std::unique_ptr<registry::Store>> store;
  if (options.etcd_endpoints.empty()) {
    store = registry::OpenSqliteStore(db_path, RealClock(), store_options);
  } else {
#ifdef CHAT_BENCH_ETCD
    registry::etcd::EtcdStoreOptions etcd_options;
    etcd_options.etcd.endpoints = options.etcd_endpoints;
    etcd_options.prefix = "/chat-bench/" + RandomHex(8) + "/";
    etcd_options.name_quotas = store_options.name_quotas;
    etcd_options.lease_policy = store_options.lease_policy;
    store = registry::etcd::OpenEtcdStore(etcd_options, RealClock());
#else
    store = absl::FailedPreconditionError("built without etcd");
#endif
  }
  if (!store.ok()) return store.status();

  // Every lease is bound to a key, as every registration is now; one key
  // for all of them (a binding costs the same whoever holds it).
  const PublicKey lease_key = Identity::Generate().public_key();
  FillReport& fill = lab->fill_;
  fill.rss_before_mb = ResidentMegabytes();
  const MonoTime fill_start = std::chrono::steady_clock::now();
  for (int i = 0; i < options.static_names; ++i) {
    std::string name = Numbered("static-", i);
    absl::StatusOr<registry::Entry> put =
        (*store)->PutStatic(name, absl::StrCat("127.0.0.1:", 1024 + i % 60000));
    if (!put.ok()) return put.status();
    lab->names_.push_back(std::move(name));
  }
  for (int i = 0; i < options.leases; ++i) {
    registry::RegisterRequest request;
    request.name = Numbered("lease-", i);
    request.address = absl::StrCat("127.0.0.1:", 1024 + i % 60000);
    request.ttl = kLabLeaseTtl;
    request.public_key = lease_key;
    absl::StatusOr<registry::Lease> lease = (*store)->Register(request);
    if (!lease.ok()) return lease.status();
    lab->leases_.push_back({request.name, lease->lease_id});
  }
  fill.seconds = std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - fill_start)
                     .count();
  fill.rss_after_mb = ResidentMegabytes();
  fill.static_names = options.static_names;
  fill.leases = options.leases;

  absl::StatusOr<std::unique_ptr<registry::Mailbox>> mailbox =
      registry::OpenSqliteMailbox(db_path, RealClock());
  if (!mailbox.ok()) return mailbox.status();
  registry::RegistryServerOptions server_options;
  server_options.listen_address = "127.0.0.1:0";
  server_options.credentials = server_tls;
  if (options.group_members > 0) {
    // The peers of this process share one connection to the registry
    // (gRPC's subchannel pool: same target, same arguments), where each
    // real peer has its own; each keeps its Watch and Listen streams open
    // on it, and a group's members would be past the bound per connection
    // long before 64. Room for each as if it were alone.
    server_options.overload.max_streams_per_connection =
        kDefaultMaxStreamsPerConnection * (options.group_members + 2);
  }
  // Groups only where a scenario makes one, so that the others measure
  // the registry they always did.
  std::unique_ptr<registry::GroupStore> groups;
  if (options.group_members > 0) {
    absl::StatusOr<std::unique_ptr<registry::GroupStore>> opened =
        registry::OpenSqliteGroupStore(db_path);
    if (!opened.ok()) return opened.status();
    groups = *std::move(opened);
  }
  absl::StatusOr<std::unique_ptr<registry::RegistryServer>> server =
      registry::RegistryServer::Start(*std::move(store), *std::move(mailbox),
                                      std::move(groups), server_options);
  if (!server.ok()) return server.status();
  lab->registry_ = *std::move(server);
  if (!options.peers) return lab;

  peer::PeerOptions receiver_options;
  receiver_options.name = kReceiverName;
  receiver_options.registry = lab->registry_target();
  receiver_options.listen = "127.0.0.1:0";
  receiver_options.store_path = lab->dir_ / "receiver.db";
  receiver_options.sync_full = options.peer_sync_full;
  receiver_options.tls.serve = serve;
  receiver_options.tls.client = verify;
  receiver_options.tls.peer_name = "localhost";
  absl::StatusOr<std::unique_ptr<peer::Peer>> receiver =
      peer::Peer::Start(receiver_options, &lab->discard_, RealClock());
  if (!receiver.ok()) return receiver.status();
  lab->receiver_ = *std::move(receiver);

  peer::PeerOptions sender_options = receiver_options;
  sender_options.name = kSenderName;
  sender_options.store_path = lab->dir_ / "sender.db";
  absl::StatusOr<std::unique_ptr<peer::Peer>> sender =
      peer::Peer::Start(sender_options, &lab->send_results_, RealClock());
  if (!sender.ok()) return sender.status();
  lab->sender_ = *std::move(sender);
  CHAT_RETURN_IF_ERROR(lab->StartDirectSender());
  if (options.group_members > 0) {
    CHAT_RETURN_IF_ERROR(
        lab->StartGroup(receiver_options, options.group_members));
  }
  return lab;
}

absl::Status Lab::StartGroup(const peer::PeerOptions& member_options,
                             int members) {
  if (members < 2 || members > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("a group has 2 to 64 members, not ", members));
  }
  group_report_.members = members;
  group_report_.apart = options_.group_apart;
  group_report_.threads_before = ProcessThreads();
  group_report_.rss_before_mb = ResidentMegabytes();
  const MonoTime start = std::chrono::steady_clock::now();
  std::vector<std::string> names = {kReceiverName};
  for (int i = 1; i <= members - 2; ++i) {
    peer::PeerOptions options = member_options;
    options.name = absl::StrCat("bench-member-", i);
    options.store_path = dir_ / (options.name + ".db");
    names.push_back(options.name);
    if (options_.group_apart) {
      CHAT_RETURN_IF_ERROR(StartMemberApart(options));
      continue;
    }
    absl::StatusOr<std::unique_ptr<peer::Peer>> member =
        peer::Peer::Start(options, &discard_, RealClock());
    if (!member.ok()) return member.status();
    members_.push_back(*std::move(member));
  }
  absl::StatusOr<std::string> made =
      sender_->ChangeGroup("create", kGroupName, names);
  if (!made.ok()) return made.status();
  group_target_ = absl::StrCat("#", kGroupName);
  // A member takes a message of the group only once it has fetched the
  // state that names it (the change notice brings it); until then the copy
  // waits in the sender's outbox. One message delivered to everyone proves
  // the group is ready.
  absl::StatusOr<std::string> first =
      sender_->Send(group_target_, "the first message, before any is measured");
  if (!first.ok()) return first.status();
  // Shared with the callback, which may come after a timeout here.
  struct FirstDelivery {
    absl::Notification done;
    std::string outcome;
  };
  auto first_delivery = std::make_shared<FirstDelivery>();
  send_results_.Expect(
      *first,
      [first_delivery](const std::string& error) {
        first_delivery->outcome = error;
        first_delivery->done.Notify();
      },
      group_copies());
  if (!first_delivery->done.WaitForNotificationWithTimeout(kGroupReadyLimit)) {
    return absl::UnavailableError(
        absl::StrCat("the first message to ", group_target_,
                     " did not reach all ", group_copies(), " members within ",
                     absl::FormatDuration(kGroupReadyLimit)));
  }
  if (!first_delivery->outcome.empty()) {
    return absl::UnavailableError(
        absl::StrCat("the first message to ", group_target_, " was ",
                     first_delivery->outcome, " for some member"));
  }
  group_report_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  group_report_.threads_after = ProcessThreads();
  group_report_.rss_after_mb = ResidentMegabytes();
  return absl::OkStatus();
}

absl::Status Lab::StartMemberApart(const peer::PeerOptions& member_options) {
  const std::filesystem::path data_dir = dir_ / member_options.name;
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create ", data_dir.string(), ": ", error.message()));
  }
  std::vector<std::string> argv = {
      (std::filesystem::path(options_.bin_dir) / "chat-peer").string(),
      "--name",
      member_options.name,
      "--registry",
      member_options.registry,
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      data_dir.string(),
      "--sync",
      member_options.sync_full ? "full" : "normal",
      "--json"};
  if (!options_.tls_dir.empty()) {
    for (const std::string& arg : std::vector<std::string>{
             "--tls-cert", options_.tls_dir + "/localhost.crt", "--tls-key",
             options_.tls_dir + "/localhost.key", "--tls-ca",
             options_.tls_dir + "/ca.crt", "--tls-peer-name",
             member_options.tls.peer_name}) {
      argv.push_back(arg);
    }
  }
  ChildStart how;
  how.cpus = options_.member_cpus;
  how.ready_line = "\"event\":\"ready\"";
  how.name = member_options.name;
  absl::StatusOr<ReadyChild> started = StartChild(argv, how);
  if (!started.ok()) return started.status();
  member_processes_.push_back(std::move(started->process));
  return absl::OkStatus();
}

CpuTime Lab::Cpu() const {
  CpuTime cpu;
  cpu.own = OwnCpuSeconds();
  for (const std::unique_ptr<ChildProcess>& member : member_processes_) {
    cpu.others += ReadCpuSeconds(std::to_string(member->pid())).value_or(0);
  }
  return cpu;
}

absl::Status Lab::StartDirectSender() {
  // Bound to our key as a peer's name is: the receiver refuses a plain
  // message in a name that is bound to a key, and a sealed one from a name
  // whose key it does not know.
  registry::RegistryClient client(registry_->InProcessChannel(),
                                  registry_target(), Millis(10000));
  absl::StatusOr<registry::Lease> lease = client.Register(
      registry::RegisterRequest(direct_name_, "127.0.0.1:9", kLabLeaseTtl),
      &direct_identity_);
  if (!lease.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot register ", direct_name_,
                                               ": ", lease.status().message()));
  }
  // A gRPC callback thread of the receiver never waits for the registry: a
  // sender it has not met is refused (UNAVAILABLE) until its watch lists
  // the name, which is also when the name is online for it (the key is
  // noted first). Wait for that, then let one message prove it.
  absl::Notification met;
  std::thread watchdog([this, &met] {
    if (!met.WaitForNotificationWithTimeout(kFirstContactLimit)) {
      receiver_->Interrupt();
    }
  });
  const bool online = receiver_->WaitUntilOnline(direct_name_);
  met.Notify();
  watchdog.join();
  if (!online) {
    return absl::UnavailableError(absl::StrCat(
        kReceiverName, " did not see ", direct_name_, " online within ",
        absl::FormatDuration(kFirstContactLimit)));
  }
  PairCipher cipher(direct_identity_);
  peer::ChatMessage first;
  first.id = absl::StrCat("bench-first-", RandomHex(8));
  first.from = direct_name_;
  first.to = receiver_name();
  first.text = "the first message, before any is measured";
  first.sent_at = absl::Now();
  absl::StatusOr<::Message> sealed =
      peer::SealMessage(cipher, receiver_key(), first);
  if (!sealed.ok()) return sealed.status();
  std::unique_ptr<::ChattingService::Stub> stub =
      ::ChattingService::NewStub(grpc::CreateChannel(
          receiver_address(), credentials_ != nullptr
                                  ? credentials_
                                  : grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoSeconds(kFirstContactLimit));
  ::NullMsg reply;
  const grpc::Status sent = stub->SendMessage(&context, *sealed, &reply);
  if (!sent.ok()) {
    return absl::UnavailableError(
        absl::StrCat(kReceiverName, " refused the first message from ",
                     direct_name_, ": ", sent.error_message()));
  }
  return absl::OkStatus();
}

std::string Lab::greeter_target() const {
  return absl::StrCat("127.0.0.1:", greeter_port_);
}

std::string Lab::registry_target() const {
  if (registry_ == nullptr) return "";
  return absl::StrCat("127.0.0.1:", registry_->port());
}

const std::string& Lab::receiver_name() const { return receiver_->name(); }

const std::string& Lab::receiver_address() const {
  return receiver_->address();
}

const PublicKey& Lab::receiver_key() const { return receiver_->public_key(); }

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> NewChannels(
    const std::string& target, int count,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    // Channels with their own subchannel pool and distinct arguments never
    // share a connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("chat.bench.channel", i);
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
        target,
        credentials != nullptr ? credentials
                               : grpc::InsecureChannelCredentials(),
        args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(10))) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", target));
    }
    channels.push_back(std::move(channel));
  }
  return channels;
}

int ProcessThreads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) != 0) continue;
    std::istringstream fields(line.substr(8));
    int threads = 0;
    fields >> threads;
    return threads;
  }
  return 0;
}

double ResidentMegabytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    double kilobytes = 0;
    fields >> kilobytes;
    return kilobytes / 1024;
  }
  return 0;
}

}  // namespace chat::bench
