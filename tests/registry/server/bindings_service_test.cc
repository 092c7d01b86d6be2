// Names bound to keys, through a real gRPC server: the proof a registration
// carries, the attacks it stops, the admin token and the binding RPCs.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/status.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client/registry_client.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kAdminToken[] = "bindings-test-admin-token";

class BindingsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteStoreOptions store_options;
    store_options.lease_policy.reserve = absl::Hours(24);
    auto store = OpenSqliteStore(":memory:", clock_, store_options);
    ASSERT_THAT(store, IsOk());
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.admin_token = kAdminToken;
    options.clock = &clock_;
    auto server = RegistryServer::Start(*std::move(store), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    client_ = std::make_unique<RegistryClient>(channel_, "test", Millis(5000));
    admin_ = std::make_unique<RegistryClient>(channel_, "test", Millis(5000));
    admin_->SetAdminToken(kAdminToken);
    // Proofs are dated on the registry's (fake) clock.
    client_->SetClock(clock_);
    admin_->SetClock(clock_);
    stub_ = v1::Registry::NewStub(channel_);
  }

  // A Register request with a chat-register-v2 proof made by `identity`,
  // dated `proof_unix_ms` (default: the registry's clock now): one call,
  // no challenge.
  v1::RegisterRequest TimedRequest(const Identity& identity,
                                   const std::string& name,
                                   const std::string& address,
                                   int64_t proof_unix_ms = 0) {
    if (proof_unix_ms == 0) proof_unix_ms = absl::ToUnixMillis(clock_.Wall());
    v1::RegisterRequest request;
    request.set_name(name);
    request.set_address(address);
    request.set_public_key(identity.public_key().Bytes());
    request.set_proof_unix_ms(proof_unix_ms);
    request.set_signature(identity.Sign(TimedRegistrationProofMessage(
        name, address, identity.public_key(), proof_unix_ms)));
    return request;
  }

  // A Register request with a proof made by `identity` for a fresh
  // challenge of `name`.
  v1::RegisterRequest SignedRequest(const Identity& identity,
                                    const std::string& name,
                                    const std::string& address) {
    auto challenge = client_->Challenge(name);
    EXPECT_THAT(challenge, IsOk());
    v1::RegisterRequest request;
    request.set_name(name);
    request.set_address(address);
    request.set_public_key(identity.public_key().Bytes());
    request.set_challenge(*challenge);
    request.set_signature(identity.Sign(RegistrationProofMessage(
        name, address, *challenge, identity.public_key())));
    return request;
  }

  absl::Status Send(const v1::RegisterRequest& request) {
    grpc::ClientContext context;
    v1::RegisterResponse response;
    return FromGrpcStatus(stub_->Register(&context, request, &response));
  }

  template <typename Request, typename Response>
  absl::Status CallAdmin(grpc::Status (v1::Registry::Stub::*method)(
                             grpc::ClientContext*, const Request&, Response*),
                         const Request& request,
                         const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) {
      context.AddMetadata("authorization", authorization);
    }
    Response response;
    return FromGrpcStatus(((*stub_).*method)(&context, request, &response));
  }

  FakeClock clock_;
  std::unique_ptr<RegistryServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<RegistryClient> client_;
  std::unique_ptr<RegistryClient> admin_;
  std::unique_ptr<v1::Registry::Stub> stub_;
  const Identity bob_ = Identity::Generate();
  const Identity thief_ = Identity::Generate();
};

TEST_F(BindingsServiceTest, ARegistrationWithAnIdentityBindsTheName) {
  auto lease = client_->Register({"bob", "127.0.0.1:7001"}, &bob_);
  ASSERT_THAT(lease, IsOk());
  EXPECT_EQ(lease->entry.public_key, bob_.public_key());
  EXPECT_EQ(client_->Resolve("bob")->public_key, bob_.public_key());
  EXPECT_EQ(client_->ListAll("")->at(0).public_key, bob_.public_key());
  auto watch = client_->Watch("");
  WatchEvent event;
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.entry.public_key, bob_.public_key());
  watch->Cancel();
  auto binding = client_->GetBinding("bob");
  ASSERT_THAT(binding, IsOk());
  EXPECT_EQ(binding->key, bob_.public_key());
  EXPECT_TRUE(binding->online);
  EXPECT_EQ(binding->reserved_until, absl::InfiniteFuture());
  EXPECT_THAT(client_->GetBinding("nobody"),
              StatusIs(absl::StatusCode::kNotFound));
}

// The critical attack on names: dave is offline, his lease expired; a
// thief registers "dave" to read his mailbox.
TEST_F(BindingsServiceTest, AThiefCannotRegisterAnOfflineUsersName) {
  auto lease =
      client_->Register({"bob", "127.0.0.1:7001", Millis(2000)}, &bob_);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Unregister("bob", lease->lease_id), IsOk());
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  const std::string until =
      absl::FormatTime("%Y-%m-%d %H:%M UTC", clock_.Wall() + absl::Hours(24),
                       absl::UTCTimeZone());
  EXPECT_THAT(
      client_->Register({"bob", "127.0.0.1:6666"}, &thief_),
      StatusIs(absl::StatusCode::kPermissionDenied,
               AllOf(HasSubstr("name bob belongs to another key (fingerprint " +
                               ShortFingerprint(bob_.public_key()) + "...)"),
                     HasSubstr("until " + until))));
  // Nor without a key: no registration gets that far.
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:6666"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("public_key is required")));
  auto binding = client_->GetBinding("bob");
  ASSERT_THAT(binding, IsOk());
  EXPECT_FALSE(binding->online);
  EXPECT_EQ(binding->reserved_until, absl::FromUnixMillis(absl::ToUnixMillis(
                                         clock_.Wall() + absl::Hours(24))));
  // The real bob comes back.
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:7002"}, &bob_), IsOk());
  // While he is online, the thief hears so.
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:6666"}, &thief_),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("and is online")));
}

TEST_F(BindingsServiceTest, ATimedProofRegistersInOneCall) {
  ASSERT_THAT(Send(TimedRequest(bob_, "bob", "127.0.0.1:7001")), IsOk());
  auto entry = client_->Resolve("bob");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->public_key, bob_.public_key());
  EXPECT_EQ(client_->GetBinding("bob")->key, bob_.public_key());
}

TEST_F(BindingsServiceTest, TheClientRegistersTwiceInOneMillisecond) {
  // The fake clock stands still: the client dates the second proof 1 ms
  // after the first, so it is later, as the registry requires.
  auto lease = client_->Register({"bob", "127.0.0.1:7001"}, &bob_);
  ASSERT_THAT(lease, IsOk());
  RegisterRequest move{"bob", "127.0.0.1:7002", Millis(0), lease->lease_id};
  ASSERT_THAT(client_->Register(move, &bob_), IsOk());
  EXPECT_EQ(client_->Resolve("bob")->address, "127.0.0.1:7002");
}

TEST_F(BindingsServiceTest, AReplayedTimedRegistrationIsRefused) {
  const v1::RegisterRequest request =
      TimedRequest(bob_, "bob", "127.0.0.1:7001");
  grpc::ClientContext context;
  v1::RegisterResponse response;
  ASSERT_TRUE(stub_->Register(&context, request, &response).ok());
  // The same bytes again, while bob holds the name, after he left, and
  // after an admin released it.
  EXPECT_THAT(Send(request), StatusIs(absl::StatusCode::kUnauthenticated,
                                      HasSubstr("replayed")));
  ASSERT_THAT(client_->Unregister("bob", response.lease_id()), IsOk());
  EXPECT_THAT(Send(request), StatusIs(absl::StatusCode::kUnauthenticated));
  ASSERT_THAT(admin_->Release("bob"), IsOk());
  EXPECT_THAT(Send(request), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->GetBinding("bob"),
              StatusIs(absl::StatusCode::kNotFound));
  // Bob, with a fresh proof, is welcome.
  clock_.Advance(Millis(1));
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:7001"}, &bob_), IsOk());
}

TEST_F(BindingsServiceTest,
       AClockOffByMoreThanTheSkewIsRefusedSayingByHowMuch) {
  FakeClock ahead;                   // The same instant as clock_...
  ahead.JumpWall(absl::Minutes(7));  // ...and seven minutes ahead.
  RegistryClient skewed(channel_, "test", Millis(5000));
  skewed.SetClock(ahead);
  EXPECT_THAT(skewed.Register({"bob", "127.0.0.1:7001"}, &bob_),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("7m ahead of the registry's clock"),
                             HasSubstr("at most 5m either way"),
                             HasSubstr("set this machine's clock right"))));
  EXPECT_THAT(
      Send(TimedRequest(bob_, "bob", "127.0.0.1:7001",
                        absl::ToUnixMillis(clock_.Wall() - absl::Minutes(6)))),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("6m behind")));
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BindingsServiceTest, ATimedProofForAnotherNameAddressOrTimeIsRefused) {
  v1::RegisterRequest moved = TimedRequest(bob_, "bob", "127.0.0.1:7001");
  moved.set_address("127.0.0.1:6666");
  EXPECT_THAT(Send(moved), StatusIs(absl::StatusCode::kUnauthenticated,
                                    HasSubstr("signature")));
  v1::RegisterRequest renamed = TimedRequest(bob_, "bobby", "127.0.0.1:7001");
  renamed.set_name("bob");
  EXPECT_THAT(Send(renamed), StatusIs(absl::StatusCode::kUnauthenticated));
  v1::RegisterRequest redated = TimedRequest(bob_, "bob", "127.0.0.1:7001");
  redated.set_proof_unix_ms(redated.proof_unix_ms() + 1);
  EXPECT_THAT(Send(redated), StatusIs(absl::StatusCode::kUnauthenticated));
  // A v1 signature does not pass for a v2 one.
  v1::RegisterRequest v1_signed = SignedRequest(bob_, "bob", "127.0.0.1:7001");
  v1_signed.clear_challenge();
  v1_signed.set_proof_unix_ms(absl::ToUnixMillis(clock_.Wall()));
  EXPECT_THAT(Send(v1_signed), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BindingsServiceTest, AChallengeAndAProofTimeTogetherAreInvalid) {
  v1::RegisterRequest both = SignedRequest(bob_, "bob", "127.0.0.1:7001");
  both.set_proof_unix_ms(absl::ToUnixMillis(clock_.Wall()));
  EXPECT_THAT(Send(both), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("not both")));
  v1::RegisterRequest negative =
      TimedRequest(bob_, "bob", "127.0.0.1:7001", -1);
  EXPECT_THAT(Send(negative), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("proof_unix_ms")));
  v1::RegisterRequest keyless = TimedRequest(bob_, "bob", "127.0.0.1:7001");
  keyless.clear_public_key();
  keyless.clear_signature();
  EXPECT_THAT(Send(keyless), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("public_key is required")));
}

TEST_F(BindingsServiceTest, AReplayedRegistrationIsRefused) {
  const v1::RegisterRequest request =
      SignedRequest(bob_, "bob", "127.0.0.1:7001");
  ASSERT_THAT(Send(request), IsOk());
  // Captured and sent again, while bob holds the name or after he left.
  EXPECT_THAT(Send(request), StatusIs(absl::StatusCode::kUnauthenticated,
                                      HasSubstr("challenge")));
  auto lease = client_->Resolve("bob");
  ASSERT_THAT(lease, IsOk());
  EXPECT_EQ(lease->address, "127.0.0.1:7001");
}

TEST_F(BindingsServiceTest, AReplayedRegistrationIsRefusedAfterTheUserLeft) {
  const v1::RegisterRequest request =
      SignedRequest(bob_, "bob", "127.0.0.1:7001");
  grpc::ClientContext context;
  v1::RegisterResponse response;
  ASSERT_TRUE(stub_->Register(&context, request, &response).ok());
  ASSERT_THAT(client_->Unregister("bob", response.lease_id()), IsOk());
  EXPECT_THAT(Send(request), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BindingsServiceTest, AnExpiredChallengeIsRefused) {
  const v1::RegisterRequest request =
      SignedRequest(bob_, "bob", "127.0.0.1:7001");
  clock_.Advance(Millis(60000));
  EXPECT_THAT(Send(request), StatusIs(absl::StatusCode::kUnauthenticated,
                                      HasSubstr("expired")));
}

TEST_F(BindingsServiceTest, AProofForAnotherNameOrAddressIsRefused) {
  // Signed for "bobby", sent for "bob".
  v1::RegisterRequest other_name = SignedRequest(bob_, "bobby", "127.0.0.1:1");
  other_name.set_name("bob");
  EXPECT_THAT(Send(other_name), StatusIs(absl::StatusCode::kUnauthenticated));
  // Signed for one address, sent with another: a man in the middle.
  v1::RegisterRequest moved = SignedRequest(bob_, "bob", "127.0.0.1:7001");
  moved.set_address("127.0.0.1:6666");
  EXPECT_THAT(Send(moved), StatusIs(absl::StatusCode::kUnauthenticated,
                                    HasSubstr("signature")));
  // The thief's key with bob's signature.
  v1::RegisterRequest swapped = SignedRequest(bob_, "bob", "127.0.0.1:7001");
  swapped.set_public_key(thief_.public_key().Bytes());
  EXPECT_THAT(Send(swapped), StatusIs(absl::StatusCode::kUnauthenticated));
  // A challenge issued for another name.
  v1::RegisterRequest borrowed = SignedRequest(bob_, "carol", "127.0.0.1:1");
  borrowed.set_name("bob");
  borrowed.set_signature(bob_.Sign(RegistrationProofMessage(
      "bob", "127.0.0.1:1", borrowed.challenge(), bob_.public_key())));
  EXPECT_THAT(Send(borrowed), StatusIs(absl::StatusCode::kUnauthenticated,
                                       HasSubstr("another name")));
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BindingsServiceTest,
       MalformedKeysAndProofsAreInvalidArgumentNamingTheField) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  v1::RegisterRequest short_key = SignedRequest(bob_, "bob", "127.0.0.1:1");
  short_key.set_public_key(std::string(31, 'k'));
  EXPECT_THAT(Send(short_key), StatusIs(kInvalid, HasSubstr("public_key")));
  v1::RegisterRequest bad_challenge = SignedRequest(bob_, "bob", "127.0.0.1:1");
  bad_challenge.set_challenge("short");
  EXPECT_THAT(Send(bad_challenge), StatusIs(kInvalid, HasSubstr("challenge")));
  v1::RegisterRequest no_challenge = SignedRequest(bob_, "bob", "127.0.0.1:1");
  no_challenge.clear_challenge();
  EXPECT_THAT(Send(no_challenge), StatusIs(kInvalid, HasSubstr("challenge")));
  v1::RegisterRequest bad_signature = SignedRequest(bob_, "bob", "127.0.0.1:1");
  bad_signature.set_signature(std::string(63, 's'));
  EXPECT_THAT(Send(bad_signature), StatusIs(kInvalid, HasSubstr("signature")));
  v1::RegisterRequest proof_without_key =
      SignedRequest(bob_, "bob", "127.0.0.1:1");
  proof_without_key.clear_public_key();
  EXPECT_THAT(Send(proof_without_key),
              StatusIs(kInvalid, HasSubstr("public_key is required")));
  grpc::ClientContext context;
  v1::ChallengeResponse response;
  v1::ChallengeRequest bad_name;
  bad_name.set_name("no spaces");
  EXPECT_EQ(stub_->Challenge(&context, bad_name, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // The server lives on, and nothing was registered.
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:1"}, &bob_), IsOk());
}

TEST_F(BindingsServiceTest, AdminCallsNeedTheAdminToken) {
  const auto kDenied = absl::StatusCode::kPermissionDenied;
  v1::PutStaticRequest put;
  put.set_name("lab");
  put.set_address("127.0.0.1:8000");
  for (const std::string& authorization :
       {std::string(), std::string("Bearer wrong-token"),
        std::string(kAdminToken), absl::StrCat("Bearer ", kAdminToken, "x"),
        absl::StrCat("bearer ", kAdminToken)}) {
    SCOPED_TRACE(authorization);
    EXPECT_THAT(CallAdmin(&v1::Registry::Stub::PutStatic, put, authorization),
                StatusIs(kDenied,
                         HasSubstr("PutStatic needs the registry's admin token "
                                   "(chatctl --admin-token-file or "
                                   "CHAT_ADMIN_TOKEN_FILE)")));
  }
  EXPECT_THAT(client_->Resolve("lab"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(admin_->PutStatic("lab", "127.0.0.1:8000"), IsOk());
  // Nobody can move or remove it without the token either.
  put.set_address("127.0.0.1:6666");
  EXPECT_THAT(CallAdmin(&v1::Registry::Stub::PutStatic, put, ""),
              StatusIs(kDenied));
  v1::RemoveStaticRequest remove;
  remove.set_name("lab");
  EXPECT_THAT(CallAdmin(&v1::Registry::Stub::RemoveStatic, remove,
                        "Bearer wrong-token"),
              StatusIs(kDenied, HasSubstr("RemoveStatic needs")));
  EXPECT_THAT(client_->RemoveStatic("lab"), StatusIs(kDenied));
  EXPECT_EQ(client_->Resolve("lab")->address, "127.0.0.1:8000");
  ASSERT_THAT(client_->Register({"bob", "127.0.0.1:1"}, &bob_), IsOk());
  v1::ReleaseRequest release;
  release.set_name("bob");
  EXPECT_THAT(CallAdmin(&v1::Registry::Stub::Release, release, ""),
              StatusIs(kDenied, HasSubstr("Release needs")));
  EXPECT_THAT(client_->Release("bob"), StatusIs(kDenied));
  EXPECT_THAT(client_->GetBinding("bob"), IsOk());
  EXPECT_THAT(admin_->RemoveStatic("lab"), IsOk());
}

TEST_F(BindingsServiceTest, AStaticEntryCannotTakeABoundName) {
  auto lease = client_->Register({"bob", "127.0.0.1:1"}, &bob_);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Unregister("bob", lease->lease_id), IsOk());
  EXPECT_THAT(admin_->PutStatic("bob", "127.0.0.1:6666"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bound to a key")));
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(BindingsServiceTest, ReleaseEndsABinding) {
  ASSERT_THAT(client_->Register({"bob", "127.0.0.1:1"}, &bob_), IsOk());
  ASSERT_THAT(admin_->Release("bob"), IsOk());
  EXPECT_THAT(client_->Resolve("bob"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client_->GetBinding("bob"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(admin_->Release("bob"), StatusIs(absl::StatusCode::kNotFound));
  // A user who lost their key registers with a new one.
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:2"}, &thief_), IsOk());
  EXPECT_EQ(client_->GetBinding("bob")->key, thief_.public_key());
}

TEST_F(BindingsServiceTest, TheReservationEndsOnTheClock) {
  auto lease = client_->Register({"bob", "127.0.0.1:1"}, &bob_);
  ASSERT_THAT(lease, IsOk());
  ASSERT_THAT(client_->Unregister("bob", lease->lease_id), IsOk());
  clock_.Advance(Millis(1000LL * 3600 * 24 - 1000));
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:2"}, &thief_),
              StatusIs(absl::StatusCode::kPermissionDenied));
  clock_.Advance(Millis(1000));
  EXPECT_THAT(client_->Register({"bob", "127.0.0.1:2"}, &thief_), IsOk());
}

}  // namespace
}  // namespace chat::registry
