// Shedding in the registry (common/overload.h) through a real server on
// 127.0.0.1, port 0: a call past its deadline does no work, and beyond the
// bound on calls in progress calls are refused at once while the server
// keeps serving.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/registry.grpc.pb.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::WaitFor;
using ::testing::HasSubstr;

class RegistryOverloadTest : public ::testing::Test {
 protected:
  void Start(const OverloadOptions& overload) {
    auto store = OpenSqliteStore(":memory:", clock_);
    ASSERT_THAT(store, IsOk());
    store_ = store->get();
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.clock = &clock_;
    options.require_key = false;
    options.overload = overload;
    auto server = RegistryServer::Start(*std::move(store), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Registry::NewStub(channel_);
  }

  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
  }

  grpc::Status Register(const std::string& name) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::RegisterRequest request;
    request.set_name(name);
    request.set_address("127.0.0.1:7000");
    v1::RegisterResponse response;
    return stub_->Register(&context, request, &response);
  }

  grpc::Status Resolve(const std::string& name) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ResolveRequest request;
    request.set_name(name);
    v1::ResolveResponse response;
    return stub_->Resolve(&context, request, &response);
  }

  FakeClock clock_;
  Store* store_ = nullptr;  // Owned by server_.
  std::unique_ptr<RegistryServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Registry::Stub> stub_;
};

TEST_F(RegistryOverloadTest, ACallPastItsDeadlineDoesNoWork) {
  // The gate's clock runs a month ahead: every deadline of the client (30 s
  // of real time) has passed by the time the handler runs.
  FakeClock ahead;
  ahead.JumpWall(absl::Hours(24 * 30));
  OverloadOptions overload;
  overload.clock = &ahead;
  Start(overload);

  const grpc::Status status = Register("alice");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's words, not the client's own deadline.
  EXPECT_THAT(status.error_message(), HasSubstr("before the server"));
  EXPECT_EQ(store_->Size(), 0u);  // Nothing was written.
  EXPECT_FALSE(store_->Resolve("alice").ok());

  // A Watch is refused the same way.
  grpc::ClientContext context;
  SetDeadline(context);
  v1::WatchRequest request;
  auto reader = stub_->Watch(&context, request);
  v1::WatchEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(server_->gate().counts().expired, 2);
  EXPECT_EQ(server_->gate().counts().admitted, 0);
}

TEST_F(RegistryOverloadTest, BeyondTheBoundCallsAreRefusedAndServedAgain) {
  OverloadOptions overload;
  overload.max_calls_in_progress = 2;
  Start(overload);
  ASSERT_TRUE(Register("alice").ok());
  // Register's place goes with its answer, on the store's thread.
  ASSERT_TRUE(
      WaitFor([this] { return server_->gate().counts().in_progress == 0; }));

  // Two calls in progress (held here, as two slow calls would hold them).
  auto first = server_->gate().Admit(absl::InfiniteFuture());
  auto second = server_->gate().Admit(absl::InfiniteFuture());
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());

  for (int i = 0; i < 20; ++i) {
    const grpc::Status refused = Resolve("alice");
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(refused.error_message(),
                HasSubstr("too many calls in progress (limit 2, "
                          "--max-calls-in-progress)"));
  }
  EXPECT_EQ(Register("bob").error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(store_->Resolve("bob").ok());  // Refused before any work.
  EXPECT_EQ(server_->gate().counts().refused, 21);

  // One place free: everyone is served again, and each call gives its place
  // back when answered.
  first->Release();
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Resolve("alice").ok());
  EXPECT_TRUE(Register("bob").ok());
  EXPECT_TRUE(store_->Resolve("bob").ok());
  EXPECT_TRUE(
      WaitFor([this] { return server_->gate().counts().in_progress == 1; }));
}

}  // namespace
}  // namespace chat::registry
