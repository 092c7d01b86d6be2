// chatctl, the registry's command-line client, as a library: main.cc parses
// argv into a ChatctlInvocation and calls RunChatctl(); tests call it directly
// with string streams. docs/chatctl.md is the user's reference.

#ifndef CHAT_REGISTRY_CHATCTL_CHATCTL_H_
#define CHAT_REGISTRY_CHATCTL_CHATCTL_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/tls.h"

namespace chat::chatctl {

// Exit codes, documented in --help and docs/chatctl.md. 0 and 2 are the same
// as every other executable's (common/cli.h).
inline constexpr int kExitOk = 0;
inline constexpr int kExitNotFound = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;  // The registry or the target.
inline constexpr int kExitError = 4;

inline constexpr char kDefaultRegistry[] = "localhost:50050";
inline constexpr char kDefaultGreeterName[] = "greeter";

// Ends a running `watch` from another thread: main.cc's signal waiter, or a
// test. Thread-safe.
class Interrupt {
 public:
  // Marks this triggered and runs the hook, if any. Idempotent.
  void Trigger();
  bool triggered() const;

  // Installs `hook` (replacing any previous one), to be run by Trigger(), or
  // at once when already triggered. It runs under this object's lock: it must
  // be quick and must not call back into this object. Whatever it refers to
  // must stay alive until ClearHook() returns.
  void SetHook(std::function<void()> hook);
  void ClearHook();

 private:
  mutable absl::Mutex mu_;
  bool triggered_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> hook_ ABSL_GUARDED_BY(mu_);
};

// One run of chatctl: the parsed command line.
struct ChatctlInvocation {
  std::string command;            // "list", "resolve", ...; empty: none given.
  std::vector<std::string> args;  // The positional arguments after it.

  // host:port, or several, comma-separated (ParseRegistryAddresses).
  std::string registry = kDefaultRegistry;
  bool json = false;
  // Deadline of each call, in seconds: > 0 and at most a day.
  double timeout_seconds = 5;
  bool is_static = false;  // --static (register, unregister).
  // --service, repeatable: register --static: what the entry offers (none
  // given: "chat"); list: only entries offering it (one at most).
  std::vector<std::string> services;
  std::string target;        // --target (greet); empty: ask the registry.
  std::string greeter_name;  // --greeter-name (greet); empty: "greeter".
  // --admin-token-file (CHAT_ADMIN_TOKEN_FILE): the registry's admin token,
  // sent with register/unregister --static and release. Empty: none sent
  // (the registry refuses those with PERMISSION_DENIED, exit 4).
  std::string admin_token_file;
  // --tls-ca (CHAT_TLS_CA), --tls-cert, --tls-key: with a CA, every call is
  // TLS only, the server verified against it; without, plaintext.
  TlsClientFiles tls;

  // `watch` reconnects after a broken stream with this backoff, doubling from
  // the first value up to the second (tests shorten it).
  Millis reconnect_initial{200};
  Millis reconnect_max{5000};
  // Ends `watch` (exit 0) when triggered. Not owned; must outlive the call.
  // Null: `watch` runs until its stream fails for good.
  Interrupt* interrupt = nullptr;
};

// Runs one command. Results go to `out` (flushed after every line, because
// scripts read it through a pipe), errors to `err` as one line starting with
// "chatctl: ". Returns the exit code. Never throws.
int RunChatctl(const ChatctlInvocation& invocation, std::ostream& out,
               std::ostream& err);

// For --help: one line per command, and the exit codes. No final newline.
std::string CommandsHelp();
std::string ExitCodesHelp();

}  // namespace chat::chatctl

#endif  // CHAT_REGISTRY_CHATCTL_CHATCTL_H_
