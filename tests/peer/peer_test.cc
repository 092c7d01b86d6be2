// Peers chatting by name through a real registry on loopback.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/peer/peer_fixture.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

TEST_F(PeerTest, ThreePeersChatByNameInAllDirections) {
  for (const char* name : {"alice", "bob", "carol"}) {
    ASSERT_THAT(StartPeer(name), IsOk());
  }
  for (const char* from : {"alice", "bob", "carol"}) {
    for (const char* to : {"alice", "bob", "carol"}) {
      if (std::string(from) == to) continue;
      std::string text = absl::StrCat("hello ", to, ", this is ", from);
      PeerEvent result = SendAndWait(from, to, text);
      EXPECT_EQ(result.status, SendStatus::kDelivered) << result.text;
      auto received = sink(to).WaitFor(MessageFrom(from, text));
      ASSERT_TRUE(received.has_value()) << text;
      EXPECT_EQ(received->message.to, to);
      EXPECT_EQ(received->message.id, result.message.id);
    }
  }
}

TEST_F(PeerTest, MessagesToOnePeerArriveInOrder) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  std::string last_id;
  for (int i = 0; i < 50; ++i) {
    auto id = peer("alice").Send("bob", absl::StrCat("m", i));
    ASSERT_THAT(id, IsOk());
    last_id = *id;
  }
  ASSERT_TRUE(sink("alice").WaitFor(ResultFor(last_id)).has_value());
  ASSERT_TRUE(sink("bob").WaitFor(MessageFrom("alice", "m49")).has_value());
  std::vector<std::string> texts;
  for (const PeerEvent& event : sink("bob").Events()) {
    if (event.kind == EventKind::kMessage) texts.push_back(event.message.text);
  }
  ASSERT_EQ(texts.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(texts[i], absl::StrCat("m", i));
}

TEST_F(PeerTest, ALiveNameIsNeverTakenOver) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  RecordingSink other;
  auto second = Peer::Start(Options("ALICE"), &other, RealClock());
  EXPECT_THAT(second,
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("taken")));
  // The first alice still gets her messages.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  EXPECT_EQ(SendAndWait("bob", "alice", "still you?").status,
            SendStatus::kDelivered);
}

TEST_F(PeerTest, ARestartedPeerRegistersAgainAndIsReachable) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  EXPECT_EQ(SendAndWait("alice", "bob", "one").status, SendStatus::kDelivered);
  peers_.erase("bob");  // Unregisters.
  sinks_.erase("bob");
  ASSERT_THAT(StartPeer("bob"), IsOk());  // A new port, the same name.
  EXPECT_EQ(SendAndWait("alice", "bob", "two").status, SendStatus::kDelivered);
  EXPECT_TRUE(sink("bob").WaitFor(MessageFrom("alice", "two")).has_value());
}

TEST_F(PeerTest, AMessageToAnOfflinePeerWaitsInItsMailbox) {
  // bob has registered once (his name is bound to his key), then left.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  peers_.erase("bob");
  sinks_.erase("bob");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  PeerEvent result = SendAndWait("alice", "bob", "are you there?");
  EXPECT_EQ(result.status, SendStatus::kStored);
  EXPECT_EQ(result.text, "bob is offline");
  ASSERT_THAT(StartPeer("bob"), IsOk());
  auto late = sink("bob").WaitFor(MessageFrom("alice", "are you there?"));
  ASSERT_TRUE(late.has_value());
  EXPECT_TRUE(late->message.late);
  EXPECT_EQ(late->message.id, result.message.id);
  // alice learns it arrived, with the text she sent.
  auto delivered = sink("alice").WaitFor([&](const PeerEvent& event) {
    return event.kind == EventKind::kSendResult &&
           event.status == SendStatus::kDelivered &&
           event.message.id == result.message.id;
  });
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->message.text, "are you there?");
  // Shown once, and gone from the mailbox.
  auto client =
      registry::RegistryClient::Connect(registry_address_, Millis(3000));
  EXPECT_EQ(client->MailboxStat("bob")->count, 0u);
}

TEST_F(PeerTest, WithoutAMailboxAMessageWaitsInTheOutboxUntilThePeerComes) {
  // bob's name is bound to his key (he registered once), then he left.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  peers_.erase("bob");
  sinks_.erase("bob");
  const int port = registry_->port();
  registry_.reset();
  StartRegistry(port, /*with_mailbox=*/false);
  ASSERT_THAT(StartPeer("alice"), IsOk());
  auto id = peer("alice").Send("bob", "anyone there?");
  ASSERT_THAT(id, IsOk());
  auto waiting = sink("alice").WaitFor([&](const PeerEvent& event) {
    return StateOf(*id, SendStatus::kSent)(event) && !event.text.empty();
  });
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(waiting->text, "bob is offline and the registry has no mailbox");
  ASSERT_THAT(StartPeer("bob"), IsOk());
  EXPECT_TRUE(
      sink("alice").WaitFor(StateOf(*id, SendStatus::kDelivered)).has_value());
  EXPECT_TRUE(
      sink("bob").WaitFor(MessageFrom("alice", "anyone there?")).has_value());
}

TEST_F(PeerTest, EveryMessageIsSentBeforeItIsDelivered) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  PeerEvent result = SendAndWait("alice", "bob", "hi");
  ASSERT_EQ(result.status, SendStatus::kDelivered);
  std::vector<SendStatus> states;
  for (const PeerEvent& event : sink("alice").Events()) {
    if (event.kind == EventKind::kSendResult &&
        event.message.id == result.message.id) {
      states.push_back(event.status);
    }
  }
  EXPECT_THAT(states, ::testing::ElementsAre(SendStatus::kSent,
                                             SendStatus::kDelivered));
  EXPECT_EQ(result.message.sequence, 1);
}

TEST_F(PeerTest, ASenderRestartedWithPendingMessagesSendsThemOnItsOwn) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  const int port = registry_->port();
  registry_.reset();  // Neither delivered nor stored now.
  auto id = peer("alice").Send("bob", "wait for me");
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(sink("alice")
                  .WaitFor([&](const PeerEvent& event) {
                    return StateOf(*id, SendStatus::kSent)(event) &&
                           !event.text.empty();
                  })
                  .has_value());
  peers_.erase("alice");  // One last try fails; it stays in the outbox.
  sinks_.erase("alice");
  StartRegistry(port);
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_THAT(StartPeer("alice"), IsOk());
  EXPECT_TRUE(
      sink("alice").WaitFor(StateOf(*id, SendStatus::kDelivered)).has_value());
  auto received = sink("bob").WaitFor(MessageFrom("alice", "wait for me"));
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->message.id, *id);
}

TEST_F(PeerTest, AnUnreachablePeerIsReportedAfterARetry) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  // Registered, but nothing listens there (port 1 on loopback): a peer
  // killed a moment ago.
  const Identity ghost = Identity::Generate();
  ASSERT_THAT(Client()->Register(registry::RegisterRequest(
                                     "ghost", "127.0.0.1:1", Millis(60000)),
                                 &ghost),
              IsOk());
  PeerEvent result = SendAndWait("alice", "ghost", "boo");
  EXPECT_EQ(result.status, SendStatus::kStored);
  EXPECT_EQ(result.text, "ghost is unreachable");
  EXPECT_THAT(result.detail, HasSubstr("UNAVAILABLE"));
}

TEST_F(PeerTest, AStaticEntryOutOfReachWaitsInTheOutboxNotAMailbox) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  // A lab peer's static entry, but nothing listens there (port 1).
  ASSERT_THAT(Client(/*admin=*/true)->PutStatic("ghost", "127.0.0.1:1"),
              IsOk());
  auto id = peer("alice").Send("ghost", "boo");
  ASSERT_THAT(id, IsOk());
  auto waiting = sink("alice").WaitFor([&](const PeerEvent& event) {
    return StateOf(*id, SendStatus::kSent)(event) && !event.text.empty();
  });
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(waiting->text, "it is unreachable");
  EXPECT_THAT(waiting->detail, HasSubstr("UNAVAILABLE"));
  EXPECT_EQ(Client()->MailboxStat("ghost")->count, 0u);
}

TEST_F(PeerTest, PeersHearWhoComesAndGoes) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(peer("alice").Follow("bob"), IsOk());  // Only those followed.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  EXPECT_TRUE(sink("alice")
                  .WaitFor([](const PeerEvent& event) {
                    return event.kind == EventKind::kOnline &&
                           event.name == "bob";
                  })
                  .has_value());
  EXPECT_TRUE(peer("alice").WaitUntilOnline("BOB"));
  peers_.erase("bob");
  EXPECT_TRUE(sink("alice")
                  .WaitFor([](const PeerEvent& event) {
                    return event.kind == EventKind::kOffline &&
                           event.name == "bob";
                  })
                  .has_value());
}

TEST_F(PeerTest, ARegistryRestartKeepsEveryName) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  // A watch is open only for someone followed.
  ASSERT_THAT(peer("alice").Follow("bob"), IsOk());
  ASSERT_THAT(peer("alice").Follow("carol"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_TRUE(sink("alice").WaitFor([](const PeerEvent& event) {
    return event.kind == EventKind::kOnline && event.name == "bob";
  }));
  const int port = registry_->port();
  registry_.reset();
  StartRegistry(port);  // The same file, the same port.
  auto client =
      registry::RegistryClient::Connect(registry_address_, Millis(3000));
  EXPECT_THAT(client->Resolve("alice"), IsOk());
  EXPECT_THAT(client->Resolve("bob"), IsOk());
  EXPECT_EQ(SendAndWait("alice", "bob", "after the restart").status,
            SendStatus::kDelivered);
  // The peers' watches reconnect and keep following the registry (quietly:
  // an outage is told by the lease keeper, once each way).
  ASSERT_THAT(StartPeer("carol"), IsOk());
  EXPECT_TRUE(sink("alice")
                  .WaitFor([](const PeerEvent& event) {
                    return event.kind == EventKind::kOnline &&
                           event.name == "carol";
                  })
                  .has_value());
}

TEST_F(PeerTest, ALostLeaseIsRegisteredAgain) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  const int port = registry_->port();
  registry_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(db_path_ + suffix);
  }
  StartRegistry(port);  // A registry that has forgotten everyone.
  auto client =
      registry::RegistryClient::Connect(registry_address_, Millis(3000));
  ASSERT_TRUE(sink("alice")
                  .WaitFor([](const PeerEvent& event) {
                    return event.kind == EventKind::kInfo &&
                           event.text.find("registered \"alice\" again") !=
                               std::string::npos;
                  })
                  .has_value());
  EXPECT_EQ(client->Resolve("alice")->address, peer("alice").address());
}

TEST_F(PeerTest, BadInputIsRefusedAtTheSender) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());  // A name that exists.
  EXPECT_THAT(peer("alice").Send("bob", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(peer("alice").Send("bob", std::string(4097, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("4096")));
  EXPECT_THAT(peer("alice").Send("bob", "\xFF\xFE"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(peer("alice").Send("no such/name", "hi"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(peer("alice").Send("bob", std::string(4096, 'x')), IsOk());
}

TEST_F(PeerTest, AnUnreachableRegistryIsAClearStartError) {
  RecordingSink events;
  PeerOptions options = Options("alice");
  options.registry = "127.0.0.1:1";
  auto peer = Peer::Start(options, &events, RealClock());
  EXPECT_THAT(
      peer, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("127.0.0.1:1")));
}

}  // namespace
}  // namespace chat::peer
