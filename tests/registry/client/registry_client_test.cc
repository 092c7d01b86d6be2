// RegistryClient::Register against a registry from before dated proofs: a
// small fake that answers as such a registry does (it reads only the
// challenge), so the client's fallback to a challenge is shown to work.

#include "registry/client/registry_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/identity.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;

// Registers anything with a valid chat-register-v1 proof of its challenge;
// refuses a Register without one in the words of a registry before v2.
class RegistryBeforeTimedProofs final : public v1::Registry::Service {
 public:
  grpc::Status Challenge(grpc::ServerContext* /*context*/,
                         const v1::ChallengeRequest* /*request*/,
                         v1::ChallengeResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++challenges_;
    response->set_challenge(std::string(32, 'c'));
    response->set_expires_in_ms(60000);
    return grpc::Status::OK;
  }

  grpc::Status Register(grpc::ServerContext* /*context*/,
                        const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++registers_;
    if (request->challenge().size() != 32) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("challenge must be the 32 bytes Challenge returned, "
                       "not ",
                       request->challenge().size()));
    }
    auto key = PublicKey::FromBytes(request->public_key());
    if (!key.ok() || !VerifyRegistrationProof(
                         request->name(), request->address(),
                         request->challenge(), *key, request->signature())) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "signature");
    }
    response->set_lease_id("lease");
    response->mutable_entry()->set_name(request->name());
    response->mutable_entry()->set_address(request->address());
    return grpc::Status::OK;
  }

  int challenges() {
    absl::MutexLock lock(&mu_);
    return challenges_;
  }
  int registers() {
    absl::MutexLock lock(&mu_);
    return registers_;
  }

 private:
  absl::Mutex mu_;
  int challenges_ ABSL_GUARDED_BY(mu_) = 0;
  int registers_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(RegistryClientTest, FallsBackToAChallengeWithARegistryBeforeTimedProofs) {
  RegistryBeforeTimedProofs service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  RegistryClient client(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                            grpc::InsecureChannelCredentials()),
                        "old", Millis(5000));
  const Identity identity = Identity::Generate();
  auto lease = client.Register({"bob", "127.0.0.1:7001"}, &identity);
  ASSERT_THAT(lease, IsOk());
  EXPECT_EQ(lease->lease_id, "lease");
  EXPECT_EQ(service.challenges(), 1);
  EXPECT_EQ(service.registers(), 2);  // The dated proof, then the v1 one.
  server->Shutdown();
}

}  // namespace
}  // namespace chat::registry
