#include "registry/server/service.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/status.h"
#include "registry/convert.h"
#include "registry/names.h"
#include "registry/server/pumped_stream.h"
#include "registry/store/store_rules.h"

namespace chat::registry {
namespace {

constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

// Streams a Store watch to one client.
class WatchReactor final : public PumpedStream<v1::WatchEvent, Watch> {
 public:
  // `resume_after`: WatchRequest.revision (0, or any revision the store
  // does not cover, gets a snapshot).
  WatchReactor(Store* store, const WatchScope& scope, int64_t resume_after,
               std::unique_ptr<StreamGate::Ticket> ticket)
      : ticket_(std::move(ticket)) {
    Attach(store->Subscribe(scope, resume_after, [this] { Pump(); }));
  }

 private:
  bool Next(Watch& watch, v1::WatchEvent* out, absl::Status* end) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_.empty()) {
      *end = watch.status();  // OK: Fill(), or wait for more.
      return false;
    }
    const WatchEvent& event = pending_.front();
    WatchEventToProto(event, out);
    pending_.pop_front();
    return true;
  }

  bool WantsFill() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_.empty();
  }

  // Take() reads snapshot pages under the store's lock, which announcements
  // are made under: so not under mu_.
  bool Fill(Watch& watch) override ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<WatchEvent> events = watch.Take(kEventsPerFill);
    const bool look_again = !events.empty() || !watch.status().ok();
    absl::MutexLock lock(&mu_);
    for (WatchEvent& event : events) pending_.push_back(std::move(event));
    return look_again;
  }

  // What one stream holds at most beside the store's queue.
  static constexpr size_t kEventsPerFill = 64;

  const std::unique_ptr<StreamGate::Ticket>
      ticket_;  // Our place; held to the end.
  std::deque<WatchEvent> pending_ ABSL_GUARDED_BY(mu_);
};

// A reactor that finishes at once with the error.
class WatchRefusal final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  explicit WatchRefusal(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

// The scope of `request`, or kInvalidArgument naming the bad field, or
// kResourceExhausted for more names than `limits` allow.
absl::StatusOr<WatchScope> WatchScopeFromProto(const v1::WatchRequest& request,
                                               const StreamLimits& limits) {
  CHAT_RETURN_IF_ERROR(ValidatePrefix(request.prefix()));
  const size_t count = static_cast<size_t>(request.names_size());
  if (count > limits.max_watch_names) {
    return LimitError(absl::StrCat("a Watch of ", count, " names"),
                      static_cast<int64_t>(limits.max_watch_names),
                      "max-watch-names");
  }
  WatchScope scope(request.prefix());
  scope.names.reserve(count);
  for (int i = 0; i < request.names_size(); ++i) {
    if (absl::Status valid = ValidateName(request.names(i)); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("names[", i, "]: ", valid.message()));
    }
    scope.names.push_back(request.names(i));
  }
  return scope;
}

}  // namespace

absl::Status CheckAdminToken(const grpc::CallbackServerContext& context,
                             const std::string& admin_token,
                             const std::string& method) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  bool allowed = false;
  if (!admin_token.empty() && it != metadata.end()) {
    const std::string presented(it->second.data(), it->second.size());
    allowed = SameSecret(presented, "Bearer " + admin_token);
  }
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      method,
      " needs the registry's admin token (chatctl --admin-token-file or "
      "CHAT_ADMIN_TOKEN_FILE)"));
}

RegistryService::RegistryService(Store* store, ChallengeBook* challenges,
                                 RegistryServiceOptions options)
    : store_(store),
      challenges_(challenges),
      options_(std::move(options)),
      admission_(options_.gate, Admission::Watch(options_.streams)) {}

absl::Status RegistryService::CheckProof(const RegisterRequest& request) {
  // Name and address first: their messages say more than a proof's would.
  CHAT_RETURN_IF_ERROR(ValidateRegisterRequest(request));
  if (!request.public_key) {
    if (!request.challenge.empty() || !request.signature.empty()) {
      return absl::InvalidArgumentError(
          "public_key is required with a challenge and a signature");
    }
    if (options_.require_key) {
      return absl::InvalidArgumentError(
          "public_key is required: register with an identity key (sign the "
          "name, address, key and the time with it, chat-register-v2, and "
          "send key, proof_unix_ms and signature; or, as older clients do, "
          "ask for a Challenge and sign that instead of the time)");
    }
    return absl::OkStatus();
  }
  if (request.proof_unix_ms != 0 && !request.challenge.empty()) {
    return absl::InvalidArgumentError(
        "send either proof_unix_ms (chat-register-v2) or a challenge "
        "(chat-register-v1), not both");
  }
  if (request.proof_unix_ms == 0 &&
      request.challenge.size() != kChallengeBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "proof_unix_ms is required with public_key (or a challenge: the ",
        kChallengeBytes, " bytes Challenge returned, not ",
        request.challenge.size(), ")"));
  }
  if (request.signature.size() != kSignatureBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature must be ", kSignatureBytes, " bytes, not ",
                     request.signature.size()));
  }
  if (request.proof_unix_ms != 0) {
    if (!VerifyTimedRegistrationProof(
            request.name, request.address, *request.public_key,
            request.proof_unix_ms, request.signature)) {
      return absl::UnauthenticatedError(
          "signature is not public_key's signature of this name, address "
          "and proof_unix_ms");
    }
    // Whether it is fresh is the store's: it checks and records the time
    // in the write that registers, so that holds across registries.
    return absl::OkStatus();
  }
  if (!VerifyRegistrationProof(request.name, request.address, request.challenge,
                               *request.public_key, request.signature)) {
    return absl::UnauthenticatedError(
        "signature is not public_key's signature of this name, address and "
        "challenge");
  }
  // Last: a valid signature of a challenge already used is a replay.
  return challenges_->Consume(request.name, request.challenge);
}

grpc::ServerUnaryReactor* RegistryService::Register(
    grpc::CallbackServerContext* context, const v1::RegisterRequest* request,
    v1::RegisterResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  absl::StatusOr<RegisterRequest> converted =
      RegisterRequestFromProto(*request);
  if (!converted.ok()) return Respond(context, converted.status());
  if (absl::Status proven = CheckProof(*converted); !proven.ok()) {
    return Respond(context, proven);
  }
  RegisterRequest domain = *std::move(converted);
  domain.client = ClientHost(context->peer());  // For the name quotas.
  // Answered from the store's commit, without holding a callback thread
  // while the write becomes durable, so concurrent registrations share
  // commits. `request` and `response` live until Finish().
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The ticket is held until the answer (shared: std::function copies).
  store_->RegisterAsync(domain, [reactor, request, response,
                                 held = std::make_shared<CallGate::Ticket>(
                                     *std::move(ticket))](
                                    absl::StatusOr<Lease> lease) {
    if (!lease.ok()) {
      reactor->Finish(ToGrpcStatus(lease.status()));
      return;
    }
    response->set_lease_id(lease->lease_id);
    response->set_ttl_ms(lease->entry.ttl.count());
    EntryToProto(lease->entry, response->mutable_entry());
    // Every registration, one line each: a fresh one, and a peer that
    // comes back with the lease it saved (restarted after a crash, or
    // after its lease was lost), which the log showed leaving before.
    LogLine(
        "registry",
        absl::StrCat(
            "register ", lease->entry.name,
            lease->entry.public_key
                ? absl::StrCat(" (key ",
                               ShortFingerprint(*lease->entry.public_key), ")")
                : std::string(" (no key)"),
            " -> ", lease->entry.address, " (ttl ", lease->entry.ttl.count(),
            " ms", request->lease_id().empty() ? "" : ", with its saved lease",
            ")"));
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* RegistryService::KeepAlive(
    grpc::CallbackServerContext* context, const v1::KeepAliveRequest* request,
    v1::KeepAliveResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  // Answered when the store has renewed (on etcd: when etcd answers the
  // renewal), without holding a callback thread meanwhile. `response`
  // lives until Finish().
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->KeepAliveAsync(request->name(), request->lease_id(),
                         [reactor, response,
                          held = std::make_shared<CallGate::Ticket>(
                              *std::move(ticket))](absl::StatusOr<Millis> ttl) {
                           if (ttl.ok()) response->set_ttl_ms(ttl->count());
                           reactor->Finish(ToGrpcStatus(ttl.status()));
                         });
  return reactor;
}

grpc::ServerUnaryReactor* RegistryService::Unregister(
    grpc::CallbackServerContext* context, const v1::UnregisterRequest* request,
    v1::UnregisterResponse* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store_->UnregisterAsync(
      request->name(), request->lease_id(),
      [reactor, request,
       held = std::make_shared<CallGate::Ticket>(*std::move(ticket))](
          const absl::Status& status) {
        if (status.ok()) {
          LogLine("registry", "unregister " + request->name());
        }
        reactor->Finish(ToGrpcStatus(status));
      });
  return reactor;
}

grpc::ServerUnaryReactor* RegistryService::Resolve(
    grpc::CallbackServerContext* context, const v1::ResolveRequest* request,
    v1::ResolveResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  absl::StatusOr<Entry> entry = store_->Resolve(request->name());
  if (entry.ok()) EntryToProto(*entry, response->mutable_entry());
  return Respond(context, entry.status());
}

grpc::ServerUnaryReactor* RegistryService::List(
    grpc::CallbackServerContext* context, const v1::ListRequest* request,
    v1::ListResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (absl::Status status = ValidatePrefix(request->prefix()); !status.ok()) {
    return Respond(context, status);
  }
  if (request->page_size() < 0) {
    return Respond(
        context, absl::InvalidArgumentError("page_size must not be negative"));
  }
  if (request->page_token().size() > kMaxNameLength) {
    return Respond(context, absl::InvalidArgumentError("bad page_token"));
  }
  if (!request->service().empty()) {
    if (absl::Status valid = ValidateService(request->service()); !valid.ok()) {
      return Respond(context, absl::InvalidArgumentError(
                                  absl::StrCat("service: ", valid.message())));
    }
  }
  int32_t page_size =
      request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  page_size = std::min(page_size, kMaxPageSize);
  ListPage page = store_->List(request->prefix(), page_size,
                               request->page_token(), request->service());
  for (const Entry& entry : page.entries) {
    EntryToProto(entry, response->add_entries());
  }
  response->set_next_page_token(page.next_page_token);
  response->set_service(page.service);
  // Counted only for the whole registry: cheap there (Store::Size(),
  // CountOffering(): counts kept, not scans).
  if (request->prefix().empty()) {
    response->set_total_size(
        static_cast<int64_t>(request->service().empty()
                                 ? store_->Size()
                                 : store_->CountOffering(request->service())));
  }
  return Respond(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::WatchEvent>* RegistryService::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  if (absl::Status admitted = admission_.OpenStream(*context); !admitted.ok()) {
    return new WatchRefusal(admitted);
  }
  absl::StatusOr<WatchScope> scope =
      WatchScopeFromProto(*request, options_.streams);
  if (!scope.ok()) return new WatchRefusal(scope.status());
  absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> ticket =
      admission_.HoldStream(*context);
  if (!ticket.ok()) return new WatchRefusal(ticket.status());
  return new WatchReactor(store_, *scope, request->revision(),
                          *std::move(ticket));
}

grpc::ServerUnaryReactor* RegistryService::PutStatic(
    grpc::CallbackServerContext* context, const v1::PutStaticRequest* request,
    v1::PutStaticResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (absl::Status admin =
          CheckAdminToken(*context, options_.admin_token, "PutStatic");
      !admin.ok()) {
    return Respond(context, admin);
  }
  absl::StatusOr<Entry> entry = store_->PutStatic(
      request->name(), request->address(),
      {request->services().begin(), request->services().end()});
  if (!entry.ok()) return Respond(context, entry.status());
  EntryToProto(*entry, response->mutable_entry());
  LogLine("registry",
          absl::StrCat("static ", entry->name, " -> ", entry->address,
                       " (offers ", JoinServices(entry->services), ")"));
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* RegistryService::RemoveStatic(
    grpc::CallbackServerContext* context,
    const v1::RemoveStaticRequest* request,
    v1::RemoveStaticResponse* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (absl::Status admin =
          CheckAdminToken(*context, options_.admin_token, "RemoveStatic");
      !admin.ok()) {
    return Respond(context, admin);
  }
  absl::Status status = store_->RemoveStatic(request->name());
  if (status.ok()) LogLine("registry", "remove static " + request->name());
  return Respond(context, status);
}

grpc::ServerUnaryReactor* RegistryService::Challenge(
    grpc::CallbackServerContext* context, const v1::ChallengeRequest* request,
    v1::ChallengeResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (absl::Status valid = ValidateName(request->name()); !valid.ok()) {
    return Respond(context, valid);
  }
  response->set_challenge(challenges_->Issue(request->name()));
  response->set_expires_in_ms(challenges_->lifetime().count());
  return Respond(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* RegistryService::GetBinding(
    grpc::CallbackServerContext* context, const v1::GetBindingRequest* request,
    v1::GetBindingResponse* response) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  absl::StatusOr<Binding> binding = store_->GetBinding(request->name());
  if (binding.ok()) BindingToProto(*binding, response);
  return Respond(context, binding.status());
}

grpc::ServerUnaryReactor* RegistryService::Release(
    grpc::CallbackServerContext* context, const v1::ReleaseRequest* request,
    v1::ReleaseResponse* /*response*/) {
  absl::StatusOr<CallGate::Ticket> ticket = admission_.AdmitCall(*context);
  if (!ticket.ok()) return Respond(context, ticket.status());
  if (absl::Status admin =
          CheckAdminToken(*context, options_.admin_token, "Release");
      !admin.ok()) {
    return Respond(context, admin);
  }
  absl::Status status = store_->Release(request->name());
  if (status.ok()) LogLine("registry", "release " + request->name());
  return Respond(context, status);
}

}  // namespace chat::registry
