// Inside chatctl: the commands RunChatctl() dispatches to, and what they
// share (printing results and errors, exit codes, channels). Not for use
// outside registry/chatctl/.

#ifndef CHAT_REGISTRY_CHATCTL_COMMANDS_H_
#define CHAT_REGISTRY_CHATCTL_COMMANDS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "registry/chatctl/chatctl.h"
#include "registry/client/registry_client.h"
#include "registry/names.h"
#include "registry/types.h"

namespace chat::chatctl {

// What every command gets. Arguments have been counted by the dispatcher.
struct CommandContext {
  const ChatctlInvocation& invocation;
  std::ostream& out;
  std::ostream& err;
  Millis timeout;  // From invocation.timeout_seconds, validated.
  // From invocation.admin_token_file, read for admin commands; else empty.
  std::string admin_token;
  // Why the file could not be read; admin commands report it
  // (CheckAdminToken) once their arguments are checked.
  absl::Status admin_token_error;
  // From invocation.tls (MakeChannelCredentials).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// kExitOk, or prints why the admin token could not be read and returns
// kExitError.
int CheckAdminToken(const CommandContext& context);

int RunList(const CommandContext& context);
int RunResolve(const CommandContext& context);
int RunRegister(const CommandContext& context);
int RunUnregister(const CommandContext& context);
int RunWatch(const CommandContext& context);
int RunHealth(const CommandContext& context);
int RunGreet(const CommandContext& context);
int RunMailbox(const CommandContext& context);
int RunRelease(const CommandContext& context);

// kExitNotFound, kExitUnreachable (registry::IsUnreachable) or kExitError.
int ExitCodeFor(const absl::Status& status);

// `text` made one printable line: a server's message may span lines or carry
// control characters, and an error is one line a person reads.
std::string OneLine(absl::string_view text);

// Prints "chatctl: <message>" as one line to `err`; returns
// ExitCodeFor(status).
int PrintError(std::ostream& err, const absl::Status& status);

// Prints "chatctl: <message> (see chatctl --help)"; returns kExitUsage.
int PrintUsageError(std::ostream& err, const std::string& message);

// Writes `line` and a newline and flushes. False when `out` can no longer be
// written (a closed pipe): the caller should stop.
bool WriteLine(std::ostream& out, const std::string& line);

// A client of the registry at invocation.registry (validated).
std::unique_ptr<registry::RegistryClient> ConnectRegistry(
    const CommandContext& context);

// `entry`'s fields as JSON object members, without the braces.
std::string EntryJsonFields(const registry::Entry& entry);

// `entry` as a JSON object: name, address, static, ttl_ms and expires_in_ms
// (both null for static entries), and for an entry with a key public_key
// (base64) and fingerprint; services, as the registry lists them ([] from a
// client older than services, which is read as chat).
std::string EntryJson(const registry::Entry& entry);

// A channel to `address` (host:port), TLS or plaintext as the context's
// credentials say, that retries a lost connection with the invocation's
// reconnect backoff instead of gRPC's default (up to two minutes). With TLS
// and a `server_name`, the server's certificate must name it (a greeter
// found by name), else the host of `address`.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          const CommandContext& context,
                                          const std::string& server_name = "");

}  // namespace chat::chatctl

#endif  // CHAT_REGISTRY_CHATCTL_COMMANDS_H_
