// LeaseKeeper against a real registry on 127.0.0.1, with the keeper's and
// the store's time on one FakeClock: renewals happen when the clock says.

#include "registry/client/lease_keeper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/identity.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::WaitFor;

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(":memory:", clock_);
    ASSERT_THAT(store, IsOk());
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    // Its loops wait on the real clock, so the keeper is the one thread
    // waiting on clock_; nothing expires unless the test moves clock_.
    auto server = RegistryServer::Start(*std::move(store), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    client_ = RegistryClient::Connect(
        absl::StrCat("127.0.0.1:", server_->port()), Millis(5000));
    client_->SetClock(clock_);  // Proofs dated on the registry's clock.
  }

  LeaseKeeper::Options Options() {
    LeaseKeeper::Options options;
    options.name = "alice";
    options.address = "127.0.0.1:7001";
    options.ttl = Millis(3000);
    options.identity = &identity_;
    options.on_lease = [this](const std::string& lease_id) {
      absl::MutexLock lock(&mu_);
      leases_.push_back(lease_id);
    };
    return options;
  }

  std::vector<std::string> leases() {
    absl::MutexLock lock(&mu_);
    return leases_;
  }

  Millis ExpiresIn() {
    auto entry = client_->Resolve("alice");
    return entry.ok() ? entry->expires_in : Millis(-1);
  }

  FakeClock clock_;
  const Identity identity_ = Identity::Generate();  // alice's key.
  std::unique_ptr<RegistryServer> server_;
  std::unique_ptr<RegistryClient> client_;
  absl::Mutex mu_;
  std::vector<std::string> leases_ ABSL_GUARDED_BY(mu_);
};

TEST_F(LeaseKeeperTest, RenewsAtAThirdOfTheTtlOnItsClock) {
  auto keeper = LeaseKeeper::Start(client_.get(), Options(), clock_);
  ASSERT_THAT(keeper, IsOk());
  EXPECT_EQ((*keeper)->address(), "127.0.0.1:7001");
  ASSERT_EQ(leases().size(), 1u);
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  EXPECT_EQ(clock_.NextWait(), Millis(1000));
  clock_.Advance(Millis(1000));
  // 2000 ms left unless the keeper's thread renews, once it wakes.
  ASSERT_TRUE(WaitFor([&] { return ExpiresIn() == Millis(3000); }));
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  EXPECT_EQ(clock_.NextWait(), Millis(1000));
  EXPECT_EQ(leases().size(), 1u);  // Renewed, not registered again.
}

TEST_F(LeaseKeeperTest, RegistersAgainWhenTheLeaseIsGone) {
  std::atomic<int> changes{0};
  LeaseKeeper::Options options = Options();
  options.on_change = [&changes](const std::string&) { ++changes; };
  auto keeper = LeaseKeeper::Start(client_.get(), options, clock_);
  ASSERT_THAT(keeper, IsOk());
  const std::string first = (*keeper)->lease().lease_id;
  ASSERT_THAT(client_->Unregister("alice", first), IsOk());
  ASSERT_TRUE(clock_.AdvanceToNextWait().has_value());
  ASSERT_TRUE(WaitFor([&] { return leases().size() == 2; }));
  EXPECT_NE(leases().back(), first);
  EXPECT_EQ((*keeper)->lease().lease_id, leases().back());
  EXPECT_EQ(changes, 2);  // "lost", then "registered again".
  EXPECT_THAT(client_->Resolve("alice"), IsOk());
}

TEST_F(LeaseKeeperTest, StopUnregistersAndEndsRenewals) {
  auto keeper = LeaseKeeper::Start(client_.get(), Options(), clock_);
  ASSERT_THAT(keeper, IsOk());
  (*keeper)->Stop();
  EXPECT_THAT(client_->Resolve("alice"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE((*keeper)->lease().lease_id.empty());
  EXPECT_TRUE(clock_.WaiterDeadlines().empty());
}

TEST_F(LeaseKeeperTest, WorksOutTheAddressWhenNoneIsGiven) {
  LeaseKeeper::Options options = Options();
  options.address = "";
  options.listen = "127.0.0.1:0";
  options.port = 7005;
  auto keeper = LeaseKeeper::Start(client_.get(), options, clock_);
  ASSERT_THAT(keeper, IsOk());
  EXPECT_EQ((*keeper)->address(), "127.0.0.1:7005");
  auto entry = client_->Resolve("alice");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "127.0.0.1:7005");
}

TEST(AdvertisedAddressTest, AdvertiseThenListenThenTheRouteToTheRegistry) {
  EXPECT_EQ(*AdvertisedAddress("peer.example:1", "127.0.0.1:0", 9, ""),
            "peer.example:1");
  EXPECT_EQ(*AdvertisedAddress("", "127.0.0.1:0", 9, ""), "127.0.0.1:9");
  EXPECT_EQ(*AdvertisedAddress("", "0.0.0.0:0", 9, "127.0.0.1:50050"),
            "127.0.0.1:9");
  EXPECT_THAT(AdvertisedAddress("", "0.0.0.0:0", 9, "no-such-host.invalid:1"),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace chat::registry
