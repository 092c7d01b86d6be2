// RegistryClient over several registries: small fake registries on
// loopback that answer as told, and port 1 for a registry that is down.
// Time is a FakeClock, so every registry failed stays passed over.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "registry/client/registry_client.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

// Nothing listens on port 1 of loopback: refused at once.
constexpr char kDown[] = "127.0.0.1:1";

// Answers every call with `answer` (OK: a plausible answer), and counts.
class FakeRegistry final : public v1::Registry::Service {
 public:
  explicit FakeRegistry(grpc::StatusCode answer = grpc::StatusCode::OK)
      : answer_(answer) {}

  grpc::Status Resolve(grpc::ServerContext* /*context*/,
                       const v1::ResolveRequest* request,
                       v1::ResolveResponse* response) override {
    Count();
    response->mutable_entry()->set_name(request->name());
    response->mutable_entry()->set_address("127.0.0.1:7000");
    return Answer();
  }

  grpc::Status Register(grpc::ServerContext* /*context*/,
                        const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      proof_times_.push_back(request->proof_unix_ms());
    }
    Count();
    response->set_lease_id("lease");
    response->mutable_entry()->set_name(request->name());
    return Answer();
  }

  grpc::Status Unregister(grpc::ServerContext* /*context*/,
                          const v1::UnregisterRequest* /*request*/,
                          v1::UnregisterResponse* /*response*/) override {
    Count();
    return Answer();
  }

  grpc::Status Watch(grpc::ServerContext* /*context*/,
                     const v1::WatchRequest* /*request*/,
                     grpc::ServerWriter<v1::WatchEvent>* /*writer*/) override {
    Count();
    return Answer();
  }

  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::vector<int64_t> proof_times() {
    absl::MutexLock lock(&mu_);
    return proof_times_;
  }

 private:
  void Count() {
    absl::MutexLock lock(&mu_);
    ++calls_;
  }
  grpc::Status Answer() const {
    return answer_ == grpc::StatusCode::OK ? grpc::Status::OK
                                           : grpc::Status(answer_, "told to");
  }

  const grpc::StatusCode answer_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> proof_times_ ABSL_GUARDED_BY(mu_);
};

// A FakeRegistry served on a free loopback port.
class Served {
 public:
  explicit Served(grpc::StatusCode answer = grpc::StatusCode::OK)
      : service_(answer) {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  ~Served() { server_->Shutdown(); }

  const std::string& address() const { return address_; }
  FakeRegistry& service() { return service_; }

 private:
  FakeRegistry service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

// What the client told its switch listener.
struct Switch {
  std::string from;
  std::string to;
  std::string why;
};

class FailoverTest : public ::testing::Test {
 protected:
  std::unique_ptr<RegistryClient> Connect(
      const std::vector<std::string>& addresses) {
    std::vector<RegistryClient::Endpoint> endpoints;
    for (const std::string& address : addresses) {
      endpoints.push_back(
          {address,
           grpc::CreateChannel(address, grpc::InsecureChannelCredentials())});
    }
    auto client =
        std::make_unique<RegistryClient>(std::move(endpoints), Millis(5000));
    client->SetClock(clock_);
    client->SetSwitchListener([this](const std::string& from,
                                     const std::string& to,
                                     const absl::Status& why) {
      switches_.push_back({from, to, std::string(why.message())});
    });
    return client;
  }

  FakeClock clock_;
  std::vector<Switch> switches_;
};

TEST_F(FailoverTest, OneRegistryReadsAsBefore) {
  auto client = Connect({kDown});
  EXPECT_EQ(client->target(), kDown);
  EXPECT_THAT(client->Resolve("bob"),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("registry at 127.0.0.1:1 is unreachable: ")));
  EXPECT_TRUE(switches_.empty());
}

TEST_F(FailoverTest, ACallMovesOnFromARegistryThatIsDownAndStaysThere) {
  Served live;
  auto client = Connect({kDown, live.address()});
  auto entry = client->Resolve("bob");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "127.0.0.1:7000");
  EXPECT_EQ(client->current_address(), live.address());
  ASSERT_EQ(switches_.size(), 1u);
  EXPECT_EQ(switches_[0].from, kDown);
  EXPECT_EQ(switches_[0].to, live.address());
  EXPECT_THAT(switches_[0].why, HasSubstr("registry at 127.0.0.1:1"));
  ASSERT_THAT(client->Resolve("carol"), IsOk());
  EXPECT_EQ(live.service().calls(), 2);
  EXPECT_EQ(switches_.size(), 1u);  // Told once.
}

TEST_F(FailoverTest, NoneReachableIsSaidOnceNamingThemAll) {
  Served refusing(grpc::StatusCode::UNAVAILABLE);
  auto client = Connect({kDown, refusing.address()});
  EXPECT_THAT(
      client->Resolve("bob"),
      StatusIs(absl::StatusCode::kUnavailable,
               HasSubstr(absl::StrCat("no registry reachable (", kDown, ", ",
                                      refusing.address(), "): told to"))));
  EXPECT_EQ(refusing.service().calls(), 1);
  // Nowhere better to go: no second switch is told.
  EXPECT_EQ(switches_.size(), 1u);
}

TEST_F(FailoverTest, ARefusalIsAnAnswerAndIsNotRetried) {
  Served first(grpc::StatusCode::NOT_FOUND);
  Served second;
  auto client = Connect({first.address(), second.address()});
  EXPECT_THAT(client->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(second.service().calls(), 0);
}

TEST_F(FailoverTest, NoAnswerInTimeIsNotRetriedButTheNextCallGoesOn) {
  Served slow(grpc::StatusCode::DEADLINE_EXCEEDED);
  Served second;
  auto client = Connect({slow.address(), second.address()});
  EXPECT_THAT(
      client->Resolve("bob"),
      StatusIs(absl::StatusCode::kDeadlineExceeded,
               HasSubstr(absl::StrCat("registry at ", slow.address()))));
  EXPECT_EQ(second.service().calls(), 0);
  EXPECT_THAT(client->Resolve("bob"), IsOk());
  EXPECT_EQ(second.service().calls(), 1);
}

TEST_F(FailoverTest, RegisterIsSignedAfreshForTheNextRegistry) {
  // The first answers UNAVAILABLE after reading the proof: it may have
  // taken it, so the same proof would be a replay at the second.
  Served lost(grpc::StatusCode::UNAVAILABLE);
  Served second;
  auto client = Connect({lost.address(), second.address()});
  const Identity identity = Identity::Generate();
  auto lease = client->Register({"bob", "127.0.0.1:7001"}, &identity);
  ASSERT_THAT(lease, IsOk());
  ASSERT_EQ(lost.service().proof_times().size(), 1u);
  ASSERT_EQ(second.service().proof_times().size(), 1u);
  EXPECT_GT(second.service().proof_times()[0], lost.service().proof_times()[0]);
}

TEST_F(FailoverTest, UnregisterNotFoundAfterAFailoverReadsAsDone) {
  Served lost(grpc::StatusCode::UNAVAILABLE);
  Served gone(grpc::StatusCode::NOT_FOUND);
  auto client = Connect({lost.address(), gone.address()});
  EXPECT_THAT(client->Unregister("bob", "lease"), IsOk());
  // Without a failover, NOT_FOUND is the registry's answer as ever.
  EXPECT_THAT(client->Unregister("bob", "lease"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(FailoverTest, AStreamThatLostItsRegistryReopensAtTheNext) {
  Served lost(grpc::StatusCode::UNAVAILABLE);
  Served second;
  auto client = Connect({lost.address(), second.address()});
  std::unique_ptr<WatchStream> stream = client->Watch("");
  EXPECT_EQ(stream->target(), lost.address());
  WatchEvent event;
  EXPECT_FALSE(stream->Next(&event));
  EXPECT_THAT(
      stream->Finish(),
      StatusIs(absl::StatusCode::kUnavailable,
               HasSubstr(absl::StrCat("registry at ", lost.address()))));
  EXPECT_EQ(client->current_address(), second.address());
  ASSERT_EQ(switches_.size(), 1u);
  stream = client->Watch("");
  EXPECT_EQ(stream->target(), second.address());
  EXPECT_FALSE(stream->Next(&event));
  EXPECT_THAT(stream->Finish(), IsOk());
  EXPECT_EQ(second.service().calls(), 1);
}

}  // namespace
}  // namespace chat::registry
