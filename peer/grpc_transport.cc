#include "peer/grpc_transport.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "proto/chat.grpc.pb.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using Stub = ::ChattingService::Stub;

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(registry::RegistryClient* registry, Millis rpc_timeout,
                Envelope* envelope,
                std::function<void(const registry::Entry&)> on_resolved,
                PeerDialing dialing)
      : registry_(registry),
        rpc_timeout_(rpc_timeout),
        envelope_(envelope),
        on_resolved_(std::move(on_resolved)),
        dialing_(std::move(dialing)) {}

  std::vector<absl::Status> SendWindow(
      const std::vector<ChatMessage>& messages) override {
    if (messages.empty()) return {};
    absl::StatusOr<std::shared_ptr<Stub>> stub =
        StubFor(messages.front().to, /*fresh=*/false);
    if (!stub.ok()) {
      return std::vector<absl::Status>(messages.size(), stub.status());
    }
    struct Call {
      grpc::ClientContext context;
      ::Message request;
      ::NullMsg response;
      absl::Status status;
    };
    std::vector<Call> calls(messages.size());
    int wrapped = 0;
    for (size_t i = 0; i < messages.size(); ++i) {
      absl::StatusOr<::Message> request = envelope_->Wrap(messages[i]);
      if (request.ok()) {
        calls[i].request = *std::move(request);
        ++wrapped;
      } else {
        calls[i].status = request.status();
      }
    }
    absl::BlockingCounter pending(wrapped);
    // gRPC deadlines are on the real clock.
    const auto deadline = std::chrono::system_clock::now() + rpc_timeout_;
    for (size_t i = 0; i < messages.size(); ++i) {
      Call& call = calls[i];
      if (!call.status.ok()) continue;
      call.context.set_deadline(deadline);
      (*stub)->async()->SendMessage(&call.context, &call.request,
                                    &call.response,
                                    [&call, &pending](grpc::Status status) {
                                      call.status = FromGrpcStatus(status);
                                      pending.DecrementCount();
                                    });
    }
    pending.Wait();
    std::vector<absl::Status> statuses;
    statuses.reserve(calls.size());
    for (Call& call : calls) statuses.push_back(std::move(call.status));
    return statuses;
  }

  absl::Status SendOne(const ChatMessage& message, bool fresh) override {
    absl::Status last;
    for (int attempt = fresh ? 1 : 0; attempt < 2; ++attempt) {
      // The second attempt resolves afresh: the peer may have moved.
      absl::StatusOr<std::shared_ptr<Stub>> stub =
          StubFor(message.to, /*fresh=*/attempt > 0);
      if (!stub.ok()) return stub.status();
      // Wrapped after the resolve, which may have shown a new key.
      absl::StatusOr<::Message> proto = envelope_->Wrap(message);
      if (!proto.ok()) return proto.status();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + rpc_timeout_);
      ::NullMsg response;
      grpc::Status status = (*stub)->SendMessage(&context, *proto, &response);
      if (status.ok()) return absl::OkStatus();
      last = FromGrpcStatus(status);
      // Nobody, or someone else, serves that address now.
      const bool stale =
          status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
          status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
          status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
      if (!stale) break;
      Forget(message.to);
    }
    if (last.code() == absl::StatusCode::kUnavailable ||
        last.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::UnavailableError(
          absl::StrCat(message.to, " is unreachable (", last.message(), ")"));
    }
    return last;
  }

  absl::Status Deposit(const ChatMessage& message) override {
    registry::MailItem item;
    item.id = message.id;
    item.sender = message.from;
    item.recipient = message.to;
    // Sealed like a direct message: the registry sees only the routing.
    absl::StatusOr<::Message> proto =
        envelope_->Wrap(message, /*for_mailbox=*/true);
    if (!proto.ok()) return proto.status();
    proto->SerializeToString(&item.payload);
    absl::Status stored = registry_->Deposit(item);
    if (stored.code() == absl::StatusCode::kUnimplemented) {
      return absl::UnimplementedError("this registry has no mailbox");
    }
    return stored;
  }

  void Forget(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    stubs_.erase(registry::NameKey(name));
  }

  absl::Status SendReadReceipts(const std::string& to,
                                const ::ReadReceipts& receipts) override {
    absl::StatusOr<std::shared_ptr<Stub>> stub = StubFor(to, /*fresh=*/false);
    if (!stub.ok()) return stub.status();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + rpc_timeout_);
    ::NullMsg response;
    return FromGrpcStatus((*stub)->SendReceipts(&context, receipts, &response));
  }

 private:
  // The channel to `name`, resolved now when `fresh` or none is known.
  absl::StatusOr<std::shared_ptr<Stub>> StubFor(const std::string& name,
                                                bool fresh)
      ABSL_LOCKS_EXCLUDED(mu_) {
    const std::string key = registry::NameKey(name);
    if (!fresh) {
      absl::MutexLock lock(&mu_);
      auto it = stubs_.find(key);
      if (it != stubs_.end()) return it->second;
    }
    absl::StatusOr<registry::Entry> entry = registry_->Resolve(name);
    if (!entry.ok()) {
      if (entry.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat(name, " is not online"));
      }
      return entry.status();
    }
    on_resolved_(*entry);
    grpc::ChannelArguments args;
    if (dialing_.tls) {
      // The address is wherever the peer runs; its certificate names it.
      SetTlsServerName(args, dialing_.peer_name.empty()
                                 ? registry::NameKey(entry->name)
                                 : dialing_.peer_name);
    }
    auto stub = std::shared_ptr<Stub>(::ChattingService::NewStub(
        grpc::CreateCustomChannel(entry->address,
                                  dialing_.credentials != nullptr
                                      ? dialing_.credentials
                                      : grpc::InsecureChannelCredentials(),
                                  args)));
    absl::MutexLock lock(&mu_);
    stubs_[key] = stub;
    return stub;
  }

  registry::RegistryClient* const registry_;  // Not owned.
  const Millis rpc_timeout_;
  Envelope* const envelope_;  // Not owned.
  const std::function<void(const registry::Entry&)> on_resolved_;
  const PeerDialing dialing_;
  absl::Mutex mu_;
  // By name key. Shared: a send in flight keeps its stub while the cache
  // moves on.
  absl::flat_hash_map<std::string, std::shared_ptr<Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Transport> NewGrpcTransport(
    registry::RegistryClient* registry, Millis rpc_timeout, Envelope* envelope,
    std::function<void(const registry::Entry&)> on_resolved,
    PeerDialing dialing) {
  return std::make_unique<GrpcTransport>(registry, rpc_timeout, envelope,
                                         std::move(on_resolved),
                                         std::move(dialing));
}

}  // namespace chat::peer
