#include "peer/grpc_transport.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "peer/lru_map.h"
#include "peer/sealing.h"
#include "proto/chat.grpc.pb.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using Stub = ::ChattingService::Stub;

// A channel to one peer, and the address it dials.
struct Channel {
  std::string address;
  std::shared_ptr<Stub> stub;  // Shared: a send in flight keeps it.
};

// Nobody, or someone else, serves that address now.
bool Stale(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

// A direct send's outcome in the two parts of a Transport status.
absl::Status DirectOutcome(const grpc::Status& status, const std::string& to) {
  if (status.ok()) return absl::OkStatus();
  absl::Status detailed = FromGrpcStatus(status);
  const std::string detail = detailed.ToString();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNIMPLEMENTED:  // Another program at its address.
      return WithDetail(
          absl::UnavailableError(absl::StrCat(to, " is unreachable")), detail);
    default:
      // The recipient's peer refused it; its message says why.
      return WithDetail(std::move(detailed), detail);
  }
}

// The proof of delivery in an answer's trailing metadata; "" when none came.
std::string ProofIn(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(kDeliveredMetadata);
  if (it == trailers.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(registry::RegistryClient* registry, Envelope* envelope,
                GrpcTransportOptions options)
      : registry_(registry),
        envelope_(envelope),
        options_(std::move(options)),
        channels_(options_.max_channels) {}

  std::vector<absl::StatusOr<Delivery>> SendWindow(
      const std::vector<ChatMessage>& messages) override {
    if (messages.empty()) return {};
    const std::string& to = messages.front().to;
    absl::StatusOr<Channel> channel = Known(to);
    if (!channel.ok()) {
      return std::vector<absl::StatusOr<Delivery>>(messages.size(),
                                                   channel.status());
    }
    struct Call {
      grpc::ClientContext context;
      ::Message request;
      ::NullMsg response;
      grpc::Status grpc_status;
      absl::Status status;  // Set when it was never sent.
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
    const auto deadline =
        std::chrono::system_clock::now() + options_.rpc_timeout;
    for (Call& call : calls) {
      if (!call.status.ok()) continue;
      call.context.set_deadline(deadline);
      channel->stub->async()->SendMessage(
          &call.context, &call.request, &call.response,
          [&call, &pending](grpc::Status status) {
            call.grpc_status = std::move(status);
            pending.DecrementCount();
          });
    }
    pending.Wait();
    std::vector<absl::StatusOr<Delivery>> statuses;
    statuses.reserve(calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      Call& call = calls[i];
      if (!call.status.ok()) {
        statuses.push_back(std::move(call.status));
      } else {
        statuses.push_back(
            Proven(messages[i], call.request, call.context, call.grpc_status));
      }
    }
    return statuses;
  }

  absl::StatusOr<Delivery> SendOne(const ChatMessage& message,
                                   bool fresh) override {
    const std::string& to = message.to;
    if (fresh) {
      // The known address has just failed: ask the registry where it is.
      absl::StatusOr<Channel> resolved = Resolve(to);
      if (resolved.ok()) return Call(*resolved, message);
      if (!IsRegistryUnreachable(resolved.status())) return resolved.status();
      // The registry is away: the address we knew is all there is.
      std::optional<Channel> known = KnownWithoutRegistry(to);
      if (!known.has_value()) return resolved.status();
      return Call(*known, message);
    }
    absl::StatusOr<Channel> channel = Known(to);
    if (!channel.ok()) return channel.status();
    grpc::Status first;
    absl::StatusOr<Delivery> sent = Call(*channel, message, &first);
    if (sent.ok() || !Stale(first)) return sent;
    // The peer may have moved: resolve afresh and send once more.
    absl::StatusOr<Channel> resolved = Resolve(to);
    if (!resolved.ok()) {
      // With the registry away, the known address stands; its failure is
      // the answer ("bob is unreachable"), tried again later.
      if (IsRegistryUnreachable(resolved.status())) return sent.status();
      return resolved.status();
    }
    return Call(*resolved, message);
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
    if (stored.ok()) return stored;
    const std::string detail = stored.ToString();
    if (registry::IsUnreachable(stored)) {
      return WithDetail(absl::UnavailableError(kRegistryUnreachable), detail);
    }
    switch (stored.code()) {
      case absl::StatusCode::kUnimplemented:
        return WithDetail(
            absl::UnimplementedError("the registry has no mailbox"), detail);
      case absl::StatusCode::kResourceExhausted:
        return WithDetail(absl::ResourceExhaustedError(
                              absl::StrCat(message.to, "'s mailbox is full")),
                          detail);
      default:
        return WithDetail(
            absl::Status(stored.code(), "the registry would not store it"),
            detail);
    }
  }

  void Forget(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    channels_.Erase(registry::NameKey(name));
  }

  absl::Status SendReadReceipts(const std::string& to,
                                const ::ReadReceipts& receipts) override {
    absl::StatusOr<Channel> channel = Known(to);
    if (!channel.ok()) return channel.status();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         options_.rpc_timeout);
    ::NullMsg response;
    return FromGrpcStatus(
        channel->stub->SendReceipts(&context, receipts, &response));
  }

 private:
  // Sends `message` over `channel`; the raw gRPC status in `raw` if asked.
  absl::StatusOr<Delivery> Call(const Channel& channel,
                                const ChatMessage& message,
                                grpc::Status* raw = nullptr) {
    // Wrapped after a resolve, which may have shown a new key.
    absl::StatusOr<::Message> proto = envelope_->Wrap(message);
    if (!proto.ok()) return proto.status();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         options_.rpc_timeout);
    ::NullMsg response;
    grpc::Status status =
        channel.stub->SendMessage(&context, *proto, &response);
    if (raw != nullptr) *raw = status;
    return Proven(message, *proto, context, status);
  }

  // The outcome of sending `message` (as `sent`, sealed or plain) whose
  // answer was `status`: an OK counts only with the proof of delivery of
  // the recipient's key, or unverified from a recipient with none.
  absl::StatusOr<Delivery> Proven(const ChatMessage& message,
                                  const ::Message& sent,
                                  const grpc::ClientContext& context,
                                  const grpc::Status& status) {
    if (!status.ok()) return DirectOutcome(status, message.to);
    const std::string proof = ProofIn(context);
    absl::StatusOr<Proof> checked = envelope_->CheckDelivered(message, proof);
    if (checked.ok()) {
      // Sealed: only the key it was sealed to can prove it. Plain: the
      // recipient had no key, and still has none.
      if (!sent.sealed().empty() && *checked == Proof::kValid) {
        return Delivery::kProven;
      }
      if (sent.sealed().empty() && *checked == Proof::kNoKey) {
        return Delivery::kUnverified;
      }
    }
    std::string detail;
    if (!checked.ok()) {
      detail = absl::StrCat(
          "SendMessage answered OK; its proof cannot be "
          "checked now: ",
          checked.status().ToString());
    } else if (proof.empty()) {
      detail =
          absl::StrCat("SendMessage answered OK without ", kDeliveredMetadata,
                       " (not our peer, or an older one)");
    } else {
      detail =
          absl::StrCat("SendMessage answered OK with a ", kDeliveredMetadata,
                       " that ", message.to, "'s key did not make");
    }
    return WithDetail(absl::UnavailableError(absl::StrCat(
                          message.to, " did not confirm it with its key")),
                      detail);
  }

  // The last address known for `name` without asking the registry: its
  // channel, else the address the watch lists (dialled now).
  std::optional<Channel> KnownWithoutRegistry(const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_) {
    const std::string key = registry::NameKey(name);
    {
      absl::MutexLock lock(&mu_);
      if (Channel* channel = channels_.Find(key)) return *channel;
    }
    if (options_.online == nullptr) return std::nullopt;
    std::optional<registry::Entry> listed = options_.online->Find(name);
    if (!listed.has_value() || listed->address.empty()) return std::nullopt;
    return Dial(name, listed->address);
  }

  // The last address known for `name`, else one resolved now.
  absl::StatusOr<Channel> Known(const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_) {
    std::optional<Channel> known = KnownWithoutRegistry(name);
    if (known.has_value()) return *std::move(known);
    return Resolve(name);
  }

  // Asks the registry where `name` is and dials it there.
  absl::StatusOr<Channel> Resolve(const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::StatusOr<registry::Entry> entry = registry_->Resolve(name);
    if (!entry.ok()) {
      const std::string detail = entry.status().ToString();
      if (entry.status().code() == absl::StatusCode::kNotFound) {
        Forget(name);  // Whatever address we knew is gone.
        return WithDetail(
            absl::NotFoundError(absl::StrCat(name, " is offline")), detail);
      }
      if (registry::IsUnreachable(entry.status())) {
        return WithDetail(absl::UnavailableError(kRegistryUnreachable), detail);
      }
      return WithDetail(absl::Status(entry.status().code(),
                                     absl::StrCat("could not look up ", name)),
                        detail);
    }
    if (options_.listings != nullptr) options_.listings->OnListed(*entry);
    return Dial(entry->name, entry->address);
  }

  // A new channel to `name` at `address`, kept as its last known one.
  Channel Dial(const std::string& name, const std::string& address)
      ABSL_LOCKS_EXCLUDED(mu_) {
    grpc::ChannelArguments args;
    if (options_.dialing.tls) {
      // The address is wherever the peer runs; its certificate names it,
      // as a peer (never a host, so no registry's certificate passes).
      SetTlsServerName(args, PeerCertificateName(registry::NameKey(
                                 options_.dialing.peer_name.empty()
                                     ? name
                                     : options_.dialing.peer_name)));
    }
    // gRPC waits up to two minutes between reconnects by default; a peer
    // that was away is then missed long after it is back. A retry of ours
    // should find it: wait at most a second.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    Channel channel;
    channel.address = address;
    channel.stub = std::shared_ptr<Stub>(::ChattingService::NewStub(
        grpc::CreateCustomChannel(address,
                                  options_.dialing.credentials != nullptr
                                      ? options_.dialing.credentials
                                      : grpc::InsecureChannelCredentials(),
                                  args)));
    absl::MutexLock lock(&mu_);
    channels_.Put(registry::NameKey(name), channel);
    return channel;
  }

  registry::RegistryClient* const registry_;  // Not owned.
  Envelope* const envelope_;                  // Not owned.
  const GrpcTransportOptions options_;
  absl::Mutex mu_;
  // By name key, at most options_.max_channels.
  LruMap<Channel> channels_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Transport> NewGrpcTransport(registry::RegistryClient* registry,
                                            Envelope* envelope,
                                            GrpcTransportOptions options) {
  return std::make_unique<GrpcTransport>(registry, envelope,
                                         std::move(options));
}

}  // namespace chat::peer
