// chatctl: the registry's command-line client. Parses options, lets SIGINT
// and SIGTERM end a watch cleanly, and runs the command (chatctl.h).

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "common/cli.h"
#include "common/overload.h"
#include "common/program.h"
#include "common/signals.h"
#include "common/tls_options.h"
#include "registry/chatctl/chatctl.h"

namespace po = boost::program_options;

namespace {
// The command the command line names, run once RunProgram parsed it.
int RunCommand(const po::variables_map& vm);
}  // namespace

int main(int argc, char** argv) {
  // Signals are blocked only for a watch, and the process limits applied
  // after that (RunCommand), so the log flusher's thread inherits the mask.
  chat::ProgramStart start;
  start.block_termination_signals = false;
  po::options_description& options = start.options;
  // One statement per option, so each reads on its own.
  auto add = options.add_options();
  add("registry",
      po::value<std::string>()->default_value(chat::chatctl::kDefaultRegistry),
      "registry address, host:port, or several registries sharing one "
      "store, comma-separated (a call moves to the next when one is "
      "unreachable)");
  add("json", po::bool_switch(),
      "print JSON: one array (list), one object (resolve, register, ...) or "
      "one object per line (watch)");
  add("timeout", po::value<double>()->default_value(5),
      "seconds to wait for each call");
  add("static", po::bool_switch(),
      "register/unregister: manage a static entry (required)");
  add("service", po::value<std::vector<std::string>>(),
      "register --static: a service the entry offers (repeat for more; "
      "default chat); list: only entries offering this service");
  add("target", po::value<std::string>(),
      "greet: call the greeter at HOST:PORT instead of looking it up");
  add("greeter-name", po::value<std::string>(),
      "greet: the name the greeter is registered under (default greeter)");
  add("admin-token-file", po::value<std::string>(),
      "file holding the registry's admin token (chat-registry writes it, by "
      "default admin.token next to its database), for register/unregister "
      "--static and release");
  start.hidden.add_options()("command", po::value<std::string>(),
                             "the command")(
      "args", po::value<std::vector<std::string>>(), "its arguments");
  start.positional.add("command", 1).add("args", -1);

  chat::CommandLine& command_line = start.command_line;
  command_line.program = "chatctl";
  command_line.synopsis =
      "chatctl [--registry HOST:PORT[,HOST:PORT...]] [--json] [--timeout "
      "SECONDS] COMMAND "
      "[ARGS...]";
  command_line.description =
      "Lists, resolves and watches names in the chat registry, manages static "
      "entries, checks health and greets through the greeter.\nOptions may "
      "also follow the command (chatctl register bob 10.0.0.5:5000 "
      "--static).\n\n" +
      chat::chatctl::CommandsHelp();
  command_line.epilog =
      chat::chatctl::ExitCodesHelp() + "\n\nFull reference: docs/chatctl.md";
  command_line.environment = {{"CHAT_REGISTRY", "registry"},
                              {"CHAT_ADMIN_TOKEN_FILE", "admin-token-file"}};
  // TLS: --tls-ca verifies the registry (and the greeter); see chatctl.h.
  chat::AddTlsOptions(options, command_line, chat::kTlsVerify);

  return chat::RunProgram(argc, argv, start, RunCommand);
}

namespace {

int RunCommand(const po::variables_map& vm) {
  chat::chatctl::ChatctlInvocation invocation;
  if (vm.count("command")) invocation.command = vm["command"].as<std::string>();
  if (vm.count("args")) {
    invocation.args = vm["args"].as<std::vector<std::string>>();
  }
  invocation.registry = vm["registry"].as<std::string>();
  invocation.tls = chat::TlsClientFilesFrom(vm, chat::kTlsVerify);
  invocation.json = vm["json"].as<bool>();
  invocation.timeout_seconds = vm["timeout"].as<double>();
  invocation.is_static = vm["static"].as<bool>();
  if (vm.count("service")) {
    invocation.services = vm["service"].as<std::vector<std::string>>();
  }
  if (vm.count("target")) invocation.target = vm["target"].as<std::string>();
  if (vm.count("greeter-name")) {
    invocation.greeter_name = vm["greeter-name"].as<std::string>();
  }
  if (vm.count("admin-token-file")) {
    invocation.admin_token_file = vm["admin-token-file"].as<std::string>();
  }

  if (invocation.command == "watch") {
    // Before gRPC starts threads, so they inherit the mask and the signals
    // reach only the waiter below. Never destroyed: the waiter may outlive
    // main() by a moment.
    chat::BlockTerminationSignals();
    static auto* const interrupt = new chat::chatctl::Interrupt();
    std::thread([] {
      chat::WaitForTerminationSignal();
      interrupt->Trigger();
    }).detach();
    invocation.interrupt = interrupt;
  }
  // Limits: overload (the fd soft limit raised, library logs rate-limited).
  chat::ApplyProcessLimits("chatctl");
  return chat::chatctl::RunChatctl(invocation, std::cout, std::cerr);
}

}  // namespace
