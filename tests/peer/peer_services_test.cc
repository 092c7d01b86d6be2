// A chat peer lists, completes and announces chat peers only, and
// refuses at once a message for a name that offers no chat or that nobody
// ever registered; a name that exists but is offline still gets its mail.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/identity.h"
#include "peer/format.h"
#include "tests/peer/peer_fixture.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class PeerServicesTest : public PeerTest {
 protected:
  // Registers `name` as chat-greeter does: offering "greet", with a key.
  void RegisterGreeter(const std::string& name = "greeter") {
    registry::RegisterRequest request{name, "127.0.0.1:1", Millis(60000), ""};
    request.services = {"greet"};
    auto lease = greeter_client_->Register(request, &greeter_key_);
    ASSERT_THAT(lease, IsOk());
    greeter_lease_ = lease->lease_id;
  }

  bool SawEventAbout(const std::string& who, EventKind kind) {
    std::vector<PeerEvent> events = sink("alice").Events();
    return std::any_of(events.begin(), events.end(), [&](const PeerEvent& e) {
      return e.kind == kind && e.name == who;
    });
  }

  std::unique_ptr<registry::RegistryClient> greeter_client_ = nullptr;
  Identity greeter_key_ = Identity::Generate();
  std::string greeter_lease_;

  void SetUp() override {
    PeerTest::SetUp();
    greeter_client_ = Client();
  }
};

TEST_F(PeerServicesTest, AGreeterIsNeitherListedNorCompletedNorAnnounced) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(peer("alice").Follow("greeter"), IsOk());
  ASSERT_THAT(peer("alice").Follow("bob"), IsOk());
  RegisterGreeter();
  ASSERT_THAT(StartPeer("bob"), IsOk());
  // Changes come in order: once bob's arrival is in, the greeter's is too.
  ASSERT_TRUE(sink("alice")
                  .WaitFor([](const PeerEvent& event) {
                    return event.kind == EventKind::kOnline &&
                           event.name == "bob";
                  })
                  .has_value());
  EXPECT_FALSE(SawEventAbout("greeter", EventKind::kOnline));

  auto page = peer("alice").ListPeers("", 10);
  ASSERT_THAT(page, IsOk());
  std::vector<std::string> listed;
  for (const registry::Entry& entry : page->entries) {
    listed.push_back(entry.name);
  }
  EXPECT_EQ(listed, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(page->total_size, 2);  // Chat peers, the greeter not counted.

  std::vector<std::string> completed = peer("alice").CompletionNames();
  EXPECT_THAT(completed, Contains("bob"));
  EXPECT_THAT(completed, Not(Contains("greeter")));

  // Its leaving is no news either.
  ASSERT_THAT(greeter_client_->Unregister("greeter", greeter_lease_), IsOk());
  StopPeer("bob");
  ASSERT_TRUE(sink("alice")
                  .WaitFor([](const PeerEvent& event) {
                    return event.kind == EventKind::kOffline &&
                           event.name == "bob";
                  })
                  .has_value());
  EXPECT_FALSE(SawEventAbout("greeter", EventKind::kOffline));
}

TEST_F(PeerServicesTest, TheSummaryCountsChatPeersOnly) {
  ASSERT_THAT(StartPeer("bob"), IsOk());
  RegisterGreeter();
  ASSERT_THAT(StartPeer("alice"), IsOk());
  auto summary = sink("alice").WaitFor(
      [](const PeerEvent& event) { return event.kind == EventKind::kSummary; });
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->count, 1);  // bob; not the greeter, not alice.
  TextStyle style;
  style.own_name = "alice";
  EXPECT_EQ(FormatText(*summary, style), "* 1 online, /peers to list\n");
}

TEST_F(PeerServicesTest, SendingToAGreeterFailsAtOnceAndQueuesNothing) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  RegisterGreeter();
  // Not followed: the registry says what it offers.
  auto refused = peer("alice").Send("greeter", "hi");
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(refused.status().message(),
            "greeter is not a chat peer (it offers: greet)");
  TextStyle style;
  EXPECT_EQ(
      FormatText(ErrorEvent(std::string(refused.status().message())), style),
      "! greeter is not a chat peer (it offers: greet)\n");

  // Followed and online: the online set says it, no call needed.
  ASSERT_THAT(peer("alice").Follow("greeter"), IsOk());
  ASSERT_TRUE(peer("alice").WaitUntilOnline("greeter"));
  EXPECT_THAT(peer("alice").Send("greeter", "hi again"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not a chat peer")));

  EXPECT_FALSE(SawEventAbout("greeter", EventKind::kSendResult));
  EXPECT_EQ(Client()->MailboxStat("greeter")->count, 0u);
  // Nothing waits in the outbox for the next start either.
  StopPeer("alice");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  EXPECT_FALSE(SawEventAbout("greeter", EventKind::kSendResult));
}

TEST_F(PeerServicesTest, ANameNobodyRegisteredIsRefused) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  auto refused = peer("alice").Send("carol", "are you there?");
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(refused.status().message(),
            "nobody named carol is registered; check the name (/peers lists "
            "who is online)");
  EXPECT_FALSE(SawEventAbout("carol", EventKind::kSendResult));
  EXPECT_EQ(Client()->MailboxStat("carol")->count, 0u);
}

TEST_F(PeerServicesTest, AKnownNameThatIsOfflineStillGetsItsMail) {
  ASSERT_THAT(StartPeer("bob"), IsOk());
  StopPeer("bob");  // Unregistered; his name stays bound to his key.
  ASSERT_THAT(StartPeer("alice"), IsOk());
  PeerEvent result = SendAndWait("alice", "bob", "see you later");
  EXPECT_EQ(result.status, SendStatus::kStored);
  EXPECT_EQ(Client()->MailboxStat("bob")->count, 1u);
}

TEST_F(PeerServicesTest, WithTheRegistryAwayANewNameIsQueuedAsBefore) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  registry_.reset();
  auto id = peer("alice").Send("dave", "when you can");
  EXPECT_THAT(id, IsOk());
  EXPECT_TRUE(
      sink("alice").WaitFor(StateOf(*id, SendStatus::kSent)).has_value());
}

}  // namespace
}  // namespace chat::peer
