#include "tests/bench/workloads.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/identity.h"
#include "common/random.h"
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
  // What a peer does to take its name: Challenge, Register with the proof
  // made by its identity key (one per caller), then Unregister.
  RegisterWorkload(const Channels& channels, int callers)
      : UnaryWorkload(channels, callers),
        run_(RandomHex(3)),
        first_(callers),
        second_(callers),
        counts_(callers, 0) {
    identities_.reserve(callers);
    for (int i = 0; i < callers; ++i) {
      identities_.push_back(Identity::Generate());
    }
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = callers_[caller];
    First& f = first_[caller];
    // Unique across callers, calls and runs in one registry.
    f.request.set_name(
        absl::StrCat("reg-", run_, "-", caller, "-", counts_[caller]++));
    f.context = NewContext();
    f.response.Clear();
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
    c.request.set_public_key(identity.public_key().Bytes());
    c.request.set_challenge(f.response.challenge());
    c.request.set_signature(identity.Sign(RegistrationProofMessage(
        c.request.name(), c.request.address(), c.request.challenge(),
        identity.public_key())));
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

  const std::string run_;
  std::vector<Identity> identities_;
  std::vector<First> first_;
  std::vector<Second> second_;
  std::vector<int64_t> counts_;
};

class LeaseFillWorkload final
    : public UnaryWorkload<v1::Registry, v1::RegisterRequest,
                           v1::RegisterResponse> {
 public:
  LeaseFillWorkload(const Channels& channels, int callers,
                    std::string name_prefix, Millis ttl)
      : UnaryWorkload(channels, callers), prefix_(std::move(name_prefix)) {
    for (Caller& c : callers_) {
      c.request.set_address("127.0.0.1:9");
      c.request.set_ttl_ms(ttl.count());
    }
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    c.request.set_name(FillName(prefix_, next_.fetch_add(1)));
    c.stub->async()->Register(c.context.get(), &c.request, &c.response,
                              Reply(std::move(done)));
  }

 private:
  const std::string prefix_;
  std::atomic<int64_t> next_{0};
};

class MixedWorkload final : public Workload {
 public:
  MixedWorkload(const Channels& channels, int callers,
                std::vector<std::string> names, std::vector<HeldLease> leases)
      : resolve_(channels, callers, std::move(names)),
        register_(channels, callers),
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
  SendWorkload(const Channels& channels, int callers, std::string sender,
               std::string recipient)
      : UnaryWorkload(channels, callers), run_(RandomHex(4)), counts_(callers) {
    for (Caller& c : callers_) {
      c.request.set_sender(sender);
      c.request.set_recipient(recipient);
      c.request.set_msg("a benchmark message of ordinary length");
      c.request.set_time("12:00");
    }
  }

  void Start(int caller, DoneCallback done) override {
    Caller& c = Prepare(caller);
    // A fresh id each time, or the receiver would take it for a retry.
    c.request.set_id(
        absl::StrCat("bench-", run_, "-", caller, "-", counts_[caller]++));
    c.request.set_sent_at_unix_ms(absl::ToUnixMillis(absl::Now()));
    c.stub->async()->SendMessage(c.context.get(), &c.request, &c.response,
                                 Reply(std::move(done)));
  }

 private:
  const std::string run_;
  std::vector<int64_t> counts_;
};

class DurableSendWorkload final : public Workload {
 public:
  DurableSendWorkload(peer::Peer* sender, SendResults* results,
                      std::string recipient)
      : sender_(sender), results_(results), recipient_(std::move(recipient)) {}

  void Start(int /*caller*/, DoneCallback done) override {
    absl::StatusOr<std::string> id =
        sender_->Send(recipient_, "a benchmark message of ordinary length");
    if (!id.ok()) {
      done(absl::StatusCodeToString(id.status().code()));
      return;
    }
    results_->Expect(*id, std::move(done));
  }

 private:
  peer::Peer* const sender_;    // Not owned.
  SendResults* const results_;  // Not owned.
  const std::string recipient_;
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
  return std::make_unique<LeaseFillWorkload>(channels, callers,
                                             std::move(name_prefix), ttl);
}

std::string FillName(const std::string& name_prefix, int64_t i) {
  return absl::StrCat(name_prefix, i);
}

std::unique_ptr<Workload> NewRegisterWorkload(const Channels& channels,
                                              int callers) {
  return std::make_unique<RegisterWorkload>(channels, callers);
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
                                          std::string sender,
                                          std::string recipient) {
  return std::make_unique<SendWorkload>(channels, callers, std::move(sender),
                                        std::move(recipient));
}

std::unique_ptr<Workload> NewDurableSendWorkload(peer::Peer* sender,
                                                 SendResults* results,
                                                 std::string recipient) {
  return std::make_unique<DurableSendWorkload>(sender, results,
                                               std::move(recipient));
}

}  // namespace chat::bench
