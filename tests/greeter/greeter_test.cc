// GreetService and the greeter's registration, each against a real server on
// loopback: a greeter started through chat::StartServer as main.cc does, and
// an in-process registry on a port the OS picks.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "gmock/gmock.h"
#include "greeter/greeter_service.h"
#include "greeter/registration.h"
#include "gtest/gtest.h"
#include "proto/greet.grpc.pb.h"
#include "registry/client/registry_client.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"

namespace chat::greeter {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

constexpr auto kCallTimeout = std::chrono::seconds(10);
const absl::Duration kWaitTimeout = absl::Seconds(20);

std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

// A unary call with a hand-made request body, for what a typed stub cannot
// send (bytes that are not UTF-8) or does not have (the health service).
grpc::Status RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& method, const std::string& body,
                          std::string* response_body) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  // The call's deadline bounds this wait.
  done.WaitForNotification();
  response_body->clear();
  std::vector<grpc::Slice> slices;
  if (status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      response_body->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return status;
}

// Field 1 of a message, length-delimited (a string shorter than 128 bytes).
std::string StringField1(const std::string& value) {
  return absl::StrCat(std::string(1, '\x0a'),
                      std::string(1, static_cast<char>(value.size())), value);
}

// A greeter served the way main.cc serves it.
class RunningGreeter {
 public:
  RunningGreeter() {
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    config.services = {&service_};
    config.health_names = {kGreetServiceName};
    absl::StatusOr<RunningServer> running = StartServer(config);
    EXPECT_THAT(running, IsOk());
    if (running.ok()) running_ = *std::move(running);
  }
  ~RunningGreeter() {
    if (running_.server != nullptr) {
      StopServer(*running_.server, Millis(1000));
      running_.server->Wait();
    }
  }

  int port() const { return running_.port; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port()); }
  grpc::Server* server() { return running_.server.get(); }

 private:
  GreeterService service_;
  RunningServer running_;
};

grpc::Status Greet(const std::shared_ptr<grpc::Channel>& channel,
                   const std::string& name, std::string* message) {
  auto stub = ::GreetService::NewStub(channel);
  ::GreetRequest request;
  request.set_name(name);
  ::GreetResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  grpc::Status status = stub->Greet(&context, request, &response);
  *message = response.message();
  return status;
}

TEST(CheckNameTest, AcceptsOneToLimitBytes) {
  EXPECT_THAT(CheckName("a"), IsOk());
  EXPECT_THAT(CheckName(std::string(kMaxNameBytes, 'x')), IsOk());
  EXPECT_THAT(CheckName(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckName(std::string(kMaxNameBytes + 1, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AppendGreetingTest, WrapsTheNameVerbatim) {
  std::string out;
  AppendGreeting("Anouk", &out);
  EXPECT_EQ(out, "Hello, Anouk!");
  std::string bytes("a\0b", 3);
  out.clear();
  AppendGreeting(bytes, &out);
  EXPECT_EQ(out, absl::StrCat("Hello, ", bytes, "!"));
}

class GreeterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(greeter_.server(), nullptr);
    channel_ = ChannelTo(greeter_.address());
  }

  RunningGreeter greeter_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GreeterServiceTest, GreetsByName) {
  std::string message;
  grpc::Status status = Greet(channel_, "Anouk", &message);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(message, "Hello, Anouk!");
}

TEST_F(GreeterServiceTest, GreetsUtf8Names) {
  std::string message;
  grpc::Status status = Greet(channel_, "Zoë 世界", &message);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(message, "Hello, Zoë 世界!");
}

TEST_F(GreeterServiceTest, EmptyNameIsInvalidArgument) {
  std::string message;
  grpc::Status status = Greet(channel_, "", &message);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "name is empty");
}

TEST_F(GreeterServiceTest, NameAtTheLimitIsGreeted) {
  const std::string name(kMaxNameBytes, 'x');
  std::string message;
  grpc::Status status = Greet(channel_, name, &message);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(message, absl::StrCat("Hello, ", name, "!"));
}

TEST_F(GreeterServiceTest, NameOverTheLimitIsInvalidArgumentNamingTheLimit) {
  std::string message;
  grpc::Status status =
      Greet(channel_, std::string(kMaxNameBytes + 1, 'x'), &message);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "256 bytes"))
      << status.error_message();
}

TEST_F(GreeterServiceTest, HugeNameIsRefusedAndServerKeepsServing) {
  std::string message;
  grpc::Status status = Greet(channel_, std::string(1 << 20, 'x'), &message);
  EXPECT_FALSE(status.ok());
  ASSERT_TRUE(Greet(channel_, "Davide", &message).ok());
  EXPECT_EQ(message, "Hello, Davide!");
}

TEST_F(GreeterServiceTest, NonUtf8NameDoesNotCrashTheServer) {
  std::string body;
  grpc::Status status = RawUnaryCall(channel_, "/GreetService/Greet",
                                     StringField1("\xff\xfe\xc0\x80"), &body);
  // Protobuf refuses to parse a proto3 string that is not UTF-8, so the call
  // fails before our handler (gRPC 1.51's callback API answers UNIMPLEMENTED,
  // which we do not pin down); what matters is that it fails cleanly and
  // the server goes on serving.
  EXPECT_FALSE(status.ok());
  std::string message;
  status = Greet(channel_, "Anouk", &message);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(message, "Hello, Anouk!");
}

TEST_F(GreeterServiceTest, HealthReportsGreetServiceServing) {
  std::string body;
  grpc::Status status = RawUnaryCall(channel_, "/grpc.health.v1.Health/Check",
                                     StringField1(kGreetServiceName), &body);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // HealthCheckResponse{status: SERVING (1)}.
  EXPECT_EQ(body, std::string("\x08\x01", 2));
}

// Collects on_event lines and lets a test wait for one.
class EventLog {
 public:
  std::function<void(const std::string&)> Callback() {
    return [this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    };
  }

  // Whether a line containing `text` arrived within `timeout`.
  bool Await(const std::string& text, absl::Duration timeout) {
    auto seen = [this, &text]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const std::string& line : lines_) {
        if (absl::StrContains(line, text)) return true;
      }
      return false;
    };
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  }

  std::string All() {
    absl::MutexLock lock(&mu_);
    return absl::StrJoin(lines_, "\n");
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// A registry on `listen_address` whose store already holds `preset` (a name
// some other greeter registered), so no race decides who gets there first.
std::unique_ptr<registry::RegistryServer> StartRegistry(
    const std::string& listen_address,
    const std::vector<registry::RegisterRequest>& preset = {}) {
  absl::StatusOr<std::unique_ptr<registry::Store>> store =
      registry::OpenSqliteStore(":memory:", RealClock());
  EXPECT_THAT(store, IsOk());
  if (!store.ok()) return nullptr;
  for (const registry::RegisterRequest& request : preset) {
    absl::StatusOr<registry::Lease> lease = (*store)->Register(request);
    EXPECT_THAT(lease, IsOk());
  }
  registry::RegistryServerOptions options;
  options.listen_address = listen_address;
  absl::StatusOr<std::unique_ptr<registry::RegistryServer>> server =
      registry::RegistryServer::Start(*std::move(store), options);
  EXPECT_THAT(server, IsOk());
  return server.ok() ? *std::move(server) : nullptr;
}

class RegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(greeter_.server(), nullptr);
    registry_ = StartRegistry("127.0.0.1:0");
    ASSERT_NE(registry_, nullptr);
    registry_address_ = absl::StrCat("127.0.0.1:", registry_->port());
    reader_ = std::make_unique<registry::RegistryClient>(
        registry_->InProcessChannel(), "in-process registry", Millis(5000));
  }

  // Options for the greeter in greeter_; the address is left for the
  // registration to find, as main.cc does with a wildcard --listen.
  RegistrationOptions Options(EventLog* events) {
    RegistrationOptions options;
    options.keeper.name = "greeter";
    options.keeper.port = greeter_.port();
    options.keeper.retry_interval = Millis(50);
    options.keeper.on_change = events->Callback();
    options.keeper.identity = &identity_;
    return options;
  }

  std::unique_ptr<registry::RegistryClient> Connect() {
    return registry::RegistryClient::Connect(registry_address_, Millis(5000),
                                             Millis(50));
  }

  // The greeter's key (its --data-dir's identity.key). Every greeter these
  // tests start uses it, as greeters sharing a data directory would.
  const Identity identity_ = Identity::Generate();
  RunningGreeter greeter_;
  std::unique_ptr<registry::RegistryServer> registry_;
  std::string registry_address_;
  std::unique_ptr<registry::RegistryClient> reader_;
};

TEST_F(RegistrationTest, RegistryResolvesTheNameToTheGreeter) {
  EventLog events;
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), Options(&events));
  ASSERT_THAT(registration, IsOk());
  EXPECT_THAT((*registration)->status(), IsOk());
  EXPECT_FALSE((*registration)->lease().lease_id.empty());
  EXPECT_TRUE(
      events.Await("registered as greeter -> 127.0.0.1:", absl::ZeroDuration()))
      << events.All();

  absl::StatusOr<registry::Entry> entry = reader_->Resolve("greeter");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, greeter_.address());
  // It offers greet, not chat: chat peers leave it out.
  EXPECT_EQ(entry->services, std::vector<std::string>{"greet"});

  // What a client that found the greeter by name does next.
  std::string message;
  ASSERT_TRUE(Greet(ChannelTo(entry->address), "Anouk", &message).ok());
  EXPECT_EQ(message, "Hello, Anouk!");
}

TEST_F(RegistrationTest, StopUnregisters) {
  EventLog events;
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), Options(&events));
  ASSERT_THAT(registration, IsOk());
  (*registration)->Stop();
  EXPECT_THAT((*registration)->status(),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(reader_->Resolve("greeter"),
              StatusIs(absl::StatusCode::kNotFound));
  (*registration)->Stop();  // Idempotent.
}

TEST_F(RegistrationTest, AdvertisesTheGivenAddress) {
  EventLog events;
  RegistrationOptions options = Options(&events);
  options.keeper.address = "greeter.example:50051";
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), options);
  ASSERT_THAT(registration, IsOk());
  absl::StatusOr<registry::Entry> entry = reader_->Resolve("greeter");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "greeter.example:50051");
}

TEST_F(RegistrationTest, SecondGreeterWithTheSameNameIsRefused) {
  EventLog events;
  absl::StatusOr<std::unique_ptr<Registration>> first =
      Registration::Start(Connect(), Options(&events));
  ASSERT_THAT(first, IsOk());

  RunningGreeter second_greeter;
  EventLog second_events;
  // With the same key: another key would be told the name belongs to it.
  RegistrationOptions options = Options(&second_events);
  options.keeper.port = second_greeter.port();
  absl::StatusOr<std::unique_ptr<Registration>> second =
      Registration::Start(Connect(), options);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kAlreadyExists));

  // The first greeter keeps its name.
  absl::StatusOr<registry::Entry> entry = reader_->Resolve("greeter");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, greeter_.address());
}

TEST_F(RegistrationTest, RegistersAgainWhenTheRegistryLosesTheLease) {
  EventLog events;
  RegistrationOptions options = Options(&events);
  options.keeper.ttl = Millis(2000);  // The minimum: renewals every ~0.7 s.
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), options);
  ASSERT_THAT(registration, IsOk());
  const std::string lease_id = (*registration)->lease().lease_id;
  ASSERT_THAT(reader_->Unregister("greeter", lease_id), IsOk());

  ASSERT_TRUE(events.Await("registered \"greeter\" again", kWaitTimeout))
      << events.All();
  absl::StatusOr<registry::Entry> entry = reader_->Resolve("greeter");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, greeter_.address());
}

// Frees the registry's port, so the test can start one there later. Another
// process could take the port in between; on loopback that is unlikely.
TEST_F(RegistrationTest, RegistersOnceAnUnreachableRegistryComesUp) {
  registry_->Shutdown(Millis(0));
  registry_.reset();

  EventLog events;
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), Options(&events));
  ASSERT_THAT(registration, IsOk());
  EXPECT_THAT((*registration)->status(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(events.Await("serving directly", absl::ZeroDuration()))
      << events.All();

  registry_ = StartRegistry(registry_address_);
  ASSERT_NE(registry_, nullptr);
  absl::Status settled = (*registration)->AwaitSettled(kWaitTimeout);
  ASSERT_THAT(settled, IsOk()) << events.All();

  auto reader = std::make_unique<registry::RegistryClient>(
      registry_->InProcessChannel(), "in-process registry", Millis(5000));
  absl::StatusOr<registry::Entry> entry = reader->Resolve("greeter");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, greeter_.address());
}

TEST_F(RegistrationTest, NameTakenWhileRegistryWasDownIsRefusedNotTaken) {
  registry_->Shutdown(Millis(0));
  registry_.reset();

  EventLog events;
  absl::Notification refused;
  absl::Status refusal;
  RegistrationOptions options = Options(&events);
  options.on_refused = [&](const absl::Status& status) {
    refusal = status;
    refused.Notify();
  };
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), options);
  ASSERT_THAT(registration, IsOk());

  // The registry comes back holding the name for another greeter (with
  // the same key: a second greeter on the same --data-dir).
  registry_ = StartRegistry(
      registry_address_,
      {{"greeter", "10.0.0.9:50051", Millis(0), "", identity_.public_key()}});
  ASSERT_NE(registry_, nullptr);
  auto other = std::make_unique<registry::RegistryClient>(
      registry_->InProcessChannel(), "in-process registry", Millis(5000));

  ASSERT_TRUE(refused.WaitForNotificationWithTimeout(kWaitTimeout))
      << events.All();
  EXPECT_THAT(refusal, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT((*registration)->status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  absl::StatusOr<registry::Entry> entry = other->Resolve("greeter");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "10.0.0.9:50051");
}

TEST_F(RegistrationTest, InvalidNameIsRefusedAtOnce) {
  EventLog events;
  RegistrationOptions options = Options(&events);
  options.keeper.name = "not a name";
  absl::StatusOr<std::unique_ptr<Registration>> registration =
      Registration::Start(Connect(), options);
  EXPECT_THAT(registration, StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::greeter
