#include "tests/bench/workloads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/random.h"
#include "peer/message.h"
#include "peer/sealing.h"
#include "proto/chat.grpc.pb.h"
#include "proto/greet.grpc.pb.h"
#include "proto/registry.grpc.pb.h"

namespace chat::bench {
namespace {

namespace v1 = registry::v1;

std::unique_ptr<grpc::ClientContext> NewContext(
    Millis deadline = kDefaultCallDeadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + deadline);
  return context;
}

std::function<void(grpc::Status)> Reply(DoneCallback done) {
  return [done = std::move(done)](const grpc::Status& status) {
    done(status.ok() ? std::string() : CodeName(status.error_code()));
  };
}

template <typename Service>
std::vector<std::unique_ptr<typename Service::Stub>> NewStubs(
    const Channels& channels) {
  std::vector<std::unique_ptr<typename Service::Stub>> stubs;
  for (const auto& channel : channels)
    stubs.push_back(Service::NewStub(channel));
  return stubs;
}

// What every caller of a unary workload holds: its stub, the context of its
// call in flight, and a random source of its own.
template <typename Stub, typename Request, typename Response>
struct UnaryCaller {
  Stub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  Request request;
  Response response;
  std::mt19937_64 random;
};

template <typename Service, typename Request, typename Response>
class UnaryWorkload : public Workload {
 protected:
  using Caller = UnaryCaller<typename Service::Stub, Request, Response>;

  UnaryWorkload(const Channels& channels, int callers,
                Millis deadline = kDefaultCallDeadline)
      : stubs_(NewStubs<Service>(channels)),
        deadline_(deadline),
        callers_(callers) {
    for (int i = 0; i < callers; ++i) {
      callers_[i].stub = stubs_[i % stubs_.size()].get();
      callers_[i].random.seed(static_cast<uint64_t>(i) * 7919 + 17);
    }
  }

  // A fresh context and response for the caller's next call.
  Caller& Prepare(int caller) {
    Caller& c = callers_[caller];
    c.context = NewContext(deadline_);
    c.response.Clear();
    return c;
  }

 private:
  std::vector<std::unique_ptr<typename Service::Stub>> stubs_;
  const Millis deadline_;

 protected:
  std::vector<Caller> callers_;
};

class GreetWorkload final
    : public UnaryWorkload<::GreetService, ::GreetRequest, ::GreetResponse> {
 public:
  GreetWorkload(const Channels& channels, int callers)
      : UnaryWorkload(channels, callers) {
    for (Caller& c : callers_) c.request.set_name("bench");
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    c.stub->async()->Greet(c.context.get(), &c.request, &c.response,
                           Reply(std::move(done)));
  }
};

class ResolveWorkload final
    : public UnaryWorkload<v1::Registry, v1::ResolveRequest,
                           v1::ResolveResponse> {
 public:
  ResolveWorkload(const Channels& channels, int callers,
                  std::vector<std::string> names,
                  Millis deadline = kDefaultCallDeadline)
      : UnaryWorkload(channels, callers, deadline), names_(std::move(names)) {}

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    c.request.set_name(names_[c.random() % names_.size()]);
    c.stub->async()->Resolve(c.context.get(), &c.request, &c.response,
                             Reply(std::move(done)));
  }

 private:
  const std::vector<std::string> names_;
};

class KeepAliveWorkload final
    : public UnaryWorkload<v1::Registry, v1::KeepAliveRequest,
                           v1::KeepAliveResponse> {
 public:
  KeepAliveWorkload(const Channels& channels, int callers,
                    std::vector<HeldLease> leases)
      : UnaryWorkload(channels, callers), leases_(std::move(leases)) {}

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    const HeldLease& lease = leases_[c.random() % leases_.size()];
    c.request.set_name(lease.name);
    c.request.set_lease_id(lease.lease_id);
    c.stub->async()->KeepAlive(c.context.get(), &c.request, &c.response,
                               Reply(std::move(done)));
  }

 private:
  const std::vector<HeldLease> leases_;
};

class RegisterWorkload final
    : public UnaryWorkload<v1::Registry, v1::RegisterRequest,
                           v1::RegisterResponse> {
 public:
  // The name caller `caller` registers next.
  using NameFn = std::function<std::string(int caller)>;

  // What a peer does to take its name: Register of next_name(caller)
  // asking for `ttl` with the proof made by its identity key (one per
  // caller): a chat-register-v2 proof dated now, or, with `challenge`, as
  // older peers do, Challenge first and its v1 proof; then, with
  // `unregister`, Unregister.
  RegisterWorkload(const Channels& channels, int callers, NameFn next_name,
                   Millis ttl, bool unregister, bool challenge = false)
      : UnaryWorkload(channels, callers),
        next_name_(std::move(next_name)),
        ttl_(ttl),
        unregister_(unregister),
        challenge_(challenge),
        first_(callers),
        second_(callers),
        last_proof_(callers, 0) {
    identities_.reserve(callers);
    for (int i = 0; i < callers; ++i) {
      identities_.push_back(Identity::Generate());
    }
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = callers_[caller];
    First& f = first_[caller];
    f.request.set_name(next_name_(caller));
    f.response.Clear();
    if (!challenge_) {
      Register(caller, std::move(done));
      return;
    }
    f.context = NewContext();
    c.stub->async()->Challenge(
        f.context.get(), &f.request, &f.response,
        [this, caller, done = std::move(done)](const grpc::Status& status) {
          if (!status.ok()) {
            done(CodeName(status.error_code()));
            return;
          }
          Register(caller, std::move(done));
        });
  }

 private:
  struct First {
    std::unique_ptr<grpc::ClientContext> context;
    v1::ChallengeRequest request;
    v1::ChallengeResponse response;
  };
  struct Second {
    std::unique_ptr<grpc::ClientContext> context;
    v1::UnregisterRequest request;
    v1::UnregisterResponse response;
  };

  void Register(int caller, DoneCallback done) {
    Caller& c = Prepare(caller);
    const First& f = first_[caller];
    const Identity& identity = identities_[caller];
    c.request.set_name(f.request.name());
    c.request.set_address("127.0.0.1:9");
    c.request.set_ttl_ms(ttl_.count());
    c.request.set_public_key(identity.public_key().Bytes());
    if (challenge_) {
      c.request.set_challenge(f.response.challenge());
      c.request.set_signature(identity.Sign(RegistrationProofMessage(
          c.request.name(), c.request.address(), c.request.challenge(),
          identity.public_key())));
    } else {
      // As RegistryClient dates its proofs: each later than the last.
      int64_t& last = last_proof_[caller];
      last = std::max(absl::ToUnixMillis(absl::Now()), last + 1);
      c.request.set_proof_unix_ms(last);
      c.request.set_signature(identity.Sign(TimedRegistrationProofMessage(
          c.request.name(), c.request.address(), identity.public_key(), last)));
    }
    if (!unregister_) {
      c.stub->async()->Register(c.context.get(), &c.request, &c.response,
                                Reply(std::move(done)));
      return;
    }
    c.stub->async()->Register(
        c.context.get(), &c.request, &c.response,
        [this, caller, done = std::move(done)](const grpc::Status& status) {
          if (!status.ok()) {
            done(CodeName(status.error_code()));
            return;
          }
          Unregister(caller, std::move(done));
        });
  }

  void Unregister(int caller, DoneCallback done) {
    Caller& c = callers_[caller];
    Second& s = second_[caller];
    s.context = NewContext();
    s.request.set_name(c.request.name());
    s.request.set_lease_id(c.response.lease_id());
    c.stub->async()->Unregister(s.context.get(), &s.request, &s.response,
                                Reply(std::move(done)));
  }

  const NameFn next_name_;
  const Millis ttl_;
  const bool unregister_;
  const bool challenge_;
  std::vector<Identity> identities_;
  std::vector<First> first_;
  std::vector<Second> second_;
  std::vector<int64_t> last_proof_;  // Per caller.
};

// Fresh names for the register scenario, unique across callers, calls and
// runs in one registry.
RegisterWorkload::NameFn FreshNames(int callers) {
  auto counts = std::make_shared<std::vector<int64_t>>(callers, 0);
  return [run = RandomHex(3), counts](int caller) {
    return absl::StrCat("reg-", run, "-", caller, "-", (*counts)[caller]++);
  };
}

class MixedWorkload final : public Workload {
 public:
  MixedWorkload(const Channels& channels, int callers,
                std::vector<std::string> names, std::vector<HeldLease> leases)
      : resolve_(channels, callers, std::move(names)),
        register_(channels, callers, FreshNames(callers), Millis(0),
                  /*unregister=*/true),
        keep_alive_(channels, callers, std::move(leases)),
        random_(callers) {
    for (int i = 0; i < callers; ++i) random_[i].seed(i + 1);
  }

  void Start(int caller, DoneCallback done) override {
    const uint64_t dice = random_[caller]() % 100;
    if (dice < 90) {
      resolve_.Start(caller, std::move(done));
    } else if (dice < 95) {
      register_.Start(caller, std::move(done));
    } else {
      keep_alive_.Start(caller, std::move(done));
    }
  }

 private:
  ResolveWorkload resolve_;
  RegisterWorkload register_;
  KeepAliveWorkload keep_alive_;
  std::vector<std::mt19937_64> random_;
};

class SendWorkload final
    : public UnaryWorkload<::ChattingService, ::Message, ::NullMsg> {
 public:
  SendWorkload(const Channels& channels, int callers, const Identity& sender,
               std::string sender_name, std::string recipient,
               const PublicKey& recipient_key)
      : UnaryWorkload(channels, callers),
        cipher_(sender),
        sender_(std::move(sender_name)),
        recipient_(std::move(recipient)),
        recipient_key_(recipient_key) {}

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    peer::ChatMessage message;
    // A fresh id each time, or the receiver would take it for a retry; made
    // as a peer makes it (time-ordered: the receiver's indexes grow at
    // their end, as with real senders).
    message.id = NewUuidV7(absl::Now());
    message.from = sender_;
    message.to = recipient_;
    message.text = "a benchmark message of ordinary length";
    message.sent_at = absl::Now();
    // Sealed per message, as a peer does: the cost is part of the call.
    absl::StatusOr<::Message> sealed =
        peer::SealMessage(cipher_, recipient_key_, message);
    if (!sealed.ok()) {
      done(absl::StatusCodeToString(sealed.status().code()));
      return;
    }
    c.request = *std::move(sealed);
    c.stub->async()->SendMessage(c.context.get(), &c.request, &c.response,
                                 Reply(std::move(done)));
  }

 private:
  // Like a peer's: one for all callers, caching the shared key of the pair.
  PairCipher cipher_;
  const std::string sender_;
  const std::string recipient_;
  const PublicKey recipient_key_;
};

// Peer::Send until every copy is delivered: one for a name, one per other
// member for a group.
class DurableSendWorkload final : public Workload {
 public:
  DurableSendWorkload(peer::Peer* sender, SendResults* results,
                      std::string recipient, int copies)
      : sender_(sender),
        results_(results),
        recipient_(std::move(recipient)),
        copies_(copies) {}

  void Start(int /*caller*/, DoneCallback done) override {
    absl::StatusOr<std::string> id =
        sender_->Send(recipient_, "a benchmark message of ordinary length");
    if (!id.ok()) {
      done(absl::StatusCodeToString(id.status().code()));
      return;
    }
    results_->Expect(*id, std::move(done), copies_);
  }

 private:
  peer::Peer* const sender_;    // Not owned.
  SendResults* const results_;  // Not owned.
  const std::string recipient_;
  const int copies_;
};

}  // namespace

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::unique_ptr<Workload> NewGreetWorkload(const Channels& channels,
                                           int callers) {
  return std::make_unique<GreetWorkload>(channels, callers);
}

std::unique_ptr<Workload> NewResolveWorkload(const Channels& channels,
                                             int callers,
                                             std::vector<std::string> names,
                                             Millis deadline) {
  return std::make_unique<ResolveWorkload>(channels, callers, std::move(names),
                                           deadline);
}

std::unique_ptr<Workload> NewLeaseFillWorkload(const Channels& channels,
                                               int callers,
                                               std::string name_prefix,
                                               Millis ttl) {
  auto next = std::make_shared<std::atomic<int64_t>>(0);
  return std::make_unique<RegisterWorkload>(
      channels, callers,
      [prefix = std::move(name_prefix), next](int /*caller*/) {
        return FillName(prefix, next->fetch_add(1));
      },
      ttl, /*unregister=*/false);
}

std::string FillName(const std::string& name_prefix, int64_t i) {
  return absl::StrCat(name_prefix, i);
}

std::unique_ptr<Workload> NewRegisterWorkload(const Channels& channels,
                                              int callers, RegisterCall call,
                                              Millis ttl) {
  return std::make_unique<RegisterWorkload>(
      channels, callers, FreshNames(callers), ttl,
      /*unregister=*/call != RegisterCall::kRegister,
      /*challenge=*/call == RegisterCall::kChallengeCycle);
}

std::unique_ptr<Workload> NewKeepAliveWorkload(const Channels& channels,
                                               int callers,
                                               std::vector<HeldLease> leases) {
  return std::make_unique<KeepAliveWorkload>(channels, callers,
                                             std::move(leases));
}

std::unique_ptr<Workload> NewMixedWorkload(const Channels& channels,
                                           int callers,
                                           std::vector<std::string> names,
                                           std::vector<HeldLease> leases) {
  return std::make_unique<MixedWorkload>(channels, callers, std::move(names),
                                         std::move(leases));
}

std::unique_ptr<Workload> NewSendWorkload(const Channels& channels, int callers,
                                          const Identity& sender,
                                          std::string sender_name,
                                          std::string recipient,
                                          const PublicKey& recipient_key) {
  return std::make_unique<SendWorkload>(channels, callers, sender,
                                        std::move(sender_name),
                                        std::move(recipient), recipient_key);
}

std::unique_ptr<Workload> NewDurableSendWorkload(peer::Peer* sender,
                                                 SendResults* results,
                                                 std::string recipient) {
  return std::make_unique<DurableSendWorkload>(sender, results,
                                               std::move(recipient),
                                               /*copies=*/1);
}

std::unique_ptr<Workload> NewGroupSendWorkload(peer::Peer* sender,
                                               SendResults* results,
                                               std::string group, int copies) {
  return std::make_unique<DurableSendWorkload>(sender, results,
                                               std::move(group), copies);
}

}  // namespace chat::bench
