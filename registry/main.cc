// chat-registry: the name server. Parses options, opens the store, serves
// until SIGINT/SIGTERM.

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/overload.h"
#include "common/private_files.h"
#include "common/program.h"
#include "common/signals.h"
#include "common/tls_options.h"
#include "registry/admin_token.h"
#include "registry/groups/group_store_rules.h"
#include "registry/groups/sqlite_group_store.h"
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/quotas.h"
#include "registry/server/server.h"
#include "registry/server/stream_limits.h"
#include "registry/store/sqlite_store.h"
#ifdef CHAT_ETCD
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/etcd_group_store.h"
#include "registry/etcd/etcd_layout.h"
#include "registry/etcd/etcd_mailbox.h"
#include "registry/etcd/etcd_store.h"
#endif

namespace po = boost::program_options;

namespace {

constexpr int kExitCannotStart = 1;

// "30d", "12h", "90m", "45s", or a bare number of `bare_unit`s.
std::optional<absl::Duration> ParseDuration(const std::string& text,
                                            absl::Duration bare_unit) {
  if (text.empty()) return std::nullopt;
  absl::Duration unit = bare_unit;
  std::string number = text;
  switch (text.back()) {
    case 'd':
      number.pop_back();
      break;
    case 'h':
      unit = absl::Hours(1);
      number.pop_back();
      break;
    case 'm':
      unit = absl::Minutes(1);
      number.pop_back();
      break;
    case 's':
      unit = absl::Seconds(1);
      number.pop_back();
      break;
    default:
      break;
  }
  int64_t count = 0;
  if (!absl::SimpleAtoi(number, &count) || count < 0) return std::nullopt;
  return unit * count;
}

// Makes the database's directory, private, when it does not exist yet; a
// directory that exists is the operator's and is left as it is.
absl::Status EnsureDatabaseDir(const std::string& db_path) {
  if (db_path == ":memory:") return absl::OkStatus();
  const std::filesystem::path dir =
      std::filesystem::path(db_path).parent_path();
  std::error_code error;
  if (dir.empty() || std::filesystem::exists(dir, error)) {
    return absl::OkStatus();
  }
  return chat::EnsurePrivateDir(dir.string());
}

// Limits: overload. false (and a message) for values out of range.
bool ParseOverloadOptions(const po::variables_map& vm,
                          chat::OverloadOptions* overload) {
  overload->max_calls_in_progress = vm["max-calls-in-progress"].as<int>();
  overload->max_streams_per_connection =
      vm["max-streams-per-connection"].as<int>();
  const int late_target_ms = vm["late-target-ms"].as<int>();
  overload->late_target = chat::Millis(late_target_ms);
  overload->log = &chat::RouteLibraryLogs("registry");
  if (overload->max_calls_in_progress < 0 ||
      overload->max_streams_per_connection < 1 || late_target_ms < 0) {
    std::cerr << "chat-registry: need --max-calls-in-progress >= 0 (0: no "
                 "bound), --max-streams-per-connection >= 1 and "
                 "--late-target-ms >= 0 (0: no shedding)\n";
    return false;
  }
  return true;
}

// Limits: Watch and Listen streams
void AddStreamLimitOptions(
    po::options_description& options,
    std::vector<std::pair<std::string, std::string>>& environment) {
  const chat::registry::StreamLimits defaults;
  options.add_options()("max-watch-names",
                        po::value<int>()->default_value(
                            static_cast<int>(defaults.max_watch_names)),
                        "names one Watch may ask for (WatchRequest.names)")(
      "max-watch-backlog-kb",
      po::value<int>()->default_value(
          static_cast<int>(defaults.watch_backlog_bytes / 1024)),
      "KiB of changes that may wait for one Watch stream; a watcher further "
      "behind is ended (RESOURCE_EXHAUSTED) and watches again")(
      "watch-history",
      po::value<int>()->default_value(
          static_cast<int>(chat::registry::kDefaultWatchHistory)),
      "recent changes kept so a Watch that was lost resumes from its last "
      "revision without a snapshot (WatchRequest.revision); 0 keeps none")(
      "max-watch-streams-per-client",
      po::value<int>()->default_value(
          static_cast<int>(defaults.max_watch_streams_per_client)),
      "Watch streams one client host may hold open at once")(
      "max-listen-streams-per-client",
      po::value<int>()->default_value(
          static_cast<int>(defaults.max_listen_streams_per_client)),
      "Listen streams one client host may hold open at once")(
      "max-listen-streams-per-lease",
      po::value<int>()->default_value(
          static_cast<int>(defaults.max_listen_streams_per_lease)),
      "Listen streams one lease may hold open at once");
  environment.insert(
      environment.end(),
      {{"CHAT_REGISTRY_MAX_WATCH_NAMES", "max-watch-names"},
       {"CHAT_REGISTRY_MAX_WATCH_BACKLOG_KB", "max-watch-backlog-kb"},
       {"CHAT_REGISTRY_WATCH_HISTORY", "watch-history"},
       {"CHAT_REGISTRY_MAX_WATCH_STREAMS_PER_CLIENT",
        "max-watch-streams-per-client"},
       {"CHAT_REGISTRY_MAX_LISTEN_STREAMS_PER_CLIENT",
        "max-listen-streams-per-client"},
       {"CHAT_REGISTRY_MAX_LISTEN_STREAMS_PER_LEASE",
        "max-listen-streams-per-lease"}});
}

// The stream limits of `vm`, or nullopt after printing why they are wrong.
std::optional<chat::registry::StreamLimits> ParseStreamLimits(
    const po::variables_map& vm) {
  chat::registry::StreamLimits limits;
  const int max_watch_names = vm["max-watch-names"].as<int>();
  const int backlog_kb = vm["max-watch-backlog-kb"].as<int>();
  const int watch_per_client = vm["max-watch-streams-per-client"].as<int>();
  const int listen_per_client = vm["max-listen-streams-per-client"].as<int>();
  const int listen_per_lease = vm["max-listen-streams-per-lease"].as<int>();
  if (max_watch_names < 1 || backlog_kb < 1 || watch_per_client < 1 ||
      listen_per_client < 1 || listen_per_lease < 1) {
    std::cerr << "chat-registry: stream limits must be at least 1\n";
    return std::nullopt;
  }
  limits.max_watch_names = static_cast<size_t>(max_watch_names);
  limits.watch_backlog_bytes = static_cast<size_t>(backlog_kb) * 1024;
  limits.max_watch_streams_per_client = static_cast<size_t>(watch_per_client);
  limits.max_listen_streams_per_client = static_cast<size_t>(listen_per_client);
  limits.max_listen_streams_per_lease = static_cast<size_t>(listen_per_lease);
  return limits;
}

// Limits: names and mailbox (quota). The mailbox's total, unless given, is
// a quarter of what is free where the database lives (at most 1 GiB, at
// least 1 MiB): mail never takes the room the names need.
std::optional<chat::registry::Quotas> ParseQuotas(const po::variables_map& vm) {
  chat::registry::Quotas quotas;
  const std::vector<std::string> positive = {"max-names-per-key",
                                             "max-names-per-client",
                                             "max-static-names",
                                             "mailbox-max-messages",
                                             "mailbox-max-mb",
                                             "mailbox-max-age-days",
                                             "mailbox-max-sender-messages",
                                             "mailbox-max-sender-mb"};
  for (const std::string& name : positive) {
    if (vm[name].as<int>() < 1) {
      std::cerr << "chat-registry: --" << name << " must be at least 1\n";
      return std::nullopt;
    }
  }
  const auto at = [&vm](const char* name) {
    return static_cast<size_t>(vm[name].as<int>());
  };
  constexpr size_t kMiB = 1024 * 1024;
  quotas.names.max_per_key = at("max-names-per-key");
  quotas.names.max_per_client = at("max-names-per-client");
  quotas.names.max_static = at("max-static-names");
  chat::registry::MailboxLimits& mail = quotas.mailbox;
  mail.max_items = at("mailbox-max-messages");
  mail.max_bytes = at("mailbox-max-mb") * kMiB;
  mail.max_age = absl::Hours(24) * vm["mailbox-max-age-days"].as<int>();
  mail.max_items_per_sender = at("mailbox-max-sender-messages");
  mail.max_bytes_per_sender = at("mailbox-max-sender-mb") * kMiB;
  const int total_mb = vm["mailbox-max-total-mb"].as<int>();
  if (total_mb < 0) {
    std::cerr << "chat-registry: --mailbox-max-total-mb must be 0 (auto) or "
                 "more\n";
    return std::nullopt;
  }
  // 0: decided by the caller once the database's directory exists.
  mail.max_total_bytes = static_cast<size_t>(total_mb) * kMiB;
  return quotas;
}

// Limits: groups (the registry's store of their states, and what one state
// may hold).
struct GroupOptions {
  chat::registry::GroupStoreLimits store;
  chat::registry::GroupLimits state;
};
std::optional<GroupOptions> ParseGroupOptions(const po::variables_map& vm) {
  for (const char* name :
       {"max-groups", "max-group-versions", "max-group-state-kb",
        "max-groups-per-owner", "max-group-members"}) {
    if (vm[name].as<int>() < 1) {
      std::cerr << "chat-registry: --" << name << " must be at least 1\n";
      return std::nullopt;
    }
  }
  GroupOptions options;
  options.store.max_groups = static_cast<size_t>(vm["max-groups"].as<int>());
  options.store.max_versions_per_group = vm["max-group-versions"].as<int>();
  options.store.max_state_bytes =
      static_cast<size_t>(vm["max-group-state-kb"].as<int>()) * 1024;
  options.store.max_groups_per_owner =
      static_cast<size_t>(vm["max-groups-per-owner"].as<int>());
  options.state.max_members = vm["max-group-members"].as<int>();
  if (absl::Status valid =
          chat::registry::ValidateGroupStoreLimits(options.store);
      !valid.ok()) {
    std::cerr << "chat-registry: " << valid.message() << "\n";
    return std::nullopt;
  }
  return options;
}

int Run(const po::variables_map& vm) {
  using chat::Millis;
  std::optional<chat::registry::StreamLimits> stream_limits =
      ParseStreamLimits(vm);
  if (!stream_limits) return chat::kExitUsage;
  chat::registry::SqliteStoreOptions store_options;
  store_options.max_watch_backlog_bytes = stream_limits->watch_backlog_bytes;
  if (vm["watch-history"].as<int>() < 0) {
    std::cerr << "chat-registry: --watch-history must be 0 or more\n";
    return chat::kExitUsage;
  }
  store_options.watch_history =
      static_cast<size_t>(vm["watch-history"].as<int>());
  const int min_ttl = vm["min-ttl"].as<int>();
  const int max_ttl = vm["max-ttl"].as<int>();
  const int default_ttl = vm["default-ttl"].as<int>();
  if (min_ttl < 1 || min_ttl > max_ttl || default_ttl < min_ttl ||
      default_ttl > max_ttl) {
    std::cerr << "chat-registry: need 1 <= --min-ttl <= --default-ttl <= "
                 "--max-ttl (seconds)\n";
    return chat::kExitUsage;
  }
  store_options.lease_policy.min_ttl = Millis(min_ttl * 1000);
  store_options.lease_policy.max_ttl = Millis(max_ttl * 1000);
  store_options.lease_policy.default_ttl = Millis(default_ttl * 1000);
  std::optional<absl::Duration> reserve =
      ParseDuration(vm["reserve"].as<std::string>(), absl::Hours(24));
  if (!reserve) {
    std::cerr << "chat-registry: --reserve must be a number of days, or a "
                 "number with a unit: 30d, 12h, 90m, 45s\n";
    return chat::kExitUsage;
  }
  store_options.lease_policy.reserve = *reserve;
  std::optional<absl::Duration> proof_skew =
      ParseDuration(vm["proof-skew"].as<std::string>(), absl::Seconds(1));
  if (!proof_skew || *proof_skew < absl::Seconds(1)) {
    std::cerr << "chat-registry: --proof-skew must be at least 1 second: a "
                 "number of seconds, or a number with a unit: 5m, 90s, 1h\n";
    return chat::kExitUsage;
  }
  store_options.lease_policy.proof_skew = *proof_skew;
  const std::string sync = vm["sync"].as<std::string>();
  if (sync != "normal" && sync != "full") {
    std::cerr << "chat-registry: --sync must be normal or full\n";
    return chat::kExitUsage;
  }
  store_options.sync_full = sync == "full";

  const std::string db_path = vm["db"].as<std::string>();
  std::optional<chat::registry::Quotas> quotas = ParseQuotas(vm);
  if (!quotas) return chat::kExitUsage;
  const std::optional<GroupOptions> group_options = ParseGroupOptions(vm);
  if (!group_options) return chat::kExitUsage;
  store_options.name_quotas = quotas->names;
  const std::string backend = vm["store"].as<std::string>();
  // With etcd, names and mail are both in etcd: no local file at all.
  const bool use_etcd = backend == "etcd";
  if (use_etcd && !vm["db"].defaulted()) {
    chat::LogLine("registry",
                  "note: --db is not used with --store etcd (names and mail "
                  "are in etcd)");
  }
  if (!use_etcd) {
    if (absl::Status dir = EnsureDatabaseDir(db_path); !dir.ok()) {
      chat::LogLine("registry", std::string(dir.message()));
      return kExitCannotStart;
    }
  }
  std::string token_path = vm["admin-token-file"].as<std::string>();
  if (token_path.empty()) {
    token_path = chat::registry::DefaultAdminTokenPath(use_etcd ? "" : db_path);
  }
  absl::StatusOr<std::string> admin_token =
      chat::registry::LoadOrCreateAdminToken(token_path);
  if (!admin_token.ok()) {
    chat::LogLine("registry",
                  absl::StrCat("cannot start without an admin token: ",
                               admin_token.status().message()));
    return kExitCannotStart;
  }
  for (const std::string& warning :
       chat::registry::AdminTokenWarnings(token_path, *admin_token)) {
    chat::LogLine("registry", absl::StrCat("warning: ", warning));
  }
  absl::StatusOr<std::unique_ptr<chat::registry::Store>> store;
#ifdef CHAT_ETCD
  // The mailbox's connection to etcd (the store has its own). Declared
  // before the server, so it outlives the mailbox the server owns.
  std::unique_ptr<chat::registry::etcd::EtcdClient> etcd_client;
  std::string mail_root;
#endif
  std::string where = absl::StrCat("database ", db_path);
  if (backend == "sqlite") {
    store = chat::registry::OpenSqliteStore(db_path, chat::RealClock(),
                                            store_options);
  } else if (backend == "etcd") {
#ifdef CHAT_ETCD
    namespace etcd = chat::registry::etcd;
    etcd::EtcdStoreOptions etcd_options;
    absl::StatusOr<std::vector<std::string>> endpoints =
        etcd::ParseEndpoints(vm["etcd-endpoints"].as<std::string>());
    if (!endpoints.ok()) {
      std::cerr << "chat-registry: --etcd-endpoints: "
                << endpoints.status().message() << "\n";
      return chat::kExitUsage;
    }
    etcd_options.etcd.endpoints = *endpoints;
    etcd_options.etcd.tls.ca_file = vm["etcd-ca"].as<std::string>();
    etcd_options.etcd.tls.cert_file = vm["etcd-cert"].as<std::string>();
    etcd_options.etcd.tls.key_file = vm["etcd-key"].as<std::string>();
    etcd_options.prefix = vm["etcd-prefix"].as<std::string>();
    if (etcd_options.prefix.empty() || etcd_options.prefix[0] != '/') {
      std::cerr << "chat-registry: --etcd-prefix must start with /\n";
      return chat::kExitUsage;
    }
    etcd_options.lease_policy = store_options.lease_policy;
    etcd_options.name_quotas = store_options.name_quotas;
    etcd_options.max_watch_backlog_bytes =
        store_options.max_watch_backlog_bytes;
    etcd_options.watch_history = store_options.watch_history;
    if (absl::Status agreed =
            etcd::AgreeOnAdminToken(etcd_options, *admin_token);
        !agreed.ok()) {
      chat::LogLine("registry",
                    absl::StrCat("cannot start: ", agreed.message()));
      return kExitCannotStart;
    }
    store = etcd::OpenEtcdStore(etcd_options, chat::RealClock());
    absl::StatusOr<std::unique_ptr<etcd::EtcdClient>> client =
        etcd::EtcdClient::Create(etcd_options.etcd);
    if (!client.ok()) {
      chat::LogLine("registry", std::string(client.status().message()));
      return kExitCannotStart;
    }
    etcd_client = *std::move(client);
    // Not under the store's root: mail never flows through its watch.
    mail_root = etcd::MailboxRoot(etcd_options.prefix);
    where = absl::StrCat("etcd ", vm["etcd-endpoints"].as<std::string>(),
                         " under ", etcd_options.prefix, " (names in ",
                         etcd::StoreRoot(etcd_options.prefix), ", mail in ",
                         mail_root, ")");
#else
    std::cerr << "chat-registry: this build has no etcd support (built "
                 "without golang-etcd-server-dev)\n";
    return chat::kExitUsage;
#endif
  } else {
    std::cerr << "chat-registry: --store must be sqlite or etcd\n";
    return chat::kExitUsage;
  }
  if (!store.ok()) {
    chat::LogLine("registry", std::string(store.status().message()));
    return kExitCannotStart;
  }
  const size_t loaded = (*store)->Size();

  absl::StatusOr<std::unique_ptr<chat::registry::Mailbox>> mailbox;
  if (use_etcd) {
#ifdef CHAT_ETCD
    if (quotas->mailbox.max_total_bytes == 0) {
      quotas->mailbox.max_total_bytes =
          chat::registry::etcd::kDefaultEtcdMailboxTotalBytes;
    }
    mailbox = chat::registry::etcd::OpenEtcdMailbox(
        etcd_client.get(), mail_root, chat::RealClock(), quotas->mailbox);
#endif
  } else {
    if (quotas->mailbox.max_total_bytes == 0) {
      quotas->mailbox.max_total_bytes =
          chat::registry::DefaultMailboxTotalBytes(db_path);
    }
    mailbox = chat::registry::OpenSqliteMailbox(db_path, chat::RealClock(),
                                                quotas->mailbox);
  }
  if (!mailbox.ok()) {
    chat::LogLine("registry", std::string(mailbox.status().message()));
    return kExitCannotStart;
  }

  absl::StatusOr<std::unique_ptr<chat::registry::GroupStore>> groups;
  if (use_etcd) {
#ifdef CHAT_ETCD
    groups = chat::registry::etcd::OpenEtcdGroupStore(
        etcd_client.get(),
        chat::registry::etcd::GroupsRoot(vm["etcd-prefix"].as<std::string>()),
        group_options->store);
#endif
  } else {
    groups =
        chat::registry::OpenSqliteGroupStore(db_path, group_options->store);
  }
  if (!groups.ok()) {
    chat::LogLine("registry", std::string(groups.status().message()));
    return kExitCannotStart;
  }

  chat::registry::RegistryServerOptions server_options;
  server_options.listen_address = vm["listen"].as<std::string>();
  server_options.groups = group_options->state;
  server_options.admin_token = *admin_token;
  if (!ParseOverloadOptions(vm, &server_options.overload)) {
    return chat::kExitUsage;
  }
  // Every name is bound to the key that registers it; a keyless Register
  // would leave a name anyone can take once it goes offline.
  server_options.require_key = true;
  // TLS: see common/tls_options.h.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
      chat::MakeServerCredentials(chat::TlsServerFilesFrom(vm));
  if (!tls.ok()) {
    chat::LogLine("registry",
                  absl::StrCat("cannot start: ", tls.status().message()));
    return chat::StartFailureExitCode(tls.status(), kExitCannotStart);
  }
  server_options.credentials = *tls;
  server_options.streams = *stream_limits;
  auto server = chat::registry::RegistryServer::Start(
      std::move(*store), std::move(*mailbox), std::move(*groups),
      server_options);
  if (!server.ok()) {
    chat::LogLine("registry", std::string(server.status().message()));
    return kExitCannotStart;
  }
  chat::LogLine(
      "registry",
      absl::StrCat("start: listening on ", server_options.listen_address,
                   " (port ", (*server)->port(), "), ", where, " with ", loaded,
                   " names, admin token in ", token_path, ", version ",
                   CHAT_VERSION));

  int signal_number = chat::WaitForTerminationSignal();
  chat::LogLine("registry", absl::StrCat("stop: signal ", signal_number,
                                         ", finishing calls in flight"));
  (*server)->Shutdown();
  chat::RouteLibraryLogs("registry").Flush();  // Counts not yet written.
  chat::LogLine("registry",
                use_etcd ? "stop: bye" : "stop: database closed, bye");
  return chat::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  chat::ProgramStart start;
  start.component = "registry";
  po::options_description& options = start.options;
  options.add_options()(
      "listen", po::value<std::string>()->default_value("0.0.0.0:50050"),
      "address to serve on, host:port (port 0 picks a free one)")(
      "store", po::value<std::string>()->default_value("sqlite"),
      "where names, bindings and leases live: sqlite (one file, --db; one "
      "registry) or etcd (an etcd cluster, --etcd-endpoints; several "
      "registries share it, see docs/cluster.md)")(
      "db", po::value<std::string>()->default_value("registry.db"),
      "--store sqlite: the SQLite database file (names; mail in a file "
      "beside it); created if missing. Not used with --store etcd, which "
      "keeps names and mail in etcd")(
      "etcd-endpoints", po::value<std::string>()->default_value(""),
      "--store etcd: the etcd members' client addresses, "
      "HOST:PORT,HOST:PORT,...")(
      "etcd-ca", po::value<std::string>()->default_value(""),
      "--store etcd: CA file etcd's certificates are signed by; given: TLS "
      "to etcd, else plaintext")(
      "etcd-cert", po::value<std::string>()->default_value(""),
      "--store etcd: client certificate for an etcd that asks for one "
      "(--client-cert-auth), with --etcd-key")(
      "etcd-key", po::value<std::string>()->default_value(""),
      "--store etcd: the key of --etcd-cert")(
      "etcd-prefix", po::value<std::string>()->default_value("/chat/v1/"),
      "--store etcd: every key of this deployment lives under it; "
      "registries of one deployment use the same one")(
      "default-ttl", po::value<int>()->default_value(10),
      "lease TTL in seconds when a peer asks for none")(
      "min-ttl", po::value<int>()->default_value(2),
      "shortest lease TTL granted, seconds")(
      "max-ttl", po::value<int>()->default_value(300),
      "longest lease TTL granted, seconds")(
      "mailbox-max-messages", po::value<int>()->default_value(10000),
      "messages that may wait for one name")(
      "mailbox-max-mb", po::value<int>()->default_value(16),
      "megabytes that may wait for one name")(
      "mailbox-max-age-days", po::value<int>()->default_value(7),
      "days a message may wait before it expires")(
      // Limits: names and mailbox (quota)
      "max-names-per-key", po::value<int>()->default_value(32),
      "live names one key may hold")(
      "max-names-per-client", po::value<int>()->default_value(1000),
      "live names without a key one client host may hold")(
      "max-static-names", po::value<int>()->default_value(10000),
      "static entries (PutStatic) in all")(
      "mailbox-max-sender-messages", po::value<int>()->default_value(20000),
      "items waiting from one sender (client host; for receipts the "
      "acknowledging name) across all recipients")(
      "mailbox-max-sender-mb", po::value<int>()->default_value(64),
      "megabytes waiting from one sender across all recipients")(
      "max-groups", po::value<int>()->default_value(100000),
      "groups in all, ended ones included")(
      "max-group-versions", po::value<int>()->default_value(1024),
      "versions (membership changes) one group may have")(
      "max-group-state-kb", po::value<int>()->default_value(32),
      "kilobytes of one group state")("max-groups-per-owner",
                                      po::value<int>()->default_value(256),
                                      "groups, not ended, one name may own")(
      "max-group-members", po::value<int>()->default_value(64),
      "members of one group")(
      "mailbox-max-total-mb", po::value<int>()->default_value(0),
      "megabytes of mail in all (each item counts 256 bytes beside its "
      "payload); 0: a quarter of the free space where the database is, at "
      "most 1024, decided at start (--store etcd: 512, a quarter of etcd's "
      "default quota)")(
      "reserve", po::value<std::string>()->default_value("30d"),
      "how long a name stays bound to its key after its last lease ends "
      "(days, or with a unit: 30d, 12h, 90m, 45s); meanwhile nobody else "
      "may register it")(
      "proof-skew", po::value<std::string>()->default_value("5m"),
      "how far the time a registrant signs (chat-register-v2) may be from "
      "this registry's clock, either way (seconds, or with a unit: 5m, 90s); "
      "a registrant whose clock is off by more is refused with "
      "UNAUTHENTICATED saying by how much")(
      "admin-token-file", po::value<std::string>()->default_value(""),
      "file holding the admin token that PutStatic, RemoveStatic and "
      "Release need (chatctl --admin-token-file); default admin.token next "
      "to the database (--store etcd: in the working directory); created with "
      "a random token, mode 0600, if missing")(
      "sync", po::value<std::string>()->default_value("normal"),
      "names: normal survives a crash of the registry (kill -9); full also "
      "survives power loss, slower writes (mail is always full)")
      // Limits: overload
      ("max-calls-in-progress",
       po::value<int>()->default_value(chat::kDefaultMaxCallsInProgress),
       "calls being served at once; more are refused at once with "
       "RESOURCE_EXHAUSTED (0: no bound; calls past their deadline are "
       "always dropped)")(
          "max-streams-per-connection",
          po::value<int>()->default_value(
              chat::kDefaultMaxStreamsPerConnection),
          "HTTP/2 streams one connection may have open at once; a client "
          "past it waits on its side")(
          "late-target-ms",
          po::value<int>()->default_value(
              static_cast<int>(chat::kDefaultLateTarget.count())),
          "while every call has reached the server with less than this "
          "left before its deadline for 100 ms, such late calls are refused "
          "at once with RESOURCE_EXHAUSTED (0: never; calls past their "
          "deadline are always dropped)");
  chat::CommandLine& command_line = start.command_line;
  command_line.program = "chat-registry";
  command_line.synopsis = "chat-registry [OPTIONS]";
  command_line.description =
      "The name server: peers register name -> host:port under a lease and "
      "resolve each other by name; mail for offline peers waits in its "
      "mailbox; the signed membership of group conversations is sequenced "
      "here.\nServes chat.registry.v1.Registry, chat.registry.v1.Mailbox, "
      "chat.registry.v1.Groups, grpc.health.v1.Health and server "
      "reflection.";
  command_line.epilog =
      "Exit status: 0 after SIGINT/SIGTERM and a clean shutdown, 1 when it "
      "cannot start (database, etcd, address, or an admin token file that "
      "is empty, cannot be read or made, or differs from the one of the "
      "etcd deployment), 2 for a usage error.";
  command_line.environment = {
      {"CHAT_REGISTRY_LISTEN", "listen"},
      {"CHAT_REGISTRY_DB", "db"},
      {"CHAT_REGISTRY_STORE", "store"},
      {"CHAT_REGISTRY_ETCD_ENDPOINTS", "etcd-endpoints"},
      {"CHAT_REGISTRY_ETCD_CA", "etcd-ca"},
      {"CHAT_REGISTRY_ETCD_CERT", "etcd-cert"},
      {"CHAT_REGISTRY_ETCD_KEY", "etcd-key"},
      {"CHAT_REGISTRY_ETCD_PREFIX", "etcd-prefix"},
      {"CHAT_REGISTRY_DEFAULT_TTL", "default-ttl"},
      {"CHAT_REGISTRY_MIN_TTL", "min-ttl"},
      {"CHAT_REGISTRY_MAX_TTL", "max-ttl"},
      {"CHAT_REGISTRY_SYNC", "sync"},
      {"CHAT_REGISTRY_RESERVE", "reserve"},
      {"CHAT_REGISTRY_PROOF_SKEW", "proof-skew"},
      {"CHAT_REGISTRY_ADMIN_TOKEN_FILE", "admin-token-file"},
      {"CHAT_REGISTRY_MAILBOX_MAX_MESSAGES", "mailbox-max-messages"},
      {"CHAT_REGISTRY_MAILBOX_MAX_MB", "mailbox-max-mb"},
      {"CHAT_REGISTRY_MAILBOX_MAX_AGE_DAYS", "mailbox-max-age-days"},
      // Limits: overload
      {"CHAT_REGISTRY_MAX_CALLS_IN_PROGRESS", "max-calls-in-progress"},
      {"CHAT_REGISTRY_MAX_STREAMS_PER_CONNECTION",
       "max-streams-per-connection"},
      {"CHAT_REGISTRY_LATE_TARGET_MS", "late-target-ms"},
      // Limits: names and mailbox (quota)
      {"CHAT_REGISTRY_MAX_NAMES_PER_KEY", "max-names-per-key"},
      {"CHAT_REGISTRY_MAX_NAMES_PER_CLIENT", "max-names-per-client"},
      {"CHAT_REGISTRY_MAX_STATIC_NAMES", "max-static-names"},
      {"CHAT_REGISTRY_MAILBOX_MAX_SENDER_MESSAGES",
       "mailbox-max-sender-messages"},
      {"CHAT_REGISTRY_MAILBOX_MAX_SENDER_MB", "mailbox-max-sender-mb"},
      {"CHAT_REGISTRY_MAILBOX_MAX_TOTAL_MB", "mailbox-max-total-mb"}};
  // TLS: --tls-cert, --tls-key, --tls-client-ca (docs/security.md).
  chat::AddTlsOptions(options, command_line,
                      chat::kTlsServe | chat::kTlsClientCa);
  AddStreamLimitOptions(options, command_line.environment);
  return chat::RunProgram(argc, argv, start, Run);
}
