// The one-shot commands (everything but watch) and the helpers they share.

#include "registry/chatctl/commands.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/status.h"
#include "common/tls.h"
#include "common/utf8.h"
#include "proto/greet.grpc.pb.h"
#include "proto/health.grpc.pb.h"
#include "registry/names.h"

namespace chat::chatctl {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using registry::Entry;

void SetDeadline(grpc::ClientContext& context, Millis timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
}

// Why a call to a server other than through RegistryClient failed, naming
// the server the way RegistryClient names the registry.
absl::Status CallError(const grpc::Status& grpc_status, const std::string& what,
                       const std::string& address) {
  absl::Status status = FromGrpcStatus(grpc_status);
  if (registry::IsUnreachable(status)) {
    return absl::Status(
        status.code(),
        absl::StrCat(what, " at ", address, " is unreachable: ",
                     status.code() == absl::StatusCode::kDeadlineExceeded
                         ? "no answer before the deadline"
                         : std::string(status.message())));
  }
  return absl::Status(status.code(), absl::StrCat(what, " at ", address, ": ",
                                                  status.message()));
}

// "8.2s", rounded down so it never promises more time than is left.
std::string FormatExpiresIn(const Entry& entry) {
  if (entry.is_static) return "static";
  const int64_t tenths = std::max<int64_t>(0, entry.expires_in.count()) / 100;
  return absl::StrCat(tenths / 10, ".", tenths % 10, "s");
}

std::string Pad(const std::string& text, size_t width) {
  return text + std::string(width > text.size() ? width - text.size() : 0, ' ');
}

// "chat,greet"; "chat*" for an entry that said nothing (a client older than
// services), which is read as a chat peer.
std::string FormatServices(const Entry& entry) {
  return entry.services.empty() ? std::string("chat*")
                                : registry::JoinServices(entry.services);
}

int PrintTable(std::ostream& out, const std::vector<Entry>& entries) {
  const std::string name_header = "NAME";
  const std::string address_header = "ADDRESS";
  const std::string services_header = "SERVICES";
  size_t name_width = name_header.size();
  size_t address_width = address_header.size();
  size_t services_width = services_header.size();
  for (const Entry& entry : entries) {
    name_width = std::max(name_width, entry.name.size());
    address_width = std::max(address_width, entry.address.size());
    services_width = std::max(services_width, FormatServices(entry).size());
  }
  auto row = [&](const std::string& name, const std::string& address,
                 const std::string& services, const std::string& expires) {
    return absl::StrCat(Pad(name, name_width + 2),
                        Pad(address, address_width + 2),
                        Pad(services, services_width + 2), expires);
  };
  bool ok = WriteLine(
      out, row(name_header, address_header, services_header, "EXPIRES IN"));
  for (const Entry& entry : entries) {
    ok = ok &&
         WriteLine(out, row(entry.name, entry.address, FormatServices(entry),
                            FormatExpiresIn(entry)));
  }
  return ok ? kExitOk : kExitError;
}

// Arguments people type are checked here, so a typo is a usage error (exit
// 2) even when the registry is down; the registry checks them again.
int CheckName(std::ostream& err, const std::string& name) {
  absl::Status status = registry::ValidateName(name);
  return status.ok() ? kExitOk
                     : PrintUsageError(err, OneLine(status.message()));
}

}  // namespace

std::string OneLine(absl::string_view text) {
  std::string line;
  line.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      line += ' ';
    } else if (u < 0x20 || u == 0x7f) {
      line += '?';
    } else {
      line += c;
    }
  }
  return line;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (status.code() == absl::StatusCode::kNotFound) return kExitNotFound;
  if (registry::IsUnreachable(status)) return kExitUnreachable;
  return kExitError;
}

int PrintError(std::ostream& err, const absl::Status& status) {
  err << "chatctl: " << OneLine(status.message()) << std::endl;
  return ExitCodeFor(status);
}

int PrintUsageError(std::ostream& err, const std::string& message) {
  err << "chatctl: " << message << " (see chatctl --help)" << std::endl;
  return kExitUsage;
}

bool WriteLine(std::ostream& out, const std::string& line) {
  out << line << '\n';
  out.flush();
  return static_cast<bool>(out);
}

std::string EntryJsonFields(const Entry& entry) {
  std::string fields = absl::StrCat(
      "\"name\":", JsonQuote(entry.name),
      ",\"address\":", JsonQuote(entry.address),
      ",\"static\":", entry.is_static ? "true" : "false", ",\"ttl_ms\":",
      entry.is_static ? "null" : absl::StrCat(entry.ttl.count()),
      ",\"expires_in_ms\":",
      entry.is_static ? "null" : absl::StrCat(entry.expires_in.count()));
  if (entry.public_key) {
    absl::StrAppend(
        &fields, ",\"public_key\":", JsonQuote(entry.public_key->Base64()),
        ",\"fingerprint\":", JsonQuote(Fingerprint(*entry.public_key)));
  }
  // What it offers as the registry lists it; [] from a client before issue
  // 13 (read as chat).
  absl::StrAppend(&fields, ",\"services\":[");
  for (size_t i = 0; i < entry.services.size(); ++i) {
    absl::StrAppend(&fields, i == 0 ? "" : ",", JsonQuote(entry.services[i]));
  }
  fields += "]";
  return fields;
}

std::string EntryJson(const Entry& entry) {
  return absl::StrCat("{", EntryJsonFields(entry), "}");
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                          const CommandContext& context,
                                          const std::string& server_name) {
  const ChatctlInvocation& invocation = context.invocation;
  if (!server_name.empty() && invocation.tls.enabled()) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(invocation.reconnect_initial.count()));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(invocation.reconnect_max.count()));
    SetTlsServerName(args, server_name);
    return grpc::CreateCustomChannel(address, context.credentials, args);
  }
  return registry::NewReconnectingChannel(address, invocation.reconnect_initial,
                                          invocation.reconnect_max,
                                          context.credentials);
}

std::unique_ptr<registry::RegistryClient> ConnectRegistry(
    const CommandContext& context) {
  std::vector<registry::RegistryClient::Endpoint> endpoints;
  for (std::string& address :
       registry::SplitRegistryAddresses(context.invocation.registry)) {
    std::shared_ptr<grpc::Channel> channel = NewChannel(address, context);
    endpoints.push_back({std::move(address), std::move(channel)});
  }
  auto client = std::make_unique<registry::RegistryClient>(std::move(endpoints),
                                                           context.timeout);
  if (!context.admin_token.empty()) client->SetAdminToken(context.admin_token);
  return client;
}

int RunList(const CommandContext& context) {
  const std::vector<std::string>& args = context.invocation.args;
  const std::string prefix = args.empty() ? "" : args[0];
  if (absl::Status status = registry::ValidatePrefix(prefix); !status.ok()) {
    return PrintUsageError(context.err, OneLine(status.message()));
  }
  const std::string service = context.invocation.services.empty()
                                  ? ""
                                  : context.invocation.services.front();
  absl::StatusOr<std::vector<Entry>> entries =
      ConnectRegistry(context)->ListAll(prefix, service);
  if (!entries.ok()) return PrintError(context.err, entries.status());
  if (!context.invocation.json) return PrintTable(context.out, *entries);
  std::string json = "[";
  for (const Entry& entry : *entries) {
    if (json.size() > 1) json += ",";
    json += EntryJson(entry);
  }
  json += "]";
  return WriteLine(context.out, json) ? kExitOk : kExitError;
}

int RunResolve(const CommandContext& context) {
  const std::string& name = context.invocation.args[0];
  if (int code = CheckName(context.err, name); code != kExitOk) return code;
  absl::StatusOr<Entry> entry = ConnectRegistry(context)->Resolve(name);
  if (!entry.ok()) return PrintError(context.err, entry.status());
  return WriteLine(context.out,
                   context.invocation.json ? EntryJson(*entry) : entry->address)
             ? kExitOk
             : kExitError;
}

int RunMailbox(const CommandContext& context) {
  const std::string& name = context.invocation.args[0];
  if (int code = CheckName(context.err, name); code != kExitOk) return code;
  absl::StatusOr<registry::MailboxStats> stats =
      ConnectRegistry(context)->MailboxStat(name);
  if (!stats.ok()) return PrintError(context.err, stats.status());
  const int64_t age_ms = absl::ToInt64Milliseconds(stats->oldest_age);
  std::string line =
      context.invocation.json
          ? absl::StrCat(
                "{\"name\":", JsonQuote(name), ",\"count\":", stats->count,
                ",\"bytes\":", stats->bytes, ",\"oldest_age_ms\":", age_ms, "}")
      : stats->count == 0
          ? absl::StrCat("no messages wait for ", name)
          : absl::StrCat(stats->count, " message", stats->count == 1 ? "" : "s",
                         " (", stats->bytes, " bytes) wait for ", name,
                         "; the oldest since ",
                         absl::FormatDuration(absl::Seconds(age_ms / 1000)));
  return WriteLine(context.out, line) ? kExitOk : kExitError;
}

int RunRegister(const CommandContext& context) {
  if (!context.invocation.is_static) {
    return PrintUsageError(
        context.err,
        "only static entries can be managed with chatctl: add --static "
        "(peers register themselves, with a lease)");
  }
  const std::string& name = context.invocation.args[0];
  const std::string& address = context.invocation.args[1];
  if (int code = CheckName(context.err, name); code != kExitOk) return code;
  if (absl::Status status = registry::ValidateAddress(address); !status.ok()) {
    return PrintUsageError(context.err, OneLine(status.message()));
  }
  if (int code = CheckAdminToken(context); code != kExitOk) return code;
  absl::StatusOr<Entry> entry = ConnectRegistry(context)->PutStatic(
      name, address, context.invocation.services);
  if (!entry.ok()) return PrintError(context.err, entry.status());
  return WriteLine(context.out,
                   context.invocation.json
                       ? EntryJson(*entry)
                       : absl::StrCat("registered ", entry->name, " at ",
                                      entry->address, " (static, offers ",
                                      FormatServices(*entry), ")"))
             ? kExitOk
             : kExitError;
}

int RunUnregister(const CommandContext& context) {
  if (!context.invocation.is_static) {
    return PrintUsageError(
        context.err,
        "only static entries can be managed with chatctl: add --static "
        "(peers unregister themselves, or their lease expires)");
  }
  const std::string& name = context.invocation.args[0];
  if (int code = CheckName(context.err, name); code != kExitOk) return code;
  if (int code = CheckAdminToken(context); code != kExitOk) return code;
  absl::Status status = ConnectRegistry(context)->RemoveStatic(name);
  if (!status.ok()) return PrintError(context.err, status);
  return WriteLine(context.out,
                   context.invocation.json
                       ? absl::StrCat("{\"name\":", JsonQuote(name),
                                      ",\"removed\":true}")
                       : absl::StrCat("unregistered ", name))
             ? kExitOk
             : kExitError;
}

int CheckAdminToken(const CommandContext& context) {
  if (context.admin_token_error.ok()) return kExitOk;
  PrintError(context.err,
             absl::Status(context.admin_token_error.code(),
                          absl::StrCat("cannot read the admin token: ",
                                       context.admin_token_error.message())));
  return kExitError;
}

int RunRelease(const CommandContext& context) {
  const std::string& name = context.invocation.args[0];
  if (int code = CheckName(context.err, name); code != kExitOk) return code;
  if (int code = CheckAdminToken(context); code != kExitOk) return code;
  absl::Status status = ConnectRegistry(context)->Release(name);
  if (!status.ok()) return PrintError(context.err, status);
  return WriteLine(context.out,
                   context.invocation.json
                       ? absl::StrCat("{\"name\":", JsonQuote(name),
                                      ",\"released\":true}")
                       : absl::StrCat("released ", name,
                                      ": anyone may register it now"))
             ? kExitOk
             : kExitError;
}

int RunHealth(const CommandContext& context) {
  const std::vector<std::string>& args = context.invocation.args;
  const bool of_registry = args.empty();
  if (!of_registry) {
    if (absl::Status status = registry::ValidateAddress(args[0]);
        !status.ok()) {
      return PrintUsageError(context.err, OneLine(status.message()));
    }
  }
  // Of several registries, the first that answers speaks for them, as a
  // call would go to it.
  const std::vector<std::string> addresses =
      of_registry
          ? registry::SplitRegistryAddresses(context.invocation.registry)
          : args;
  const std::string what = of_registry ? "registry" : "server";
  std::string address;
  HealthCheckResponse response;
  grpc::Status status;
  for (const std::string& candidate : addresses) {
    address = candidate;
    auto stub = grpc::health::v1::Health::NewStub(NewChannel(address, context));
    grpc::ClientContext call;
    SetDeadline(call, context.timeout);
    HealthCheckRequest request;  // service "": the server as a whole.
    response.Clear();
    status = stub->Check(&call, request, &response);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
  }
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return PrintError(
        context.err,
        absl::UnimplementedError(absl::StrCat(
            what, " at ", address,
            " does not offer the gRPC health service (grpc.health.v1)")));
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      addresses.size() > 1) {
    return PrintError(context.err,
                      absl::UnavailableError(absl::StrCat(
                          "no registry reachable (",
                          registry::JoinRegistryAddresses(addresses),
                          "): ", status.error_message())));
  }
  if (!status.ok()) {
    absl::Status error = CallError(status, what, address);
    // NOT_FOUND here is about the service name, not a missing entry.
    if (error.code() == absl::StatusCode::kNotFound) {
      error = absl::UnknownError(error.message());
    }
    return PrintError(context.err, error);
  }
  const std::string serving_status =
      HealthCheckResponse::ServingStatus_Name(response.status());
  const std::string line =
      context.invocation.json
          ? absl::StrCat("{\"address\":", JsonQuote(address),
                         ",\"status\":", JsonQuote(serving_status), "}")
          : serving_status;
  if (!WriteLine(context.out, line)) return kExitError;
  return response.status() == HealthCheckResponse::SERVING ? kExitOk
                                                           : kExitError;
}

int RunGreet(const CommandContext& context) {
  const ChatctlInvocation& invocation = context.invocation;
  const std::string& name = invocation.args[0];
  if (!IsValidUtf8(name)) {
    return PrintUsageError(context.err, "NAME must be UTF-8 text");
  }
  std::string address = invocation.target;
  std::string server_name;  // Found by name: its certificate names it.
  if (!address.empty()) {
    if (absl::Status status = registry::ValidateAddress(address);
        !status.ok()) {
      return PrintUsageError(
          context.err,
          absl::StrCat("bad --target: ", OneLine(status.message())));
    }
  } else {
    const std::string greeter = invocation.greeter_name.empty()
                                    ? kDefaultGreeterName
                                    : invocation.greeter_name;
    if (absl::Status status = registry::ValidateName(greeter); !status.ok()) {
      return PrintUsageError(
          context.err,
          absl::StrCat("bad --greeter-name: ", OneLine(status.message())));
    }
    absl::StatusOr<Entry> entry = ConnectRegistry(context)->Resolve(greeter);
    if (entry.status().code() == absl::StatusCode::kNotFound) {
      return PrintError(
          context.err,
          absl::NotFoundError(absl::StrCat(
              "no greeter is registered as \"", greeter,
              "\" in the registry at ",
              registry::JoinRegistryAddresses(
                  registry::SplitRegistryAddresses(invocation.registry)),
              " (start chat-greeter with --registry, or use --target "
              "HOST:PORT)")));
    }
    if (!entry.ok()) return PrintError(context.err, entry.status());
    address = entry->address;
    server_name = GreeterCertificateName(registry::NameKey(greeter));
  }

  auto stub = GreetService::NewStub(NewChannel(address, context, server_name));
  grpc::ClientContext call;
  SetDeadline(call, context.timeout);
  GreetRequest request;
  request.set_name(name);
  GreetResponse response;
  grpc::Status status = stub->Greet(&call, request, &response);
  if (!status.ok()) {
    absl::Status error = CallError(status, "greeter", address);
    // NOT_FOUND from the greeter is not "no such name in the registry".
    if (error.code() == absl::StatusCode::kNotFound) {
      error = absl::UnknownError(error.message());
    }
    return PrintError(context.err, error);
  }
  const std::string line =
      invocation.json
          ? absl::StrCat("{\"greeter\":", JsonQuote(address),
                         ",\"message\":", JsonQuote(response.message()), "}")
          : "Server response: " + response.message();
  return WriteLine(context.out, line) ? kExitOk : kExitError;
}

}  // namespace chat::chatctl
