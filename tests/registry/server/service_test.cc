// The Registry service through a real gRPC server on 127.0.0.1, port 0.

#include "registry/server/service.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/random.h"
#include "registry/client/registry_client.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::WaitFor;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kAdminToken[] = "service-test-admin-token";
constexpr size_t kTestMaxWatchNames = 8;

class RegistryServiceTest : public ::testing::Test {
 protected:
  // The server goes before the directory holding its files
  // (registry.db, registry.mail.db and their -wal, -shm, .lock).
  ~RegistryServiceTest() override { server_.reset(); }

  void SetUp() override { StartServer(); }

  void StartServer() {
    auto store = OpenSqliteStore(db_path_, clock_, store_options_);
    ASSERT_THAT(store, IsOk());
    RegistryServerOptions options = server_options_;
    options.listen_address = "127.0.0.1:0";
    options.expiry_interval = Millis(10);
    options.admin_token = kAdminToken;
    options.streams.max_watch_names = kTestMaxWatchNames;
    auto server = RegistryServer::Start(*std::move(store), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    client_ = RegistryClient::Connect(address_, Millis(5000));
    client_->SetAdminToken(kAdminToken);
    client_->SetClock(clock_);  // Proofs dated on the registry's clock.
  }

  void RestartServer() {
    client_.reset();
    server_.reset();
    StartServer();
  }

  FakeClock clock_;
  SqliteStoreOptions store_options_;
  RegistryServerOptions server_options_;
  // Every registration is proven with a key; a second alice with her key
  // (another process on her data directory) is told the name is held.
  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  ::chat::testing::TempDir dir_;
  const std::string db_path_ = dir_.File("registry.db");
  std::unique_ptr<RegistryServer> server_;
  std::string address_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(RegistryServiceTest, RegisterResolveListUnregister) {
  auto lease =
      client_->Register({"alice", "127.0.0.1:7001", Millis(0), ""}, &alice_);
  ASSERT_THAT(lease, IsOk());
  EXPECT_EQ(lease->lease_id.size(), 32u);
  EXPECT_EQ(lease->entry.ttl, Millis(10000));
  ASSERT_THAT(client_->Register({"bob", "[::1]:7002", Millis(4000), ""}, &bob_),
              IsOk());

  auto entry = client_->Resolve("ALICE");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "127.0.0.1:7001");
  auto all = client_->ListAll("");
  ASSERT_THAT(all, IsOk());
  ASSERT_THAT(*all, SizeIs(2));
  EXPECT_EQ((*all)[1].ttl, Millis(4000));

  EXPECT_THAT(client_->Unregister("alice", lease->lease_id), IsOk());
  EXPECT_THAT(client_->Resolve("alice"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("alice")));
}

TEST_F(RegistryServiceTest, OnlyTheLeaseHolderOwnsTheName) {
  auto lease =
      client_->Register({"alice", "127.0.0.1:7001", Millis(0), ""}, &alice_);
  ASSERT_THAT(lease, IsOk());
  EXPECT_THAT(
      client_->Register({"alice", "127.0.0.1:9999", Millis(0), ""}, &alice_),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("until")));
  std::string forged = RandomHex(16);
  EXPECT_THAT(client_->KeepAlive("alice", forged),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(client_->Unregister("alice", forged),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(client_->KeepAlive("alice", lease->lease_id), IsOk());
  EXPECT_EQ(client_->Resolve("alice")->address, "127.0.0.1:7001");
}

TEST_F(RegistryServiceTest, BadInputOnEveryRpcIsInvalidArgument) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(client_->Register({"", "h:1", Millis(0), ""}, &alice_),
              StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(client_->Register({"alice", "nope", Millis(0), ""}, &alice_),
              StatusIs(kInvalid, HasSubstr("host:port")));
  EXPECT_THAT(client_->Register({"alice", "h:1", Millis(-1), ""}, &alice_),
              StatusIs(kInvalid, HasSubstr("ttl")));
  EXPECT_THAT(client_->KeepAlive("a b", "x"), StatusIs(kInvalid));
  EXPECT_THAT(client_->KeepAlive("alice", ""), StatusIs(kInvalid));
  EXPECT_THAT(client_->Unregister("", "x"), StatusIs(kInvalid));
  EXPECT_THAT(client_->Resolve(std::string(65, 'a')),
              StatusIs(kInvalid, HasSubstr("64")));
  EXPECT_THAT(client_->List("bad prefix", 0, ""), StatusIs(kInvalid));
  EXPECT_THAT(client_->List("", -1, ""), StatusIs(kInvalid));
  EXPECT_THAT(client_->List("", 10, std::string(100, 'z')), StatusIs(kInvalid));
  EXPECT_THAT(client_->PutStatic("lab", "h:0"), StatusIs(kInvalid));
  EXPECT_THAT(client_->RemoveStatic("/"), StatusIs(kInvalid));
  auto watch = client_->Watch("no spaces");
  WatchEvent event;
  EXPECT_FALSE(watch->Next(&event));
  EXPECT_THAT(watch->Finish(), StatusIs(kInvalid));
  // The server lives on.
  EXPECT_THAT(client_->Register({"alice", "h:1", Millis(0), ""}, &alice_),
              IsOk());
}

TEST_F(RegistryServiceTest, ARegisterWithoutAKeyIsInvalidArgumentNamingIt) {
  // What a client from before keys sends: no public_key, no proof.
  EXPECT_THAT(
      client_->Register({"alice", "127.0.0.1:7001", Millis(0), ""}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("public_key is required"),
                     HasSubstr("identity key"), HasSubstr("Challenge"))));
  // Nothing was registered, and nothing bound.
  EXPECT_THAT(client_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->GetBinding("alice"),
              StatusIs(absl::StatusCode::kNotFound));
  auto all = client_->ListAll("");
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(*all, SizeIs(0));
  // The same name with a key is welcome.
  EXPECT_THAT(
      client_->Register({"alice", "127.0.0.1:7001", Millis(0), ""}, &alice_),
      IsOk());
}

TEST_F(RegistryServiceTest, OversizedRequestsAreRefusedAndTheServerLivesOn) {
  EXPECT_THAT(
      client_->Register({std::string(100 * 1024, 'a'), "h:1", Millis(0), ""},
                        &alice_),
      StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(client_->Register({"alice", "h:1", Millis(0), ""}, &alice_),
              IsOk());
}

// One client registers 100,000 names.
TEST_F(RegistryServiceTest, NameQuotasAreResourceExhaustedAndOthersAreServed) {
  store_options_.name_quotas.max_per_key = 2;
  store_options_.name_quotas.max_per_client = 2;
  server_options_.require_key = false;
  RestartServer();
  ASSERT_THAT(client_->Register({"a1", "h:1", Millis(0), ""}, &alice_), IsOk());
  ASSERT_THAT(client_->Register({"a2", "h:1", Millis(0), ""}, &alice_), IsOk());
  EXPECT_THAT(client_->Register({"a3", "h:1", Millis(0), ""}, &alice_),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("(limit 2, --max-names-per-key)")));
  EXPECT_THAT(client_->Register({"b1", "h:1", Millis(0), ""}, &bob_), IsOk());
  // Without a key, the names count against the client's host.
  ASSERT_THAT(client_->Register({"k1", "h:1", Millis(0), ""}), IsOk());
  ASSERT_THAT(client_->Register({"k2", "h:1", Millis(0), ""}), IsOk());
  EXPECT_THAT(client_->Register({"k3", "h:1", Millis(0), ""}),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("without a key from 127.0.0.1 (limit 2, "
                                 "--max-names-per-client)")));
  EXPECT_THAT(client_->Resolve("a1"), IsOk());
}

TEST_F(RegistryServiceTest, ListPagesThroughManyNames) {
  for (int i = 0; i < 1500; ++i) {
    ASSERT_THAT(client_->PutStatic(absl::StrCat("n", 10000 + i), "h:1"),
                IsOk());
  }
  auto first = client_->List("", 0, "");
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(first->entries, SizeIs(100));  // The default page.
  auto big = client_->List("", 5000, "");
  ASSERT_THAT(big, IsOk());
  EXPECT_THAT(big->entries, SizeIs(1000));  // The largest page.
  auto all = client_->ListAll("n1");
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(*all, SizeIs(1500));
}

TEST_F(RegistryServiceTest, WatchStreamsSnapshotChangesAndExpiry) {
  ASSERT_THAT(client_->PutStatic("lab", "127.0.0.1:8000"), IsOk());
  auto watch = client_->Watch("");
  WatchEvent event;
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.type, EventType::kPut);
  EXPECT_EQ(event.reason, EventReason::kInitial);
  EXPECT_EQ(event.entry.name, "lab");
  EXPECT_TRUE(event.entry.is_static);
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.type, EventType::kSynced);

  ASSERT_THAT(
      client_->Register({"alice", "127.0.0.1:7001", Millis(2000), ""}, &alice_),
      IsOk());
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.type, EventType::kPut);
  EXPECT_EQ(event.reason, EventReason::kRegistered);
  EXPECT_EQ(event.entry.address, "127.0.0.1:7001");

  // The expiry loop runs on real time; the lease runs on the fake clock.
  clock_.Advance(Millis(2000));
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.type, EventType::kDelete);
  EXPECT_EQ(event.reason, EventReason::kExpired);
  EXPECT_EQ(event.entry.name, "alice");
  watch->Cancel();
  EXPECT_FALSE(watch->Next(&event));
  EXPECT_THAT(watch->Finish(), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(RegistryServiceTest, AWatchOfNamesStreamsOnlyThoseNames) {
  ASSERT_THAT(client_->PutStatic("lab", "127.0.0.1:8000"), IsOk());
  ASSERT_THAT(client_->PutStatic("lab2", "127.0.0.1:8001"), IsOk());
  auto watch = client_->WatchNames({"LAB", "alice"});
  WatchEvent event;
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.reason, EventReason::kInitial);
  EXPECT_EQ(event.entry.name, "lab");
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.type, EventType::kSynced);

  ASSERT_THAT(client_->PutStatic("other", "127.0.0.1:8002"), IsOk());
  ASSERT_THAT(
      client_->Register({"Alice", "127.0.0.1:7001", Millis(0), ""}, &alice_),
      IsOk());
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.reason, EventReason::kRegistered);
  EXPECT_EQ(event.entry.name, "Alice");
  ASSERT_THAT(client_->RemoveStatic("lab2"), IsOk());
  ASSERT_THAT(client_->RemoveStatic("lab"), IsOk());
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.type, EventType::kDelete);
  EXPECT_EQ(event.entry.name, "lab");
}

// A client resumes a lost watch from WatchResumePoint: only the changes
// since, over the wire, then SYNCED marked resumed.
TEST_F(RegistryServiceTest, ALostWatchResumesFromItsRevisionWithoutASnapshot) {
  ASSERT_THAT(client_->PutStatic("lab", "127.0.0.1:8000"), IsOk());
  WatchResumePoint resume;
  WatchEvent event;
  {
    resume.Opened();
    auto watch = client_->WatchNames({"lab", "alice"}, resume.revision());
    ASSERT_TRUE(watch->Next(&event));
    resume.Saw(event);
    EXPECT_EQ(event.reason, EventReason::kInitial);
    ASSERT_TRUE(watch->Next(&event));
    resume.Saw(event);
    ASSERT_EQ(event.type, EventType::kSynced);
    EXPECT_FALSE(event.resumed);
    EXPECT_GT(resume.revision(), 0);
    ASSERT_THAT(
        client_->Register({"alice", "127.0.0.1:7001", Millis(0), ""}, &alice_),
        IsOk());
    ASSERT_TRUE(watch->Next(&event));
    resume.Saw(event);
    EXPECT_EQ(event.entry.name, "alice");
    watch->Cancel();
  }
  // Meanwhile: lab leaves, someone not watched comes.
  ASSERT_THAT(client_->RemoveStatic("lab"), IsOk());
  ASSERT_THAT(client_->PutStatic("other", "127.0.0.1:8002"), IsOk());

  resume.Opened();
  auto watch = client_->WatchNames({"lab", "alice"}, resume.revision());
  // alice's registration again (resuming one early may repeat a change),
  // then lab leaving, then SYNCED: no snapshot.
  std::vector<std::pair<EventType, std::string>> seen;
  do {
    ASSERT_TRUE(watch->Next(&event));
    resume.Saw(event);
    EXPECT_NE(event.reason, EventReason::kInitial);
    seen.emplace_back(event.type, event.entry.name);
  } while (event.type != EventType::kSynced);
  EXPECT_TRUE(event.resumed);
  EXPECT_THAT(seen, ::testing::ElementsAre(
                        std::make_pair(EventType::kPut, std::string("alice")),
                        std::make_pair(EventType::kDelete, std::string("lab")),
                        std::make_pair(EventType::kSynced, std::string())));
}

TEST(WatchResumePointTest, FollowsSyncedThenOneBeforeEachChange) {
  WatchResumePoint resume;
  EXPECT_EQ(resume.revision(), 0);
  resume.Opened();
  WatchEvent initial;
  initial.reason = EventReason::kInitial;
  resume.Saw(initial);  // Snapshot entries carry no revision.
  EXPECT_EQ(resume.revision(), 0);
  WatchEvent synced;
  synced.type = EventType::kSynced;
  synced.revision = 10;
  resume.Saw(synced);
  EXPECT_EQ(resume.revision(), 10);
  WatchEvent change;
  change.revision = 14;
  resume.Saw(change);
  EXPECT_EQ(resume.revision(), 13);  // Another change of 14 may follow.
  // A new stream: nothing before its SYNCED moves the point.
  resume.Opened();
  change.revision = 20;
  resume.Saw(change);
  EXPECT_EQ(resume.revision(), 13);
  synced.revision = 25;
  resume.Saw(synced);
  EXPECT_EQ(resume.revision(), 25);
  // Another store may count lower: its SYNCED is believed.
  synced.revision = 3;
  resume.Opened();
  resume.Saw(synced);
  EXPECT_EQ(resume.revision(), 3);
}

TEST_F(RegistryServiceTest, AWatchOfTooManyOrBadNamesIsRefusedAndOthersServed) {
  std::vector<std::string> names;
  for (size_t i = 0; i <= kTestMaxWatchNames; ++i) {
    names.push_back(absl::StrCat("n", i));
  }
  auto too_many = client_->WatchNames(names);
  WatchEvent event;
  EXPECT_FALSE(too_many->Next(&event));
  EXPECT_THAT(
      too_many->Finish(),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr(absl::StrCat("a Watch of ",
                                            kTestMaxWatchNames + 1, " names")),
                     HasSubstr(absl::StrCat("(limit ", kTestMaxWatchNames,
                                            ", --max-watch-names)")))));

  auto bad = client_->WatchNames({"alice", "no spaces"});
  EXPECT_FALSE(bad->Next(&event));
  EXPECT_THAT(bad->Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("names[1]")));

  // The limit itself is fine, and so is everyone else.
  names.pop_back();
  auto at_limit = client_->WatchNames(names);
  ASSERT_TRUE(at_limit->Next(&event));
  EXPECT_EQ(event.type, EventType::kSynced);
  ASSERT_THAT(client_->PutStatic("n0", "127.0.0.1:8000"), IsOk());
  ASSERT_TRUE(at_limit->Next(&event));
  EXPECT_EQ(event.entry.name, "n0");
}

TEST_F(RegistryServiceTest, ManyWatchersAllSeeEveryChange) {
  std::vector<std::unique_ptr<WatchStream>> watches;
  // All on one connection: 16 leave places under the default bound of 20
  // streams per connection for the PutStatic calls below (with 20 Watch
  // streams open, those would wait for a place until their deadline).
  for (int i = 0; i < 16; ++i) {
    watches.push_back(client_->Watch(""));
    WatchEvent synced;
    ASSERT_TRUE(watches.back()->Next(&synced));
    ASSERT_EQ(synced.type, EventType::kSynced);
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_THAT(client_->PutStatic(absl::StrCat("n", i), "h:1"), IsOk());
  }
  for (auto& watch : watches) {
    for (int i = 0; i < 50; ++i) {
      WatchEvent event;
      ASSERT_TRUE(watch->Next(&event));
      EXPECT_EQ(event.entry.name, absl::StrCat("n", i));
    }
  }
}

TEST_F(RegistryServiceTest, ShutdownEndsWatchStreams) {
  auto watch = client_->Watch("");
  WatchEvent event;
  ASSERT_TRUE(watch->Next(&event));  // SYNCED
  server_->Shutdown();
  EXPECT_FALSE(watch->Next(&event));
  EXPECT_FALSE(watch->Finish().ok());
}

TEST_F(RegistryServiceTest, ARestartOnTheSameFileKeepsEveryName) {
  auto lease =
      client_->Register({"alice", "127.0.0.1:7001", Millis(0), ""}, &alice_);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->PutStatic("lab", "127.0.0.1:8000"), IsOk());
  RestartServer();
  EXPECT_EQ(client_->Resolve("alice")->address, "127.0.0.1:7001");
  EXPECT_EQ(client_->Resolve("lab")->address, "127.0.0.1:8000");
  // The peer re-attaches with the lease it already has.
  EXPECT_THAT(client_->KeepAlive("alice", lease->lease_id), IsOk());
}

TEST(RegistryClientTest, AnUnreachableRegistryIsNamedInTheError) {
  // Nothing listens on port 1 of loopback.
  auto client = RegistryClient::Connect("127.0.0.1:1", Millis(2000));
  auto entry = client->Resolve("alice");
  EXPECT_TRUE(IsUnreachable(entry.status()));
  EXPECT_THAT(entry, StatusIs(absl::StatusCode::kUnavailable,
                              HasSubstr("registry at 127.0.0.1:1")));
}

TEST(RegistryServerTest, AnAddressInUseIsAnErrorNotACrash) {
  FakeClock clock;
  auto store = OpenSqliteStore(":memory:", clock);
  ASSERT_THAT(store, IsOk());
  RegistryServerOptions options;
  options.listen_address = "127.0.0.1:0";
  auto first = RegistryServer::Start(*std::move(store), options);
  ASSERT_THAT(first, IsOk());
  auto store2 = OpenSqliteStore(":memory:", clock);
  options.listen_address = absl::StrCat("127.0.0.1:", (*first)->port());
  EXPECT_THAT(RegistryServer::Start(*std::move(store2), options),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("listen")));
}

}  // namespace
}  // namespace chat::registry

namespace chat::registry {
namespace {

// A body that is not a ResolveRequest (a field header whose length runs
// past the end) reaches no handler. gRPC 1.51 answers it UNIMPLEMENTED with
// an empty message, not INVALID_ARGUMENT: CallbackUnaryHandler::RunHandler
// (grpcpp/impl/codegen/server_callback_handlers.h) gets the parse failure
// in param.status and answers every failure with its own
// UnimplementedUnaryReactor(UNIMPLEMENTED, ""), before any code of ours
// runs (docs/registry.md, "Errors"). This pins that behaviour, so an
// upgrade that changes it is noticed.
TEST(UndecodableRequestTest, IsAnsweredByGrpcBeforeAnyHandler) {
  ::chat::testing::TempDir dir;
  FakeClock clock;
  auto store = OpenSqliteStore(dir.File("registry.db"), clock, {});
  ASSERT_THAT(store, IsOk());
  RegistryServerOptions options;
  options.listen_address = "127.0.0.1:0";
  auto server = RegistryServer::Start(*std::move(store), options);
  ASSERT_THAT(server, IsOk());
  grpc::GenericStub stub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                          grpc::InsecureChannelCredentials()));
  const std::string body =
      "\x0a\x7f"
      "ab";  // Field 1, length 127: truncated.
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  absl::Mutex mu;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/chat.registry.v1.Registry/Resolve",
                 grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                   absl::MutexLock lock(&mu);
                   status = std::move(s);
                   done = true;
                 });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status.error_message(), "");
  (*server)->Shutdown();
}

}  // namespace
}  // namespace chat::registry
