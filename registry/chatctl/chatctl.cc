#include "registry/chatctl/chatctl.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "registry/admin_token.h"
#include "registry/chatctl/commands.h"
#include "registry/names.h"

namespace chat::chatctl {
namespace {

constexpr double kMaxTimeoutSeconds = 24 * 60 * 60;

struct Command {
  const char* name;
  const char* synopsis;  // After "chatctl ".
  const char* description;
  size_t min_args;
  size_t max_args;
  int (*run)(const CommandContext&);
  bool admin = false;  // Needs the registry's admin token.
};

// The order of --help.
constexpr Command kCommands[] = {
    {"list", "list [PREFIX] [--service SERVICE]",
     "table of the registered names (under PREFIX; offering SERVICE) with "
     "their addresses and services",
     0, 1, RunList},
    {"resolve", "resolve NAME", "print the address (host:port) of NAME", 1, 1,
     RunResolve},
    {"watch", "watch [PREFIX]",
     "print the names, then every change, until Ctrl-C; survives registry "
     "restarts",
     0, 1, RunWatch},
    {"register", "register NAME ADDRESS --static [--service SERVICE]...",
     "add or move a static entry (no lease, never expires; admin); it offers "
     "each --service given, chat by default",
     2, 2, RunRegister, true},
    {"unregister", "unregister NAME --static", "remove a static entry (admin)",
     1, 1, RunUnregister, true},
    {"release", "release NAME",
     "end the binding of NAME to its key (and its lease), for a user who "
     "lost their key (admin)",
     1, 1, RunRelease, true},
    {"health", "health [HOST:PORT]",
     "gRPC health check of the registry, or of any server", 0, 1, RunHealth},
    {"mailbox", "mailbox NAME",
     "how many messages wait for NAME, and how old the oldest is", 1, 1,
     RunMailbox},
    {"greet", "greet NAME [--target HOST:PORT]",
     "ask the greeter (found in the registry) to greet NAME", 1, 1, RunGreet},
};

const Command* FindCommand(const std::string& name) {
  for (const Command& command : kCommands) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

int Dispatch(const ChatctlInvocation& invocation, std::ostream& out,
             std::ostream& err) {
  if (invocation.command.empty()) {
    return PrintUsageError(err, "no command given");
  }
  const Command* command = FindCommand(invocation.command);
  if (command == nullptr) {
    return PrintUsageError(
        err, absl::StrCat("unknown command \"", invocation.command, "\""));
  }
  const size_t count = invocation.args.size();
  if (count < command->min_args || count > command->max_args) {
    return PrintUsageError(
        err, absl::StrCat(count < command->min_args ? "too few" : "too many",
                          " arguments; usage: chatctl ", command->synopsis));
  }
  if (invocation.is_static && invocation.command != "register" &&
      invocation.command != "unregister") {
    return PrintUsageError(err,
                           "--static applies only to register and unregister");
  }
  if (!invocation.services.empty() && invocation.command != "register" &&
      invocation.command != "list") {
    return PrintUsageError(err, "--service applies only to register and list");
  }
  if (invocation.services.size() > 1 && invocation.command == "list") {
    return PrintUsageError(err, "list takes one --service");
  }
  for (const std::string& service : invocation.services) {
    if (absl::Status status = registry::ValidateService(service);
        !status.ok()) {
      return PrintUsageError(err,
                             absl::StrCat("bad --service: ", status.message()));
    }
  }
  if ((!invocation.target.empty() || !invocation.greeter_name.empty()) &&
      invocation.command != "greet") {
    return PrintUsageError(err,
                           "--target and --greeter-name apply only to greet");
  }
  if (absl::Status status =
          registry::ParseRegistryAddresses(invocation.registry).status();
      !status.ok()) {
    return PrintUsageError(err,
                           absl::StrCat("bad --registry: ", status.message()));
  }
  const double seconds = invocation.timeout_seconds;
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > kMaxTimeoutSeconds) {
    return PrintUsageError(
        err, "--timeout must be a number of seconds above 0, at most 86400");
  }
  // At least a millisecond, so a tiny timeout still means "a deadline".
  const Millis timeout(std::max<int64_t>(1, std::llround(seconds * 1000)));
  CommandContext context{invocation,       out,    err, timeout, "",
                         absl::OkStatus(), nullptr};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(invocation.tls);
  if (!credentials.ok()) {
    return PrintUsageError(err, std::string(credentials.status().message()));
  }
  context.credentials = *std::move(credentials);
  if (command->admin && !invocation.admin_token_file.empty()) {
    // Reported by the command, after its own checks of its arguments.
    absl::StatusOr<std::string> token =
        registry::ReadAdminToken(invocation.admin_token_file);
    if (token.ok()) {
      context.admin_token = *std::move(token);
    } else {
      context.admin_token_error = token.status();
    }
  }
  return command->run(context);
}

}  // namespace

void Interrupt::Trigger() {
  absl::MutexLock lock(&mu_);
  if (triggered_) return;
  triggered_ = true;
  if (hook_) hook_();
}

bool Interrupt::triggered() const {
  absl::MutexLock lock(&mu_);
  return triggered_;
}

void Interrupt::SetHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  hook_ = std::move(hook);
  if (triggered_ && hook_) hook_();
}

void Interrupt::ClearHook() {
  absl::MutexLock lock(&mu_);
  hook_ = nullptr;
}

int RunChatctl(const ChatctlInvocation& invocation, std::ostream& out,
               std::ostream& err) {
  // Our code reports errors through statuses; this is the last line of
  // defence against a library's exception (std::bad_alloc, say), so that a
  // user still gets one line and an exit code instead of an abort.
  try {
    return Dispatch(invocation, out, err);
  } catch (const std::exception& e) {
    err << "chatctl: internal error: " << e.what() << "\n";
    return kExitError;
  }
}

std::string CommandsHelp() {
  size_t width = 0;
  for (const Command& command : kCommands) {
    width = std::max(width, std::string(command.synopsis).size());
  }
  std::string help = "Commands:";
  for (const Command& command : kCommands) {
    const std::string synopsis = command.synopsis;
    absl::StrAppend(&help, "\n  ", synopsis,
                    std::string(width - synopsis.size() + 2, ' '),
                    command.description);
  }
  return help;
}

std::string ExitCodesHelp() {
  return "Exit status:\n"
         "  0  success (health: the server is SERVING)\n"
         "  1  not found (no such name, no such static entry)\n"
         "  2  usage error (unknown command or option, bad name or address)\n"
         "  3  the registry (or the target server) is unreachable\n"
         "  4  any other error (refused by the server, NOT_SERVING, no or a "
         "wrong admin token, ...)";
}

}  // namespace chat::chatctl
