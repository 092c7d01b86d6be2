// RegistryFollower against a real registry whose watch stream breaks while
// the registry keeps running: the follower resumes from the last revision
// it saw, the registry replays only the changes since (no snapshot), and
// exactly the differences are reported.

#include "peer/registry_follower.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "peer/contact_store.h"
#include "peer/contacts.h"
#include "peer/listeners.h"
#include "peer/online_set.h"
#include "registry/client/registry_client.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::UnorderedElementsAre;

constexpr char kAdminToken[] = "follower-test-admin-token";
constexpr char kBackNotice[] = "following the registry again";

// Contacts kept nowhere: the test says whom the follower follows.
class NoContactStore final : public ContactStore {
 public:
  absl::StatusOr<std::vector<Contact>> Contacts() override {
    return std::vector<Contact>();
  }
  void SaveContact(const Contact& /*contact*/) override {}
  void ForgetContact(const std::string& /*name*/) override {}
};

// Keeps the names the follower's watch listed (snapshot and changes), in
// order. Thread-safe.
class ListingLog final : public PresenceListener, public ListingListener {
 public:
  void OnMoved(const std::string& /*name*/) override {}
  void OnArrived(const std::string& /*name*/) override {}
  void OnListed(const registry::Entry& entry) override {
    absl::MutexLock lock(&mu_);
    listed_.push_back(entry.name);
  }

  std::vector<std::string> listed() {
    absl::MutexLock lock(&mu_);
    return listed_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> listed_ ABSL_GUARDED_BY(mu_);
};

bool IsLoss(const PeerEvent& event) {
  return event.kind == EventKind::kInfo &&
         event.text.find("; reconnecting") != std::string::npos;
}

bool IsBack(const PeerEvent& event) {
  return event.kind == EventKind::kInfo && event.text == kBackNotice;
}

// The events after the first that matches `from`.
std::vector<PeerEvent> After(const std::vector<PeerEvent>& events,
                             bool (*from)(const PeerEvent&)) {
  auto it = std::find_if(events.begin(), events.end(), from);
  if (it == events.end()) return {};
  return std::vector<PeerEvent>(it + 1, events.end());
}

class RegistryFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store =
        registry::OpenSqliteStore(dir_.File("registry.db"), RealClock());
    ASSERT_THAT(store, IsOk());
    registry::RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.admin_token = kAdminToken;
    auto server = registry::RegistryServer::Start(*std::move(store), options);
    ASSERT_THAT(server, IsOk());
    registry_ = *std::move(server);
    admin_ = registry::RegistryClient::Connect(
        absl::StrCat("127.0.0.1:", registry_->port()), Millis(3000));
    admin_->SetAdminToken(kAdminToken);
    // The follower reaches the registry only through the proxy, so cutting
    // the proxy breaks its watch and nothing else.
    auto proxy = chat::testing::TcpProxy::Start(registry_->port());
    ASSERT_THAT(proxy, IsOk());
    proxy_ = *std::move(proxy);
    client_ =
        registry::RegistryClient::Connect(proxy_->address(), Millis(3000));
    Contacts::Options contacts;
    contacts.own_name = "me";
    contacts_ = std::make_unique<Contacts>(
        &contact_store_, std::vector<Contact>(), contacts, clock_);
  }

  void StartFollower() {
    RegistryFollower::Options options;
    options.own_name = "me";
    options.contacts = contacts_.get();
    options.presence = &listings_;
    options.listings = &listings_;
    follower_ = std::make_unique<RegistryFollower>(client_.get(), &online_,
                                                   &sink_, clock_, options);
  }

  // Lets the follower's pauses pass (it waits on `clock_`) until an event
  // matching `match` is in. A retry that finds the proxy's new connection
  // not ready yet only pauses once more.
  bool PausesPassUntil(const std::function<bool(const PeerEvent&)>& match) {
    return chat::testing::WaitFor([&] {
      for (const PeerEvent& event : sink_.Events()) {
        if (match(event)) return true;
      }
      clock_.AdvanceToNextWait(absl::Milliseconds(50));
      return false;
    });
  }

  chat::testing::TempDir dir_;
  FakeClock clock_;  // The follower's pauses before it reconnects.
  std::unique_ptr<registry::RegistryServer> registry_;
  std::unique_ptr<registry::RegistryClient> admin_;  // Straight to it.
  std::unique_ptr<chat::testing::TcpProxy> proxy_;
  std::unique_ptr<registry::RegistryClient> client_;  // Through the proxy.
  NoContactStore contact_store_;
  std::unique_ptr<Contacts> contacts_;
  OnlineSet online_;
  RecordingSink sink_;
  ListingLog listings_;
  std::unique_ptr<RegistryFollower> follower_;  // Last: it uses the above.
};

TEST_F(RegistryFollowerTest, ABrokenWatchResumesWithTheChangesAndNoSnapshot) {
  for (const char* name : {"alice", "bob", "carol"}) {
    ASSERT_THAT(contacts_->Follow(name), IsOk());
  }
  ASSERT_THAT(admin_->PutStatic("alice", "127.0.0.1:1001"), IsOk());
  ASSERT_THAT(admin_->PutStatic("bob", "127.0.0.1:1002"), IsOk());
  StartFollower();
  auto summary = sink_.WaitFor(
      [](const PeerEvent& event) { return event.kind == EventKind::kSummary; });
  ASSERT_TRUE(summary.has_value());
  EXPECT_THAT(summary->peers,
              UnorderedElementsAre(Field(&registry::Entry::name, "alice"),
                                   Field(&registry::Entry::name, "bob")));
  // The snapshot listed both.
  EXPECT_THAT(listings_.listed(), UnorderedElementsAre("alice", "bob"));

  // The stream breaks; the registry runs on.
  ASSERT_GE(proxy_->CutAll(), 1u);
  ASSERT_TRUE(sink_.WaitFor(IsLoss).has_value());
  // While the follower waits out its pause (on the fake clock: it watches
  // again only once the test lets the pause pass), bob leaves, carol comes.
  ASSERT_THAT(admin_->RemoveStatic("bob"), IsOk());
  ASSERT_THAT(admin_->PutStatic("carol", "127.0.0.1:1003"), IsOk());

  // The differences come last, once it follows the registry again.
  ASSERT_TRUE(PausesPassUntil([](const PeerEvent& event) {
    return event.kind == EventKind::kOnline && event.name == "carol";
  }));
  // Only the changes came: a snapshot would have listed alice again, who
  // was online all along.
  EXPECT_THAT(listings_.listed(), ElementsAre("alice", "bob", "carol"))
      << "the registry sent a snapshot instead of resuming";
  // Exactly the differences, once each, after the notice that it is back.
  std::vector<PeerEvent> news = After(sink_.Events(), IsLoss);
  ASSERT_EQ(news.size(), 3u);
  EXPECT_TRUE(IsBack(news[0]));
  EXPECT_EQ(news[1].kind, EventKind::kOffline);
  EXPECT_EQ(news[1].name, "bob");
  EXPECT_EQ(news[1].address, "127.0.0.1:1002");
  EXPECT_EQ(news[2].kind, EventKind::kOnline);
  EXPECT_EQ(news[2].name, "carol");
  EXPECT_EQ(news[2].address, "127.0.0.1:1003");
  EXPECT_THAT(online_.Names(), ElementsAre("alice", "carol"));

  // The resumed stream is live: later changes come as they happen.
  ASSERT_THAT(admin_->RemoveStatic("alice"), IsOk());
  auto left = sink_.WaitFor([](const PeerEvent& event) {
    return event.kind == EventKind::kOffline && event.name == "alice";
  });
  ASSERT_TRUE(left.has_value());
  EXPECT_THAT(online_.Names(), ElementsAre("carol"));
  EXPECT_THAT(listings_.listed(), ElementsAre("alice", "bob", "carol"));
}

}  // namespace
}  // namespace chat::peer
