// chat-greeter: the lab's greeter as a named service. Parses options, serves
// GreetService, keeps its name in the registry when given one, and stops
// cleanly on SIGINT/SIGTERM.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/net.h"
#include "common/private_files.h"
#include "common/program.h"
#include "common/signals.h"
#include "common/tls_options.h"
#include "greeter/greeter_service.h"
#include "greeter/registration.h"
#include "registry/client/registry_client.h"
#include "registry/names.h"

namespace po = boost::program_options;

namespace {

constexpr int kExitCannotStart = 1;
constexpr char kComponent[] = "greeter";
// Registry calls wait this long for an answer.
constexpr chat::Millis kRegistryTimeout(3000);
// Calls in flight get this long to finish at shutdown.
constexpr chat::Millis kStopGrace(5000);

void Log(const std::string& message) { chat::LogLine(kComponent, message); }

std::string StringOption(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

// The peer's convention: $XDG_STATE_HOME/chat-greeter, else
// ~/.local/state/chat-greeter, else ./greeter-data.
std::string DefaultDataDir() {
  if (const char* state = std::getenv("XDG_STATE_HOME");
      state != nullptr && state[0] != '\0') {
    return std::string(state) + "/chat-greeter";
  }
  if (const char* home = std::getenv("HOME");
      home != nullptr && home[0] != '\0') {
    return std::string(home) + "/.local/state/chat-greeter";
  }
  return "greeter-data";
}

int Run(const po::variables_map& vm) {
  const std::string listen = vm["listen"].as<std::string>();
  const std::string registry_address = StringOption(vm, "registry");
  const std::string name = vm["name"].as<std::string>();
  const std::string advertise = StringOption(vm, "advertise");
  const int ttl = vm["ttl"].as<int>();
  if (ttl < 0) {
    std::cerr << "chat-greeter: --ttl must be 0 (registry default) or more "
                 "seconds\n";
    return chat::kExitUsage;
  }
  for (const absl::Status& status :
       {registry_address.empty()
            ? absl::OkStatus()
            : chat::registry::ParseRegistryAddresses(registry_address).status(),
        chat::registry::ValidateName(name),
        advertise.empty() ? absl::OkStatus()
                          : chat::registry::ValidateAddress(advertise)}) {
    if (!status.ok()) {
      std::cerr << "chat-greeter: " << status.message() << "\n";
      return chat::kExitUsage;
    }
  }

  std::string data_dir = StringOption(vm, "data-dir");
  if (data_dir.empty()) data_dir = DefaultDataDir();
  if (absl::Status dir = chat::EnsurePrivateDir(data_dir); !dir.ok()) {
    Log(absl::StrCat("cannot start: ", dir.message()));
    return kExitCannotStart;
  }
  absl::StatusOr<chat::Identity> identity =
      chat::Identity::LoadOrCreate(data_dir + "/identity.key");
  if (!identity.ok()) {
    Log(absl::StrCat("cannot start: ", identity.status().message()));
    return kExitCannotStart;
  }

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_tls =
      chat::MakeServerCredentials(chat::TlsServerFilesFrom(vm));
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> registry_tls =
      chat::MakeChannelCredentials(
          chat::TlsClientFilesFrom(vm, chat::kTlsServe | chat::kTlsVerify));
  for (const absl::Status& status :
       {server_tls.status(), registry_tls.status()}) {
    if (!status.ok()) {
      Log(absl::StrCat("cannot start: ", status.message()));
      return chat::StartFailureExitCode(status, kExitCannotStart);
    }
  }

  chat::greeter::GreeterService service;
  chat::ServerConfig config;
  config.credentials = *server_tls;
  config.listen_address = listen;
  config.services = {&service};
  config.health_names = {chat::greeter::kGreetServiceName};
  chat::SupervisorOptions supervisor;
  supervisor.on_event = Log;
  absl::StatusOr<std::unique_ptr<chat::SupervisedServer>> server =
      chat::SupervisedServer::Start(config, std::move(supervisor));
  if (!server.ok()) {
    Log(std::string(server.status().message()));
    return kExitCannotStart;
  }
  Log(absl::StrCat("start: serving GreetService on ", listen, " (port ",
                   (*server)->port(), "), key ",
                   chat::Fingerprint(identity->public_key()), " in ", data_dir,
                   ", version ", CHAT_VERSION));

  // Set by the registration's thread when a background attempt is refused
  // (the name is taken); that thread then wakes us with SIGTERM.
  std::atomic<bool> refused{false};
  std::unique_ptr<chat::greeter::Registration> registration;
  if (!registry_address.empty()) {
    chat::greeter::RegistrationOptions options;
    options.keeper.name = name;
    options.keeper.address = advertise;
    options.keeper.listen = listen;
    options.keeper.port = (*server)->port();
    options.keeper.ttl = chat::Millis(int64_t{ttl} * 1000);
    options.keeper.identity = &*identity;
    options.keeper.on_change = Log;
    options.on_refused = [&refused](const absl::Status&) {
      refused = true;
      kill(getpid(), SIGTERM);
    };
    std::unique_ptr<chat::registry::RegistryClient> client =
        chat::registry::RegistryClient::Connect(
            registry_address, kRegistryTimeout, chat::Millis(1000),
            *registry_tls);
    client->SetSwitchListener([](const std::string& from, const std::string& to,
                                 const absl::Status& why) {
      Log(absl::StrCat(why.message(), "; using the registry at ", to,
                       " instead of ", from));
    });
    absl::StatusOr<std::unique_ptr<chat::greeter::Registration>> started =
        chat::greeter::Registration::Start(std::move(client),
                                           std::move(options));
    if (!started.ok()) {
      Log(absl::StrCat(
          "cannot register \"", name, "\": ", started.status().message(),
          started.status().code() == absl::StatusCode::kAlreadyExists
              ? "; not taking over a live name, exiting"
              : "; exiting"));
      (*server)->Stop(chat::Millis(0));
      return kExitCannotStart;
    }
    registration = *std::move(started);
  } else {
    Log("no --registry: serving without a name");
  }

  const int signal_number = chat::WaitForTerminationSignal();
  if (refused) {
    Log(absl::StrCat("stop: the registry refused \"", name,
                     "\"; not taking over a live name, exiting"));
  } else {
    Log(absl::StrCat("stop: signal ", signal_number,
                     ", finishing calls in flight"));
  }
  if (registration != nullptr) registration->Stop();
  (*server)->Stop(kStopGrace);
  Log("stop: bye");
  return refused ? kExitCannotStart : chat::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  chat::ProgramStart start;
  start.component = "greeter";
  po::options_description& options = start.options;
  options.add_options()(
      "listen", po::value<std::string>()->default_value("0.0.0.0:50051"),
      "address to serve on, host:port (port 0 picks a free one)")(
      "registry", po::value<std::string>(),
      "registry to register in, host:port, or several sharing one store, "
      "comma-separated (it moves to the next when one is unreachable); "
      "without it the greeter serves unnamed")(
      "name", po::value<std::string>()->default_value("greeter"),
      "name to register under (1-64 of [A-Za-z0-9._-])")(
      "advertise", po::value<std::string>(),
      "host:port clients should dial; default: the listen host if it names "
      "one interface, else the local address used to reach the registry, "
      "with the bound port")(
      "ttl", po::value<int>()->default_value(0),
      "lease TTL to ask for, seconds; 0 takes the registry's default")(
      "data-dir", po::value<std::string>(),
      "where the greeter's identity key (identity.key) is kept, made on the "
      "first start; the name is bound to it, so keep the directory to keep "
      "the name across restarts; made private (0700) (default: "
      "$XDG_STATE_HOME/chat-greeter, else ~/.local/state/chat-greeter)");
  chat::CommandLine& command_line = start.command_line;
  command_line.program = "chat-greeter";
  command_line.synopsis = "chat-greeter [OPTIONS]";
  command_line.description =
      "The lab's greeter: answers GreetService.Greet(name) with \"Hello, "
      "NAME!\", wire-compatible with the lab's greet.proto.\nServes "
      "GreetService, grpc.health.v1.Health (\"GreetService\") and server "
      "reflection. With --registry it registers NAME -> address under a "
      "lease, renews it, registers again if the registry loses it, and "
      "unregisters on exit; while the registry is unreachable it serves "
      "directly and retries every second. It never takes over a name held "
      "by a live lease.";
  command_line.epilog =
      "Exit status: 0 after SIGINT/SIGTERM and a clean shutdown; 1 when it "
      "cannot start (address in use, bad address, data directory or "
      "identity key unusable), the name is held by another live lease or "
      "bound to another key; 2 for a usage error.";
  command_line.environment = {{"CHAT_GREETER_LISTEN", "listen"},
                              {"CHAT_REGISTRY", "registry"},
                              {"CHAT_GREETER_NAME", "name"},
                              {"CHAT_GREETER_DATA_DIR", "data-dir"},
                              {"CHAT_GREETER_ADVERTISE", "advertise"},
                              {"CHAT_GREETER_TTL", "ttl"}};
  // TLS: --tls-cert/--tls-key serve GreetService over TLS (a certificate
  // for the greeter's name); --tls-ca verifies the registry.
  chat::AddTlsOptions(options, command_line,
                      chat::kTlsServe | chat::kTlsVerify);
  return chat::RunProgram(argc, argv, start, Run);
}
