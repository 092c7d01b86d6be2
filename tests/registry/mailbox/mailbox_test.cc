// The Mailbox contract, run against every implementation: the SQLite one
// (sqlite_mailbox_test.cc) and the etcd one (../etcd/etcd_mailbox_test.cc)
// instantiate it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "registry/mailbox/mailbox_rules.h"
#include "tests/registry/mailbox/mailbox_contract.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST_P(MailboxContractTest, ItemsComeBackInArrivalOrder) {
  for (const char* id : {"m1", "m2", "m3"}) {
    ASSERT_THAT(mailbox_->Deposit(Message("alice", "Bob", id)), IsOk());
  }
  auto items = mailbox_->Peek("BOB", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(3));
  EXPECT_EQ((*items)[0].id, "m1");
  EXPECT_EQ((*items)[0].sender, "alice");
  EXPECT_EQ((*items)[0].recipient, "Bob");
  EXPECT_EQ((*items)[0].kind, MailItem::Kind::kMessage);
  EXPECT_EQ((*items)[0].deposited_at, clock_.Wall() - absl::Milliseconds(0));
  EXPECT_LT((*items)[0].seq, (*items)[1].seq);
  auto after = mailbox_->Peek("bob", (*items)[0].seq, 1);
  ASSERT_THAT(after, IsOk());
  EXPECT_THAT(*after, ElementsAre(Field(&MailItem::id, "m2")));
  EXPECT_THAT(Ids("carol"), IsEmpty());
}

TEST_P(MailboxContractTest, AnExactRetransmissionIsStoredOnce) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1", "first")),
              IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1", "first")),
              IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "carol", "m1")), IsOk());
  auto items = mailbox_->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(1));
  EXPECT_EQ((*items)[0].payload, "first");
  EXPECT_EQ((*items)[0].digest, ContentDigest("first"));
  EXPECT_THAT(Ids("carol"), ElementsAre("m1"));
}

// Whoever learns a message's id (a squatter on its recipient's address)
// and deposits first under it does not take the message's place.
TEST_P(MailboxContractTest, AnotherPayloadUnderTheSameIdIsKeptBesideIt) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m1", "junk")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m1", "real")), IsOk());
  auto items = mailbox_->Peek("dan", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(2));
  EXPECT_EQ((*items)[0].payload, "junk");
  EXPECT_EQ((*items)[1].payload, "real");
  EXPECT_NE((*items)[0].digest, (*items)[1].digest);
}

TEST_P(MailboxContractTest, AckByDigestRemovesExactlyThatItem) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m1", "junk")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m1", "real")), IsOk());
  // The junk acknowledged away, without a receipt: the real one stays.
  auto removed =
      mailbox_->Ack("dan", {MailRef{"m1", ContentDigest("junk")}}, {});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 1u);
  auto items = mailbox_->Peek("dan", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(1));
  EXPECT_EQ((*items)[0].payload, "real");
  EXPECT_THAT(Ids("alice"), IsEmpty());
  // Then the real one, with its receipt.
  removed = mailbox_->Ack("dan", {MailRef{"m1", (*items)[0].digest}},
                          {Receipt("dan", "alice", "m1")});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 1u);
  EXPECT_THAT(Ids("dan"), IsEmpty());
  EXPECT_THAT(Ids("alice"), ElementsAre("m1"));
  // A digest that names nothing removes nothing.
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m2", "x")), IsOk());
  removed = mailbox_->Ack("dan", {MailRef{"m2", ContentDigest("y")}}, {});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 0u);
  EXPECT_THAT(Ids("dan"), ElementsAre("m2"));
}

TEST_P(MailboxContractTest, AckByIdAloneRemovesEveryItemWithThatId) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m1", "junk")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dan", "m1", "real")), IsOk());
  auto removed = mailbox_->AckIds("dan", {"m1"}, {});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 2u);
  EXPECT_THAT(Ids("dan"), IsEmpty());
}

TEST_P(MailboxContractTest, AckRemovesAndTellsTheSender) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2")), IsOk());
  auto removed = mailbox_->AckIds("bob", {"m1", "unknown"},
                                  {Receipt("Bob", "alice", "m1")});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 1u);
  EXPECT_THAT(Ids("bob"), ElementsAre("m2"));
  auto receipts = mailbox_->Peek("alice", 0, 10);
  ASSERT_THAT(receipts, IsOk());
  ASSERT_THAT(*receipts, SizeIs(1));
  EXPECT_EQ((*receipts)[0].kind, MailItem::Kind::kReceipt);
  EXPECT_EQ((*receipts)[0].id, "m1");
  EXPECT_EQ((*receipts)[0].sender, "Bob");
  EXPECT_EQ((*receipts)[0].payload, "sealed");  // As the peer made it.
  // Acknowledging a receipt produces nothing more.
  ASSERT_THAT(mailbox_->AckIds("alice", {"m1"}, {}), IsOk());
  EXPECT_THAT(Ids("alice"), IsEmpty());
  EXPECT_THAT(Ids("bob"), ElementsAre("m2"));
}

TEST_P(MailboxContractTest, ALabSenderWithoutAMailboxGetsNoReceipt) {
  ASSERT_THAT(mailbox_->Deposit(Message("Davide De Rosa", "bob", "m1")),
              IsOk());
  ASSERT_THAT(
      mailbox_->AckIds("bob", {"m1"}, {Receipt("bob", "Davide De Rosa", "m1")}),
      IsOk());
  EXPECT_THAT(Ids("bob"), IsEmpty());
}

TEST_P(MailboxContractTest, NoReceiptWithoutAPeerMadeOne) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->AckIds("bob", {"m1"}, {}), IsOk());
  EXPECT_THAT(Ids("alice"), IsEmpty());
}

// A stranger cannot make receipts appear: only receipts for messages this
// Ack removed, from the acknowledging name, to those messages' senders.
TEST_P(MailboxContractTest, OnlyReceiptsForRemovedMessagesOfTheAckerAreKept) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("carol", "bob", "m3")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dave", "m4")), IsOk());
  MailItem not_a_receipt = Receipt("bob", "alice", "m2");
  not_a_receipt.kind = MailItem::Kind::kMessage;
  auto removed = mailbox_->AckIds(
      "bob", {"m1", "m2", "m3", "never-there"},
      {Receipt("bob", "alice", "m1"),
       // The same id again: one receipt per message.
       Receipt("bob", "alice", "m1", "second"),
       // Not from the acknowledging name.
       Receipt("mallory", "alice", "m2"), not_a_receipt,
       // To someone else than the message's sender.
       Receipt("bob", "alice", "m3"),
       // For a message that was not removed (unknown, or dave's).
       Receipt("bob", "alice", "never-there"), Receipt("bob", "alice", "m4"),
       // Too big.
       Receipt("bob", "carol", "m3",
               std::string(kMaxReceiptPayloadBytes + 1, 'x'))});
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(*removed, 3u);
  auto receipts = mailbox_->Peek("alice", 0, 10);
  ASSERT_THAT(receipts, IsOk());
  ASSERT_THAT(*receipts, SizeIs(1));
  EXPECT_EQ((*receipts)[0].id, "m1");
  EXPECT_EQ((*receipts)[0].payload, "sealed");
  EXPECT_THAT(Ids("carol"), IsEmpty());
  EXPECT_THAT(Ids("dave"), ElementsAre("m4"));
  // An id acknowledged a second time removes nothing and makes no receipt.
  ASSERT_THAT(mailbox_->AckIds("bob", {"m2"}, {Receipt("bob", "alice", "m2")}),
              IsOk());
  EXPECT_THAT(Ids("alice"), ElementsAre("m1"));
}

TEST_P(MailboxContractTest, AFullMailboxRefusesAndSaysWhichLimit) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", absl::StrCat(i))),
                IsOk());
  }
  EXPECT_THAT(
      mailbox_->Deposit(Message("alice", "bob", "one-more")),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("5 messages")));
  EXPECT_THAT(Ids("bob"), SizeIs(5));
  // Bytes: 2 x 50 fill carol's 100.
  ASSERT_THAT(
      mailbox_->Deposit(Message("a", "carol", "c1", std::string(50, 'x'))),
      IsOk());
  ASSERT_THAT(
      mailbox_->Deposit(Message("a", "carol", "c2", std::string(50, 'x'))),
      IsOk());
  EXPECT_THAT(
      mailbox_->Deposit(Message("a", "carol", "c3", "y")),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("bytes")));
  // Receipts count against the limits of the mailbox they land in: over
  // them a receipt is dropped, and the Ack stands.
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(mailbox_->Deposit(Message("bob", "dave", absl::StrCat("d", i))),
                IsOk());
  }
  ASSERT_THAT(mailbox_->AckIds(
                  "dave", {"d0", "d1"},
                  {Receipt("dave", "bob", "d0"), Receipt("dave", "bob", "d1")}),
              IsOk());
  EXPECT_THAT(Ids("bob"), SizeIs(5));
  EXPECT_THAT(Ids("dave"), ElementsAre("d2", "d3", "d4"));
  // And a receipt takes room like a message does.
  ASSERT_THAT(mailbox_->Deposit(Message("erin", "frank", "f1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("frank", "erin", "e1")), IsOk());
  for (int i = 2; i < 5; ++i) {
    ASSERT_THAT(mailbox_->Deposit(Message("x", "erin", absl::StrCat("e", i))),
                IsOk());
  }
  ASSERT_THAT(
      mailbox_->AckIds("frank", {"f1"}, {Receipt("frank", "erin", "f1")}),
      IsOk());
  EXPECT_THAT(Ids("erin"), SizeIs(5));
  EXPECT_THAT(mailbox_->Deposit(Message("x", "erin", "e5")),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

// 20 made-up recipients x 16 MiB. A sender (its origin: the
// client host) is bounded across every recipient; other senders are served.
TEST_P(MailboxContractTest, ASenderIsBoundedAcrossAllRecipients) {
  limits_.max_items_per_sender = 4;
  limits_.max_bytes_per_sender = 100;
  Open();
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(mailbox_->Deposit(
                    From("10.0.0.7", Message("m", absl::StrCat("r", i), "x"))),
                IsOk());
  }
  EXPECT_THAT(
      mailbox_->Deposit(From("10.0.0.7", Message("m", "r4", "x"))),
      StatusIs(absl::StatusCode::kResourceExhausted,
               AllOf(HasSubstr("from 10.0.0.7"),
                     HasSubstr("(limit 4, --mailbox-max-sender-messages)"))));
  EXPECT_THAT(mailbox_->Deposit(From("10.0.0.8", Message("m", "r4", "x"))),
              IsOk());
  // Bytes, across two recipients.
  ASSERT_THAT(mailbox_->Deposit(From(
                  "10.0.0.9", Message("m", "s1", "y", std::string(50, 'x')))),
              IsOk());
  ASSERT_THAT(mailbox_->Deposit(From(
                  "10.0.0.9", Message("m", "s2", "y", std::string(50, 'x')))),
              IsOk());
  EXPECT_THAT(mailbox_->Deposit(From("10.0.0.9", Message("m", "s3", "y", "z"))),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("--mailbox-max-sender-mb")));
  if (GetParam().durable) Open();  // The counts come back from the file.
  EXPECT_THAT(mailbox_->Deposit(From("10.0.0.7", Message("m", "r5", "x"))),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // An acknowledged item makes room for its sender again.
  ASSERT_THAT(mailbox_->AckIds("r0", {"x"}, {}), IsOk());
  EXPECT_THAT(mailbox_->Deposit(From("10.0.0.7", Message("m", "r5", "x"))),
              IsOk());
}

// Receipts cannot overfill a mailbox either. Every item, receipts
// too, counts against the total (payload + kMailItemOverheadBytes).
TEST_P(MailboxContractTest, TheTotalIsBoundedAndReceiptsCount) {
  const size_t item = 1 + kMailItemOverheadBytes;  // Payload "p".
  limits_.max_total_bytes = 4 * item;
  Open();
  ASSERT_THAT(mailbox_->Deposit(From("h1", Message("a", "b", "m0"))), IsOk());
  ASSERT_THAT(mailbox_->Deposit(From("h2", Message("a", "c", "m1"))), IsOk());
  ASSERT_THAT(mailbox_->Deposit(From("h3", Message("a", "d", "m2"))), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("a", "e", "m3")), IsOk());
  EXPECT_THAT(mailbox_->Deposit(From("h5", Message("a", "f", "m4"))),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("the mailbox is full"),
                             HasSubstr("--mailbox-max-total-mb"))));
  // A receipt takes the room its message left, and no more.
  ASSERT_THAT(
      mailbox_->AckIds("b", {"m0"}, {From("b", Receipt("b", "a", "m0", "p"))}),
      IsOk());
  EXPECT_THAT(Ids("a"), ElementsAre("m0"));
  EXPECT_THAT(mailbox_->Deposit(From("h5", Message("a", "f", "m4"))),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Over the total, a receipt is dropped and the Ack stands.
  ASSERT_THAT(
      mailbox_->AckIds("c", {"m1"}, {From("c", Receipt("c", "a", "m1", "pp"))}),
      IsOk());
  EXPECT_THAT(Ids("a"), ElementsAre("m0"));
  EXPECT_THAT(Ids("c"), IsEmpty());
}

TEST_P(MailboxContractTest, TheLimitsFollowAcksCopiesReopensAndExpiry) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", absl::StrCat(i))),
                IsOk());
  }
  // A copy of a waiting message takes no room.
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "0")), IsOk());
  ASSERT_THAT(mailbox_->AckIds("bob", {"0", "1"}, {}), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "5")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "6")), IsOk());
  EXPECT_THAT(mailbox_->Deposit(Message("alice", "bob", "7")),
              StatusIs(absl::StatusCode::kResourceExhausted));
  if (GetParam().durable) {
    Open();  // The counts come back from the file.
    EXPECT_THAT(mailbox_->Deposit(Message("alice", "bob", "7")),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  clock_.Advance(Millis(2 * 3600 * 1000));
  ASSERT_THAT(mailbox_->ExpireOld(), IsOk());
  EXPECT_THAT(mailbox_->Deposit(Message("alice", "bob", "7")), IsOk());
}

TEST_P(MailboxContractTest, BadItemsAreRefused) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(mailbox_->Deposit(Message("alice", "no body", "m1")),
              StatusIs(kInvalid));
  EXPECT_THAT(mailbox_->Deposit(Message("alice", "bob", "")),
              StatusIs(kInvalid));
  EXPECT_THAT(mailbox_->Deposit(Message("", "bob", "m1")), StatusIs(kInvalid));
  EXPECT_THAT(
      mailbox_->Deposit(Message("alice", "bob", "m1", std::string(61, 'x'))),
      StatusIs(kInvalid, HasSubstr("60")));
  EXPECT_THAT(mailbox_->Peek("-x", 0, 1), StatusIs(kInvalid));
  EXPECT_THAT(Ids("bob"), IsEmpty());
}

TEST_P(MailboxContractTest, StatCountsMessagesBytesAndAge) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1", "12345")),
              IsOk());
  clock_.Advance(Millis(90000));
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2", "123")), IsOk());
  auto stats = mailbox_->Stat("BOB");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->count, 2u);
  EXPECT_EQ(stats->bytes, 8u);
  EXPECT_EQ(stats->oldest_age, absl::Seconds(90));
  auto empty = mailbox_->Stat("carol");
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(empty->count, 0u);
  EXPECT_EQ(empty->oldest_age, absl::ZeroDuration());
}

TEST_P(MailboxContractTest, OldItemsExpire) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "old")), IsOk());
  clock_.Advance(Millis(30 * 60 * 1000));
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "new")), IsOk());
  clock_.Advance(Millis(30 * 60 * 1000 + 1));
  auto expired = mailbox_->ExpireOld();
  ASSERT_THAT(expired, IsOk());
  EXPECT_EQ(*expired, 1u);
  EXPECT_THAT(Ids("bob"), ElementsAre("new"));
}

TEST_P(MailboxContractTest, ExpiryTellsEachSenderOnceWhatExpired) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("carol", "bob", "m2")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "dave", "m3")), IsOk());
  clock_.Advance(Millis(3600 * 1000 + 1));
  auto expired = mailbox_->ExpireOld();
  ASSERT_THAT(expired, IsOk());
  EXPECT_EQ(*expired, 3u);
  auto items = mailbox_->Peek("alice", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(2));
  for (const MailItem& item : *items) {
    EXPECT_EQ(item.kind, MailItem::Kind::kExpired);
    EXPECT_EQ(item.recipient, "alice");
    EXPECT_EQ(item.payload, "3600000");  // max_age, in ms.
  }
  EXPECT_EQ((*items)[0].id, "expired:m1");
  EXPECT_EQ((*items)[0].sender, "bob");
  EXPECT_EQ((*items)[1].id, "expired:m3");
  EXPECT_EQ((*items)[1].sender, "dave");
  EXPECT_THAT(Ids("carol"), ElementsAre("expired:m2"));
  EXPECT_THAT(Ids("bob"), IsEmpty());
  // Run again: nothing new expired, nothing new reported.
  ASSERT_THAT(mailbox_->ExpireOld(), IsOk());
  EXPECT_THAT(Ids("alice"), SizeIs(2));
}

TEST_P(MailboxContractTest, ExpiredReceiptsMakeNoReceipts) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->AckIds("bob", {"m1"}, {Receipt("bob", "alice", "m1")}),
              IsOk());
  MailItem read = Message("bob", "alice", "read:m1", "sealed");
  read.kind = MailItem::Kind::kReadReceipt;
  ASSERT_THAT(mailbox_->Deposit(read), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2")), IsOk());
  clock_.Advance(Millis(3600 * 1000 + 1));
  ASSERT_THAT(mailbox_->ExpireOld(), IsOk());  // m2 -> one for alice.
  EXPECT_THAT(Ids("alice"), ElementsAre("expired:m2"));
  EXPECT_THAT(Ids("bob"), IsEmpty());
  clock_.Advance(Millis(3600 * 1000 + 1));
  auto expired = mailbox_->ExpireOld();  // The expiry receipt itself.
  ASSERT_THAT(expired, IsOk());
  EXPECT_EQ(*expired, 1u);
  EXPECT_THAT(Ids("alice"), IsEmpty());
  EXPECT_THAT(Ids("bob"), IsEmpty());
}

TEST_P(MailboxContractTest, ExpiryReceiptsCountAndAreDroppedWhenFull) {
  // bob's five messages for alice expire: five receipts fill his mailbox.
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(
        mailbox_->Deposit(Message("bob", "alice", absl::StrCat("b", i))),
        IsOk());
  }
  clock_.Advance(Millis(1800 * 1000));
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "carol", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "carol", "m2")), IsOk());
  clock_.Advance(Millis(1800 * 1000 + 1));
  ASSERT_THAT(mailbox_->ExpireOld(), IsOk());  // bob's five go.
  EXPECT_THAT(Ids("bob"), SizeIs(5));          // One receipt each.
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(
        mailbox_->Deposit(Message("dave", "alice", absl::StrCat("d", i))),
        IsOk());
  }
  clock_.Advance(Millis(1800 * 1000));
  // m1 and m2 expire; alice's mailbox has room for one receipt.
  ASSERT_THAT(mailbox_->ExpireOld(), IsOk());
  EXPECT_THAT(Ids("alice"), ElementsAre("d0", "d1", "d2", "d3", "expired:m1"));
  // It counts: alice's mailbox is full now.
  EXPECT_THAT(mailbox_->Deposit(Message("dave", "alice", "d4")),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_P(MailboxContractTest, ReadReceiptsAreDepositedAndBounded) {
  MailItem read = Message("bob", "alice", "read:m1", "sealed");
  read.kind = MailItem::Kind::kReadReceipt;
  ASSERT_THAT(mailbox_->Deposit(read), IsOk());
  ASSERT_THAT(mailbox_->Deposit(read), IsOk());  // A copy: stored once.
  auto items = mailbox_->Peek("alice", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(1));
  EXPECT_EQ((*items)[0].kind, MailItem::Kind::kReadReceipt);
  MailItem expired = Message("bob", "alice", "expired:m1");
  expired.kind = MailItem::Kind::kExpired;
  EXPECT_THAT(mailbox_->Deposit(expired),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Like messages, read receipts fill a mailbox.
  for (int i = 0; i < 4; ++i) {
    read.id = absl::StrCat("read:", i);
    ASSERT_THAT(mailbox_->Deposit(read), IsOk());
  }
  read.id = "read:x";
  EXPECT_THAT(mailbox_->Deposit(read),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_P(MailboxContractTest, ArrivalsAreAnnouncedUntilUnsubscribed) {
  std::atomic<int> calls{0};
  auto subscription = mailbox_->OnArrival("BOB", [&] { ++calls; });
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "carol", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")),
              IsOk());  // Dup.
  EXPECT_EQ(calls.load(), 1);
  subscription.reset();
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2")), IsOk());
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(MailboxContractTest, ConcurrentDepositsAreAllStored) {
  limits_.max_items = 10000;
  limits_.max_bytes = 1 << 20;
  Open();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 40; ++i) {
        EXPECT_THAT(mailbox_->Deposit(Message(absl::StrCat("s", t), "bob",
                                              absl::StrCat(t, "-", i))),
                    IsOk());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(Ids("bob"), SizeIs(320));
}

TEST_P(MailboxContractTest, ItemsSurviveAReopen) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable mailbox";
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2")), IsOk());
  ASSERT_THAT(mailbox_->AckIds("bob", {"m1"}, {Receipt("bob", "alice", "m1")}),
              IsOk());
  Open();
  EXPECT_THAT(Ids("bob"), ElementsAre("m2"));
  EXPECT_THAT(Ids("alice"), ElementsAre("m1"));  // The receipt.
}

}  // namespace
}  // namespace chat::registry
