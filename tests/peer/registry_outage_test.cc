// Two live peers through a registry outage: they keep chatting
// at the addresses they know, hear once that the registry is away and once
// that it is back, and what needs the registry goes once it is.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/peer/peer_fixture.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::testing::AnyOf;
using ::testing::Eq;

auto Notice(const std::string& text) {
  return [text](const PeerEvent& event) {
    return event.kind == EventKind::kInfo && event.text == text;
  };
}

size_t Count(RecordingSink& sink, const std::string& text) {
  size_t count = 0;
  for (const PeerEvent& event : sink.Events()) {
    if (Notice(text)(event)) ++count;
  }
  return count;
}

// Whether `peer` follows `name` and the watch lists it online.
bool Lists(Peer& peer, const std::string& name) {
  for (const registry::Entry& entry : peer.FollowedOnline()) {
    if (entry.name == name) return true;
  }
  return false;
}

TEST_F(PeerTest, TwoLivePeersKeepChattingWhileTheRegistryIsDown) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  EXPECT_EQ(SendAndWait("alice", "bob", "hi bob").status,
            SendStatus::kDelivered);
  // bob heard from alice, so he follows her and his watch lists her
  // address; he has never sent to her (no channel yet).
  ASSERT_TRUE(
      chat::testing::WaitFor([&] { return Lists(peer("bob"), "alice"); }));

  const int port = registry_->port();
  registry_.reset();  // The registry is gone.
  // Both ways, at once, before anyone noticed: no resolve is needed.
  EXPECT_EQ(SendAndWait("alice", "bob", "still there?").status,
            SendStatus::kDelivered);
  EXPECT_EQ(SendAndWait("bob", "alice", "yes, still here").status,
            SendStatus::kDelivered);
  // Each is told once that the registry is away, with the gRPC text apart.
  auto away = sink("alice").WaitFor(Notice(kRegistryAwayNotice));
  ASSERT_TRUE(away.has_value());
  EXPECT_FALSE(away->detail.empty());
  ASSERT_TRUE(sink("bob").WaitFor(Notice(kRegistryAwayNotice)).has_value());
  // And the conversation goes on, in order, with the registry away.
  for (const char* text : {"one", "two", "three"}) {
    EXPECT_EQ(SendAndWait("alice", "bob", text).status, SendStatus::kDelivered);
    EXPECT_EQ(SendAndWait("bob", "alice", text).status, SendStatus::kDelivered);
  }
  EXPECT_TRUE(sink("bob").WaitFor(MessageFrom("alice", "three")).has_value());
  EXPECT_TRUE(sink("alice").WaitFor(MessageFrom("bob", "three")).has_value());

  StartRegistry(port);  // Back, with the same file.
  ASSERT_TRUE(sink("alice").WaitFor(Notice(kRegistryBackNotice)).has_value());
  ASSERT_TRUE(sink("bob").WaitFor(Notice(kRegistryBackNotice)).has_value());
  EXPECT_EQ(SendAndWait("alice", "bob", "welcome back").status,
            SendStatus::kDelivered);
  // Once each way, for each peer; no notice of its own from the watch and
  // no per-message notice for those who were reachable.
  for (const char* name : {"alice", "bob"}) {
    EXPECT_EQ(Count(sink(name), kRegistryAwayNotice), 1u) << name;
    EXPECT_EQ(Count(sink(name), kRegistryBackNotice), 1u) << name;
    for (const PeerEvent& event : sink(name).Events()) {
      EXPECT_FALSE(event.kind == EventKind::kInfo &&
                   (event.text.find("registry watch") != std::string::npos ||
                    event.text.find("reachable again") != std::string::npos))
          << name << ": " << event.text;
      EXPECT_FALSE(event.kind == EventKind::kSendResult &&
                   event.status == SendStatus::kSent && !event.text.empty())
          << name << ": " << event.text;
    }
  }
}

TEST_F(PeerTest, WithTheRegistryDownAPeerNotKnownWaitsForIt) {
  // bob is bound to his key (registered once) and left: only the registry
  // knows about him, and the mailbox is in the registry.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  StopPeer("bob");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  const int port = registry_->port();
  registry_.reset();
  auto id = peer("alice").Send("bob", "are you there?");
  ASSERT_THAT(id, IsOk());
  auto waiting = sink("alice").WaitFor([&](const PeerEvent& event) {
    return StateOf(*id, SendStatus::kSent)(event) && !event.text.empty();
  });
  ASSERT_TRUE(waiting.has_value());
  EXPECT_EQ(waiting->text, "the registry is unreachable");
  EXPECT_FALSE(waiting->detail.empty());
  StartRegistry(port);
  // Once it is back the message goes at once into bob's mailbox.
  auto stored = sink("alice").WaitFor(StateOf(*id, SendStatus::kStored));
  ASSERT_TRUE(stored.has_value());
  // Why it is not delivered: bob is offline, or (when the resolve raced
  // the registry's return and the deposit a moment later did not) the
  // registry was still out of reach for the resolve.
  EXPECT_THAT(stored->text,
              AnyOf(Eq("bob is offline"), Eq("the registry is unreachable")));
}

// A message to a name nobody holds, typed while the registry was down, is
// taken on trust (the registry cannot be asked); it waited in the outbox
// for ever and nobody was told. Once the registry answers it fails with a
// plain reason and leaves the outbox.
TEST_F(PeerTest, ANameNobodyHoldsTypedDuringAnOutageIsReportedOnceItIsBack) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  const int port = registry_->port();
  registry_.reset();
  auto id = peer("alice").Send("carol", "are you there?");
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(sink("alice").WaitFor([&](const PeerEvent& event) {
    return StateOf(*id, SendStatus::kSent)(event) && !event.text.empty();
  }));
  StartRegistry(port);
  auto failed = sink("alice").WaitFor(StateOf(*id, SendStatus::kFailed));
  ASSERT_TRUE(failed.has_value());
  EXPECT_THAT(failed->text,
              ::testing::StartsWith("nobody named carol is registered"));
  EXPECT_EQ(failed->detail.find("nobody"), std::string::npos);
  // It left the outbox: nothing is sent again at the next start.
  StopPeer("alice");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  for (const PeerEvent& event : sink("alice").Events()) {
    EXPECT_EQ(event.text.find("left in your outbox"), std::string::npos)
        << event.text;
  }
}

}  // namespace
}  // namespace chat::peer
