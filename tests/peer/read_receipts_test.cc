// Read receipts and expiry receipts between real peers through a real
// in-process registry: alice reads -> bob sees read after
// delivered; turned off both ways; through the mailbox while the sender is
// away; mail that expires unread ends the sender's stored message as expired.
// The mailbox's clock is a FakeClock, so expiry needs no waiting.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "peer/format.h"
#include "peer/peer_store.h"
#include "tests/peer/peer_fixture.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;

// Where in `events` the first event matching `match` is; -1 when none is.
template <typename Match>
int IndexOf(const std::vector<PeerEvent>& events, Match match) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (match(events[i])) return static_cast<int>(i);
  }
  return -1;
}

class ReadReceiptsTest : public PeerTest {
 protected:
  ~ReadReceiptsTest() override {
    // The mailbox uses mail_clock_: gone before it.
    peers_.clear();
    registry_.reset();
  }

  // A registry whose mailbox ages mail by mail_clock_; its expiry loop runs
  // every 20 ms of real time.
  void SetUp() override {
    auto store = registry::OpenSqliteStore(db_path_, RealClock());
    ASSERT_THAT(store, IsOk());
    auto mailbox = registry::OpenSqliteMailbox(db_path_, mail_clock_);
    ASSERT_THAT(mailbox, IsOk());
    registry::RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.admin_token = kAdminToken;
    options.mail_expiry_interval = Millis(20);
    auto server = registry::RegistryServer::Start(*std::move(store),
                                                  *std::move(mailbox), options);
    ASSERT_THAT(server, IsOk());
    registry_ = *std::move(server);
    registry_address_ = absl::StrCat("127.0.0.1:", registry_->port());
  }

  PeerOptions Options(const std::string& name, bool read_receipts = true) {
    PeerOptions options = PeerTest::Options(name);
    options.read_receipts = read_receipts;
    options.read_receipt_retry = Millis(50);
    return options;
  }

  // `from` sends `text` to `to`, which shows it; returns the message's id.
  std::string Delivered(const std::string& from, const std::string& to,
                        const std::string& text) {
    PeerEvent result = SendAndWait(from, to, text);
    EXPECT_EQ(result.status, SendStatus::kDelivered) << result.text;
    EXPECT_TRUE(sink(to).WaitFor(MessageFrom(from, text)).has_value());
    return result.message.id;
  }

  FakeClock mail_clock_;
};

TEST_F(ReadReceiptsTest, WhatTheRecipientReadIsReadAfterDeliveredBothWays) {
  ASSERT_THAT(StartPeer(Options("alice")), IsOk());
  ASSERT_THAT(StartPeer(Options("bob")), IsOk());
  const std::string first = Delivered("bob", "alice", "one");
  const std::string second = Delivered("bob", "alice", "two");
  // Shown, but alice has not been active in the conversation yet.
  EXPECT_EQ(peer("alice").read_tracker().sent(), 0);
  peer("alice").MarkRead("bob");  // She typed to bob, or /chat bob.
  ASSERT_TRUE(sink("bob").WaitFor(StateOf(first, SendStatus::kRead)));
  ASSERT_TRUE(sink("bob").WaitFor(StateOf(second, SendStatus::kRead)));
  std::vector<PeerEvent> events = sink("bob").Events();
  EXPECT_LT(IndexOf(events, StateOf(first, SendStatus::kDelivered)),
            IndexOf(events, StateOf(first, SendStatus::kRead)));
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          StateOf(first, SendStatus::kRead)),
            1);
  EXPECT_TRUE(chat::testing::WaitFor(
      [this] { return peer("alice").read_tracker().sent() == 2; }));
  // Nothing new shown: reading again sends nothing.
  peer("alice").MarkRead("bob");
  // And the other way.
  const std::string back = Delivered("alice", "bob", "three");
  peer("bob").MarkRead("alice");
  ASSERT_TRUE(sink("alice").WaitFor(StateOf(back, SendStatus::kRead)));
  EXPECT_EQ(peer("alice").read_tracker().sent(), 2);
  EXPECT_EQ(peer("bob").read_tracker().dropped(), 0);
  // The screen shows no line for read (the state is in JSON).
  PeerEvent read = *sink("alice").WaitFor(StateOf(back, SendStatus::kRead));
  EXPECT_EQ(FormatText(read, TextStyle()), "");
  EXPECT_THAT(FormatJson(read), ::testing::HasSubstr("\"read\""));
}

TEST_F(ReadReceiptsTest, TurnedOffNeitherSendsNorShows) {
  ASSERT_THAT(StartPeer(Options("alice", /*read_receipts=*/false)), IsOk());
  ASSERT_THAT(StartPeer(Options("bob")), IsOk());
  // alice reads bob's message: she notes nothing and sends nothing.
  const std::string to_alice = Delivered("bob", "alice", "one");
  peer("alice").MarkRead("bob");
  EXPECT_EQ(peer("alice").read_tracker().sent(), 0);
  // bob reads alice's: he sends a receipt, which alice answers (taken,
  // once the call returns) without showing it.
  const std::string to_bob = Delivered("alice", "bob", "two");
  peer("bob").MarkRead("alice");
  ASSERT_TRUE(chat::testing::WaitFor(
      [this] { return peer("bob").read_tracker().sent() == 1; }));
  std::vector<PeerEvent> alice = sink("alice").Events();
  EXPECT_EQ(IndexOf(alice, StateOf(to_bob, SendStatus::kRead)), -1);
  StopPeer("alice");
  auto store =
      OpenPeerStore(PeerTest::Options("alice").store_path, RealClock());
  ASSERT_THAT(store, IsOk());
  auto notes = (*store)->read_notes().ReadNotes();
  ASSERT_THAT(notes, IsOk());
  EXPECT_TRUE(notes->empty());
  std::vector<PeerEvent> bob = sink("bob").Events();
  EXPECT_EQ(IndexOf(bob, StateOf(to_alice, SendStatus::kRead)), -1);
}

TEST_F(ReadReceiptsTest, ReceiptsWaitInTheMailboxWhileTheSenderIsAway) {
  ASSERT_THAT(StartPeer(Options("alice")), IsOk());
  ASSERT_THAT(StartPeer(Options("bob")), IsOk());
  const std::string id = Delivered("alice", "bob", "are you there?");
  StopPeer("alice");
  peer("bob").MarkRead("alice");  // alice is offline: into her mailbox.
  ASSERT_TRUE(chat::testing::WaitFor(
      [this] { return peer("bob").read_tracker().sent() == 1; }));
  sinks_["alice"] = std::make_unique<RecordingSink>();
  ASSERT_THAT(StartPeer(Options("alice")), IsOk());
  auto read = sink("alice").WaitFor(StateOf(id, SendStatus::kRead));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->name, "bob");
  // Reported once: nothing is left noted to report again after a restart.
  StopPeer("alice");
  auto store =
      OpenPeerStore(PeerTest::Options("alice").store_path, RealClock());
  ASSERT_THAT(store, IsOk());
  auto notes = (*store)->read_notes().ReadNotes();
  ASSERT_THAT(notes, IsOk());
  EXPECT_TRUE(notes->empty());
}

TEST_F(ReadReceiptsTest, ReceiptsOwedSurviveARestartOfTheReader) {
  ASSERT_THAT(StartPeer(Options("alice")), IsOk());
  ASSERT_THAT(StartPeer(Options("bob")), IsOk());
  const std::string id = Delivered("bob", "alice", "hi");
  StopPeer("bob");
  StopPeer("alice");
  // alice comes back, reads (the message was shown before the restart);
  // bob comes back later and hears of it.
  ASSERT_THAT(StartPeer(Options("alice")), IsOk());
  peer("alice").MarkRead("bob");
  ASSERT_TRUE(chat::testing::WaitFor(
      [this] { return peer("alice").read_tracker().sent() == 1; }));
  sinks_["bob"] = std::make_unique<RecordingSink>();
  ASSERT_THAT(StartPeer(Options("bob")), IsOk());
  EXPECT_TRUE(sink("bob").WaitFor(StateOf(id, SendStatus::kRead)).has_value());
}

TEST_F(ReadReceiptsTest, MailThatExpiresUnreadEndsTheStoredMessageAsExpired) {
  ASSERT_THAT(StartPeer(Options("bob")), IsOk());  // bob has a key now.
  StopPeer("bob");
  ASSERT_THAT(StartPeer(Options("alice")), IsOk());
  PeerEvent stored = SendAndWait("alice", "bob", "are you there?");
  ASSERT_EQ(stored.status, SendStatus::kStored) << stored.text;
  const std::string id = stored.message.id;
  mail_clock_.Advance(Millis(int64_t{8} * 24 * 3600 * 1000));
  auto expired = sink("alice").WaitFor(StateOf(id, SendStatus::kExpired));
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->text, "it waited 7 days in bob's mailbox and expired");
  TextStyle style;
  style.own_name = "alice";
  EXPECT_THAT(FormatText(*expired, style),
              ::testing::HasSubstr("! not delivered to bob: it waited 7 days "
                                   "in bob's mailbox and expired"));
  // It left the outbox: nothing waits there after a restart.
  StopPeer("alice");
  auto store =
      OpenPeerStore(PeerTest::Options("alice").store_path, RealClock());
  ASSERT_THAT(store, IsOk());
  auto outbox = (*store)->outbox().Entries();
  ASSERT_THAT(outbox, IsOk());
  EXPECT_TRUE(outbox->empty());
}

TEST(ExpiredTextTest, SaysHowLongInOneLine) {
  EXPECT_EQ(ExpiredText("bob", int64_t{7} * 24 * 3600 * 1000),
            "it waited 7 days in bob's mailbox and expired");
  EXPECT_EQ(ExpiredText("bob", int64_t{24} * 3600 * 1000),
            "it waited 1 day in bob's mailbox and expired");
  EXPECT_EQ(ExpiredText("bob", int64_t{3} * 3600 * 1000 + 5),
            "it waited 3 hours in bob's mailbox and expired");
  EXPECT_EQ(ExpiredText("bob", 0), "it expired unread in bob's mailbox");
}

}  // namespace
}  // namespace chat::peer
