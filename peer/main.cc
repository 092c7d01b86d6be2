// chat-peer: an interactive chat that finds other peers by name through the
// registry. Parses options, starts the peer, runs the console.

#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/program.h"
#include "common/signals.h"
#include "common/tls_options.h"
#include "peer/console.h"
#include "peer/peer.h"
#include "peer/peer_store.h"
#include "registry/client/registry_client.h"

namespace po = boost::program_options;

namespace {

constexpr int kExitNameTaken = 1;
constexpr int kExitRegistryUnreachable = 3;
constexpr int kExitCannotStart = 4;

// NAME.log's size before it becomes NAME.log.1 (two files at most).
constexpr int64_t kLogFileBytes = 1 << 20;

int ExitCodeFor(const absl::Status& status) {
  // Held by a live peer, or bound to another key.
  if (status.code() == absl::StatusCode::kAlreadyExists ||
      status.code() == absl::StatusCode::kPermissionDenied) {
    return kExitNameTaken;
  }
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    return chat::kExitUsage;
  }
  if (chat::registry::IsUnreachable(status)) return kExitRegistryUnreachable;
  return kExitCannotStart;
}

// Why the peer could not start, in one plain sentence: the registry out of
// reach is said without gRPC's text (--verbose adds it), keeping the
// client's hint when TLS looks like the cause.
std::string StartFailureText(const absl::Status& status,
                             const std::string& registry) {
  if (!chat::registry::IsUnreachable(status)) {
    return std::string(status.message());
  }
  const std::vector<std::string> registries =
      chat::registry::SplitRegistryAddresses(registry);
  std::string text =
      registries.size() == 1
          ? absl::StrCat("the registry at ", registry,
                         " is unreachable; is it running, and is --registry "
                         "right?")
          : absl::StrCat("no registry reachable (",
                         chat::registry::JoinRegistryAddresses(registries),
                         "); is one running, and is --registry right?");
  const std::string message(status.message());
  for (const char* hint : {" (if it serves TLS", " (TLS:"}) {
    const size_t at = message.rfind(hint);
    if (at != std::string::npos) {
      absl::StrAppend(&text, message.substr(at));
      break;
    }
  }
  return text;
}

// --max-follow, --page-size, --max-channels, --max-groups and
// --max-group-members; false (after a message) when out of range.
bool ScreenLimits(const po::variables_map& vm,
                  chat::peer::PeerOptions& options) {
  const int max_follow = vm["max-follow"].as<int>();
  const int page_size = vm["page-size"].as<int>();
  if (max_follow < 1 || max_follow > 100000) {
    std::cerr << "chat-peer: --max-follow must be 1-100000\n";
    return false;
  }
  if (page_size < 1 || page_size > 1000) {
    std::cerr << "chat-peer: --page-size must be 1-1000\n";
    return false;
  }
  options.max_followed = static_cast<size_t>(max_follow);
  const int max_channels = vm["max-channels"].as<int>();
  if (max_channels < 1 || max_channels > 100000) {
    std::cerr << "chat-peer: --max-channels must be 1-100000\n";
    return false;
  }
  options.max_channels = static_cast<size_t>(max_channels);
  const int max_groups = vm["max-groups"].as<int>();
  if (max_groups < 1 || max_groups > 10000) {
    std::cerr << "chat-peer: --max-groups must be 1-10000\n";
    return false;
  }
  options.store_limits.max_groups = max_groups;
  const int max_members = vm["max-group-members"].as<int>();
  if (max_members < 2 || max_members > 1000) {
    std::cerr << "chat-peer: --max-group-members must be 2-1000\n";
    return false;
  }
  options.store_limits.group_limits.max_members = max_members;
  return true;
}

// --verbose: the technical detail behind a notice (a gRPC status) on
// stderr, beside the one line the console shows.
class VerboseSink final : public chat::peer::EventSink {
 public:
  explicit VerboseSink(chat::peer::EventSink* next) : next_(next) {}
  void OnEvent(const chat::peer::PeerEvent& event) override {
    next_->OnEvent(event);
    if (event.detail.empty()) return;
    std::string about = event.text;
    if (event.kind == chat::peer::EventKind::kSendResult) {
      about = absl::StrCat("to ", event.message.to, ": ", event.text);
    }
    absl::MutexLock lock(&mu_);
    std::cerr << "chat-peer: " << about << ": " << event.detail << std::endl;
  }

 private:
  chat::peer::EventSink* const next_;  // Not owned.
  absl::Mutex mu_;                     // One line at a time.
};

int Run(const po::variables_map& vm) {
  chat::peer::PeerOptions options;
  options.name = vm["name"].as<std::string>();
  options.registry = vm["registry"].as<std::string>();
  options.listen = vm["listen"].as<std::string>();
  if (vm.count("advertise"))
    options.advertise = vm["advertise"].as<std::string>();
  options.ttl = chat::Millis(vm["ttl"].as<int>() * 1000);
  options.tls.serve = chat::TlsServerFilesFrom(vm);
  options.tls.client =
      chat::TlsClientFilesFrom(vm, chat::kTlsServe | chat::kTlsVerify);
  if (vm.count("tls-peer-name")) {
    options.tls.peer_name = vm["tls-peer-name"].as<std::string>();
  }
  std::string data_dir = vm.count("data-dir") ? vm["data-dir"].as<std::string>()
                                              : chat::peer::DefaultDataDir();
  absl::StatusOr<std::string> store_path =
      chat::peer::PeerStorePath(data_dir, options.name);
  if (!store_path.ok()) {
    std::cerr << "chat-peer: " << store_path.status().message() << "\n";
    return chat::StartFailureExitCode(store_path.status(), kExitCannotStart);
  }
  options.store_path = *store_path;
  // No log line on the chat screen: gRPC's own ("Handshake failed ...", once
  // a second while a message waits for a peer that speaks no TLS) and ours
  // go to NAME.log beside NAME.db, or to stderr with --verbose.
  if (!vm["verbose"].as<bool>()) {
    const std::string log_path =
        std::filesystem::path(*store_path).replace_extension(".log").string();
    absl::StatusOr<std::unique_ptr<chat::RotatingLogFile>> log =
        chat::RotatingLogFile::Open(log_path, kLogFileBytes);
    if (log.ok()) {
      // Kept until the process ends: gRPC's threads may log until then.
      chat::RedirectLogLines(log->release());
    } else {
      std::cerr << "chat-peer: " << log.status().message()
                << "; logging to stderr\n";
    }
  }
  // identity_path stays empty: the key is NAME.key beside NAME.db, one per
  // name, because one data directory may serve several names (docker-compose
  // shares one volume among all peers) and each name needs a key of its own.
  const std::string sync = vm["sync"].as<std::string>();
  if (sync != "normal" && sync != "full") {
    std::cerr << "chat-peer: --sync must be normal or full\n";
    return chat::kExitUsage;
  }
  options.sync_full = sync == "full";
  options.read_receipts = !vm["no-read-receipts"].as<bool>();
  const int history_days = vm["history-days"].as<int>();
  if (history_days < 0 || history_days > 3650) {
    std::cerr << "chat-peer: --history-days must be 0-3650\n";
    return chat::kExitUsage;
  }
  options.store_limits.history_kept = absl::Hours(24) * history_days;
  // Limits: the peer's screen.
  if (!ScreenLimits(vm, options)) return chat::kExitUsage;

  const bool json = vm["json"].as<bool>();
  const bool terminal = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  chat::peer::ConsoleOptions console_options;
  console_options.json = json;
  console_options.color = !json && isatty(STDOUT_FILENO) &&
                          std::getenv("NO_COLOR") == nullptr &&
                          !vm["no-color"].as<bool>();
  console_options.line_editing = terminal && !json;
  console_options.own_name = options.name;
  if (vm.count("peer")) {
    console_options.initial_partner = vm["peer"].as<std::string>();
    options.follow.push_back(console_options.initial_partner);
  }
  console_options.page_size = vm["page-size"].as<int>();
  chat::peer::Console console(console_options, STDIN_FILENO, STDOUT_FILENO);

  VerboseSink verbose(&console);
  chat::peer::EventSink* sink = &console;
  if (vm["verbose"].as<bool>()) sink = &verbose;
  auto peer = chat::peer::Peer::Start(options, sink, chat::RealClock());
  if (!peer.ok()) {
    std::cerr << "chat-peer: "
              << StartFailureText(peer.status(), options.registry) << "\n";
    if (vm["verbose"].as<bool>() &&
        chat::registry::IsUnreachable(peer.status())) {
      std::cerr << "chat-peer: " << peer.status().ToString() << "\n";
    }
    return ExitCodeFor(peer.status());
  }

  std::thread signal_thread([&console] {
    chat::WaitForTerminationSignal();
    console.Stop();
  });
  console.Run(peer->get());
  (*peer)->Shutdown();  // Finishes pending sends, then unregisters.
  // Wake the signal thread if no signal came.
  kill(getpid(), SIGTERM);
  signal_thread.join();
  return chat::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // The first watch snapshot of a large registry passes through the peer:
  // tens of megabytes, freed once it is in. glibc would keep most of them
  // (freeing large blocks raises its trim threshold up to 64 MB), so an idle
  // peer next to 100,000 names would stay near 90 MB. A fixed threshold
  // (glibc's initial 128 kB) lets free() and malloc_trim() give it back.
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
#endif

  chat::ProgramStart start;
  start.component = "peer";
  po::options_description& options = start.options;
  options.add_options()("name", po::value<std::string>()->required(),
                        "your name in the chat (1-64 of A-Z a-z 0-9 . _ -)")(
      "registry", po::value<std::string>()->default_value("localhost:50050"),
      "registry address, host:port; or several registries sharing one "
      "store, comma-separated (host:port,host:port): calls go to one and "
      "move to the next when it is unreachable")(
      "listen", po::value<std::string>()->default_value("0.0.0.0:0"),
      "address to serve on (port 0: the system chooses)")(
      "advertise", po::value<std::string>(),
      "host:port others should use to reach you (default: the local "
      "address that reaches the registry, with the bound port)")(
      "peer", po::value<std::string>(),
      "wait for this peer to come online, then chat with it")(
      "data-dir", po::value<std::string>(),
      "where your identity key (NAME.key), outbox and inbox (NAME.db) are "
      "kept, "
      "one file per name; made private (0700) (default: "
      "$XDG_STATE_HOME/chat-peer, else ~/.local/state/chat-peer)")(
      "sync", po::value<std::string>()->default_value("full"),
      "full: your outbox and inbox survive power loss (one fsync per "
      "commit); normal: they survive a crash of chat-peer, not of the "
      "machine, and sending is faster")(
      "ttl", po::value<int>()->default_value(0),
      "lease TTL in seconds (0: the registry's default)")(
      "max-follow", po::value<int>()->default_value(1000),
      "follow at most this many names: those you talk with or choose "
      "(/follow, /chat, --peer); only they are shown coming and going")(
      "page-size", po::value<int>()->default_value(50),
      "names per page of /peers (1-1000)")(
      "max-channels", po::value<int>()->default_value(256),
      "keep at most this many connections to other peers open (1-100000); "
      "the least recently used is closed beyond it")(
      "max-groups", po::value<int>()->default_value(256),
      "know at most this many groups (1-10000); a group beyond is refused, "
      "and its messages with it")(
      "max-group-members", po::value<int>()->default_value(64),
      "make and accept groups of at most this many members (2-1000), you "
      "included")(
      "history-days", po::value<int>()->default_value(30),
      "keep what was said (/history) this many days (0-3650; 0: keep "
      "none); at most 50,000 messages in all either way")(
      "verbose", po::bool_switch(),
      "print the technical detail behind a notice (the gRPC error) to "
      "stderr, and log there too (without it, log lines such as gRPC's go "
      "to NAME.log in the data directory, 1 MB, then NAME.log.1)")(
      "json", po::bool_switch(), "print one JSON object per event (scripts)")(
      "no-read-receipts", po::bool_switch(),
      "send no read receipts and show none of others (both ways, as in "
      "Signal or WhatsApp)")("no-color", po::bool_switch(),
                             "no colours (also: NO_COLOR set)");
  chat::CommandLine& command_line = start.command_line;
  command_line.program = "chat-peer";
  command_line.synopsis = "chat-peer --name NAME [OPTIONS]";
  command_line.description =
      "Chat with other peers by name. Type @NAME MESSAGE to send, /chat NAME "
      "to pick a partner,\n/peers to see who is online, /help for more, "
      "/quit or Ctrl-D to leave.\nWithout a terminal, reads one command per "
      "line from stdin; at its end, finishes sending and exits.";
  command_line.epilog =
      "Exit status: 0 after /quit, end of input or SIGINT/SIGTERM; 1 the name "
      "is held by another live peer,\nbelongs to another key, or is already "
      "running here (another chat-peer of this name on\nthis data directory); "
      "2 usage error; 3 registry unreachable; 4 cannot start otherwise\n(the "
      "listen address, or the data directory is unusable).";
  command_line.environment = {
      {"CHAT_PEER_NAME", "name"},
      {"CHAT_REGISTRY", "registry"},
      {"CHAT_PEER_LISTEN", "listen"},
      {"CHAT_PEER_ADVERTISE", "advertise"},
      {"CHAT_PEER_PARTNER", "peer"},
      {"CHAT_PEER_TTL", "ttl"},
      {"CHAT_PEER_DATA_DIR", "data-dir"},
      {"CHAT_PEER_SYNC", "sync"},
      {"CHAT_PEER_MAX_FOLLOW", "max-follow"},
      {"CHAT_PEER_PAGE_SIZE", "page-size"},
      {"CHAT_PEER_MAX_CHANNELS", "max-channels"},
      {"CHAT_PEER_MAX_GROUPS", "max-groups"},
      {"CHAT_PEER_MAX_GROUP_MEMBERS", "max-group-members"},
      {"CHAT_PEER_NO_READ_RECEIPTS", "no-read-receipts"},
      {"CHAT_PEER_HISTORY_DAYS", "history-days"}};
  // TLS: --tls-cert/--tls-key serve ChattingService over TLS; --tls-ca
  // verifies the registry and every other peer (TLS only, docs/security.md).
  chat::AddTlsOptions(options, command_line,
                      chat::kTlsServe | chat::kTlsVerify);
  options.add_options()(
      "tls-peer-name", po::value<std::string>()->value_name("NAME"),
      "with --tls-ca: the peer name every other peer's certificate must "
      "carry (make-certs --peer NAME), for a certificate all peers share "
      "(default: each recipient's own name)");
  command_line.environment.push_back({"CHAT_TLS_PEER_NAME", "tls-peer-name"});
  return chat::RunProgram(argc, argv, start, Run);
}
