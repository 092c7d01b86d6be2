// The per-connection stream bound (--max-streams-per-connection,
// GRPC_ARG_MAX_CONCURRENT_STREAMS) on one real TCP connection: streams past
// it wait on the client's side, where their deadline ends them, and one
// starts as soon as a place frees. The health service's Watch stands for any
// long-lived stream (the registry's Watch and Listen).

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/grpc_server.h"
#include "proto/health.grpc.pb.h"

namespace chat {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Waits far longer than any of these steps takes; never reached when the
// bound works.
constexpr absl::Duration kPatience = absl::Seconds(30);

// One Watch stream on its own thread: the sync API blocks while the stream
// waits for a place on the connection.
class Watcher {
 public:
  Watcher(Health::Stub* stub, std::optional<std::chrono::milliseconds> deadline)
      : thread_([this, stub, deadline] {
          if (deadline) {
            context_.set_deadline(std::chrono::system_clock::now() + *deadline);
          }
          std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader =
              stub->Watch(&context_, HealthCheckRequest());
          HealthCheckResponse response;
          if (reader->Read(&response)) {
            first_.Notify();
            while (reader->Read(&response)) {
            }
          }
          status_ = reader->Finish();
          done_.Notify();
        }) {}
  ~Watcher() {
    context_.TryCancel();
    thread_.join();
  }

  // Whether the server answered the stream (its handler ran).
  bool Started(absl::Duration wait = kPatience) {
    return first_.WaitForNotificationWithTimeout(wait);
  }
  std::optional<grpc::Status> Ended() {
    if (!done_.WaitForNotificationWithTimeout(kPatience)) return std::nullopt;
    return status_;
  }

 private:
  grpc::ClientContext context_;
  absl::Notification first_;
  absl::Notification done_;
  grpc::Status status_;  // Written before done_ is notified.
  std::thread thread_;   // Last: it uses the members above.
};

TEST(StreamLimitTest, StreamsPastTheBoundWaitOnTheClientUntilAPlaceFrees) {
  constexpr int kBound = 3;
  ServerConfig config;
  config.listen_address = "127.0.0.1:0";
  config.max_streams_per_connection = kBound;
  absl::StatusOr<RunningServer> running = StartServer(config);
  ASSERT_TRUE(running.ok()) << running.status();
  std::unique_ptr<Health::Stub> stub = Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(running->port),
                          grpc::InsecureChannelCredentials()));

  // One call first, so the client has heard the bound: streams opened in a
  // connection's first round trip are not held to it (the client has not
  // read the server's SETTINGS yet, and gRPC's server judges by the value
  // the client has acknowledged).
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    HealthCheckResponse response;
    ASSERT_TRUE(stub->Check(&context, HealthCheckRequest(), &response).ok());
  }

  std::vector<std::unique_ptr<Watcher>> open;
  for (int i = 0; i < kBound; ++i) {
    open.push_back(std::make_unique<Watcher>(stub.get(), std::nullopt));
    ASSERT_TRUE(open.back()->Started()) << "stream " << i;
  }

  // One more never reaches the server while the bound's streams are open:
  // its deadline ends it on the client's side.
  Watcher past(stub.get(), std::chrono::milliseconds(500));
  const std::optional<grpc::Status> ended = past.Ended();
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(past.Started(absl::ZeroDuration()));

  // One without a deadline waits, and starts once a place frees.
  Watcher waiting(stub.get(), std::nullopt);
  open.front().reset();
  EXPECT_TRUE(waiting.Started());

  open.clear();
  StopServer(*running->server, std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace chat
