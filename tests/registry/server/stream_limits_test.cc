// The limits on Watch and Listen streams (registry/server/stream_limits.h)
// through a real gRPC server on 127.0.0.1, port 0: each limit is hit, its error
// checked, and the others are still served.

#include "registry/server/stream_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "registry/client/registry_client.h"
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::WaitFor;
using ::testing::HasSubstr;

constexpr char kAdminToken[] = "stream-limits-test-admin-token";

TEST(StreamGateTest, AdmitsUpToEachLimitAndAgainOnceAPlaceIsFree) {
  StreamGate gate("Listen", 3, "per-client", 2, "per-lease");
  auto a1 = gate.Admit("10.0.0.7", "lease-a");
  auto a2 = gate.Admit("10.0.0.7", "lease-a");
  ASSERT_THAT(a1, IsOk());
  ASSERT_THAT(a2, IsOk());
  EXPECT_THAT(gate.Admit("10.0.0.7", "lease-a"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("too many Listen streams on one lease (limit "
                                 "2, --per-lease)")));
  auto b1 = gate.Admit("10.0.0.7", "lease-b");
  ASSERT_THAT(b1, IsOk());
  EXPECT_THAT(gate.Admit("10.0.0.7", "lease-c"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("too many Listen streams from 10.0.0.7 "
                                 "(limit 3, --per-client)")));
  // Another host is counted apart.
  EXPECT_THAT(gate.Admit("10.0.0.8", "lease-d"), IsOk());
  EXPECT_EQ(gate.OpenFrom("10.0.0.7"), 3u);
  a1->reset();
  EXPECT_EQ(gate.OpenFrom("10.0.0.7"), 2u);
  EXPECT_THAT(gate.Admit("10.0.0.7", "lease-a"), IsOk());
}

class StreamLimitsTest : public ::testing::Test {
 protected:
  void Start(StreamLimits limits) {
    SqliteStoreOptions store_options;
    store_options.max_watch_backlog_bytes = limits.watch_backlog_bytes;
    auto store = OpenSqliteStore(":memory:", clock_, store_options);
    auto mailbox = OpenSqliteMailbox(":memory:", clock_, MailboxLimits{});
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT(mailbox, IsOk());
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.admin_token = kAdminToken;
    options.streams = limits;
    auto server =
        RegistryServer::Start(*std::move(store), *std::move(mailbox), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    channel_ =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    client_ =
        std::make_unique<RegistryClient>(channel_, address_, Millis(5000));
    client_->SetAdminToken(kAdminToken);
    client_->SetClock(clock_);  // Proofs dated on the registry's clock.
  }

  // A watch that delivered its kSynced (the registry is empty).
  std::unique_ptr<WatchStream> SyncedWatch() {
    auto watch = client_->Watch("");
    WatchEvent event;
    EXPECT_TRUE(watch->Next(&event));
    EXPECT_EQ(event.type, EventType::kSynced);
    return watch;
  }

  std::string LeaseFor(const std::string& name) {
    const Identity identity = Identity::Generate();
    auto lease =
        client_->Register({name, "127.0.0.1:9", Millis(0), ""}, &identity);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? lease->lease_id : "";
  }

  void DepositFor(const std::string& name, const std::string& id) {
    MailItem item;
    item.id = id;
    item.sender = "someone";
    item.recipient = name;
    item.payload = "hello";
    ASSERT_THAT(client_->Deposit(item), IsOk());
  }

  FakeClock clock_;
  std::unique_ptr<RegistryServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(StreamLimitsTest, TheWatchPastTheLimitPerClientIsRefusedOthersServed) {
  StreamLimits limits;
  limits.max_watch_streams_per_client = 3;
  Start(limits);
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (int i = 0; i < 3; ++i) watches.push_back(SyncedWatch());

  auto refused = client_->Watch("");
  WatchEvent event;
  EXPECT_FALSE(refused->Next(&event));
  EXPECT_THAT(refused->Finish(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("too many Watch streams from 127.0.0.1 (limit "
                                 "3, --max-watch-streams-per-client)")));
  // The others are still served.
  ASSERT_THAT(client_->PutStatic("lab", "127.0.0.1:8000"), IsOk());
  for (auto& watch : watches) {
    ASSERT_TRUE(watch->Next(&event));
    EXPECT_EQ(event.entry.name, "lab");
  }
  // Once one ends, a new one is admitted.
  watches.pop_back();
  EXPECT_TRUE(WaitFor([&] {
    auto watch = client_->Watch("");
    WatchEvent first;
    return watch->Next(&first) && first.entry.name == "lab";
  }));
}

TEST_F(StreamLimitsTest, TheListenPastTheLimitsPerLeaseAndClientIsRefused) {
  StreamLimits limits;
  limits.max_listen_streams_per_client = 3;
  limits.max_listen_streams_per_lease = 2;
  Start(limits);
  const std::string alice = LeaseFor("alice");
  const std::string bob = LeaseFor("bob");
  const std::string carol = LeaseFor("carol");
  DepositFor("alice", "m1");
  DepositFor("bob", "m2");
  DepositFor("carol", "m3");
  MailItem item;

  std::vector<std::unique_ptr<MailStream>> streams;
  for (int i = 0; i < 2; ++i) {
    streams.push_back(client_->Listen("alice", alice));
    ASSERT_TRUE(streams.back()->Next(&item));
    EXPECT_EQ(item.id, "m1");
  }
  auto third_on_lease = client_->Listen("alice", alice);
  EXPECT_FALSE(third_on_lease->Next(&item));
  EXPECT_THAT(third_on_lease->Finish(),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("too many Listen streams on one lease (limit "
                                 "2, --max-listen-streams-per-lease)")));
  streams.push_back(client_->Listen("bob", bob));
  ASSERT_TRUE(streams.back()->Next(&item));
  EXPECT_EQ(item.id, "m2");
  auto fourth_from_host = client_->Listen("carol", carol);
  EXPECT_FALSE(fourth_from_host->Next(&item));
  EXPECT_THAT(
      fourth_from_host->Finish(),
      StatusIs(absl::StatusCode::kResourceExhausted,
               HasSubstr("too many Listen streams from 127.0.0.1 "
                         "(limit 3, --max-listen-streams-per-client)")));
  // The admitted ones are still served.
  DepositFor("bob", "m4");
  ASSERT_TRUE(streams.back()->Next(&item));
  EXPECT_EQ(item.id, "m4");
  // Once one ends, carol is admitted.
  streams.erase(streams.begin());
  EXPECT_TRUE(WaitFor([&] {
    auto stream = client_->Listen("carol", carol);
    MailItem first;
    return stream->Next(&first) && first.id == "m3";
  }));
}

// Watchers that never read while names change.
// Each one's queue stays within the backlog bound and is freed when it
// overflows; a normal watcher is still served.
TEST_F(StreamLimitsTest, WatchersThatNeverReadStayWithinTheBacklogBound) {
  constexpr size_t kBacklog = 16 * 1024;
  constexpr int kStalled = 40;
  constexpr int kChanges = 2000;
  StreamLimits limits;
  limits.watch_backlog_bytes = kBacklog;
  Start(limits);

  // Each on a connection of its own, reading its kSynced and nothing more.
  struct Stalled {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Registry::Stub> stub;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader;
  };
  std::vector<std::unique_ptr<Stalled>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    auto watcher = std::make_unique<Stalled>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // A small window that never grows, as a client that does not read
    // leaves it: what the registry cannot send waits with the registry.
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    watcher->channel = grpc::CreateCustomChannel(
        address_, grpc::InsecureChannelCredentials(), args);
    watcher->stub = v1::Registry::NewStub(watcher->channel);
    watcher->reader =
        watcher->stub->Watch(&watcher->context, v1::WatchRequest());
    v1::WatchEvent synced;
    ASSERT_TRUE(watcher->reader->Read(&synced));
    ASSERT_EQ(synced.type(), v1::WatchEvent::SYNCED);
    stalled.push_back(std::move(watcher));
  }

  // Long addresses: ~250 bytes of change each, 500 KB per watcher in all.
  const std::string host =
      absl::StrCat(std::string(60, 'x'), ".", std::string(60, 'y'), ".",
                   std::string(60, 'z'), ".example");
  size_t most_queued = 0;
  for (int i = 0; i < kChanges; ++i) {
    ASSERT_THAT(client_->PutStatic(absl::StrCat("n", 10000 + i),
                                   absl::StrCat(host, ":", 1 + i)),
                IsOk());
    const size_t queued = server_->WatchBacklogBytes();
    most_queued = std::max(most_queued, queued);
    ASSERT_LE(queued, kStalled * kBacklog);
  }
  // Every stalled watcher fell behind and was ended, its queue freed.
  EXPECT_TRUE(WaitFor([&] { return server_->WatchBacklogBytes() == 0; }));
  std::cerr << "most bytes queued for " << kStalled
            << " stalled watchers: " << most_queued << " (bound "
            << kStalled * kBacklog << ")\n";

  // A normal watcher gets the whole snapshot and the next change.
  auto watch = client_->Watch("");
  WatchEvent event;
  int initial = 0;
  while (watch->Next(&event) && event.type == EventType::kPut) ++initial;
  EXPECT_EQ(event.type, EventType::kSynced);
  EXPECT_EQ(initial, kChanges);
  ASSERT_THAT(client_->PutStatic("last", "127.0.0.1:1"), IsOk());
  ASSERT_TRUE(watch->Next(&event));
  EXPECT_EQ(event.entry.name, "last");
  for (auto& watcher : stalled) watcher->context.TryCancel();
}

}  // namespace
}  // namespace chat::registry
