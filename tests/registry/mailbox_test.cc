// The Mailbox contract, run against every implementation.

#include "registry/mailbox.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/random.h"
#include "registry/sqlite_mailbox.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

struct MailboxFactory {
  std::string name;
  bool durable;
  std::function<absl::StatusOr<std::unique_ptr<Mailbox>>(
      const Clock&, const std::string& path, const MailboxLimits&)>
      open;
};

MailItem Message(const std::string& from, const std::string& to,
                 const std::string& id, const std::string& payload = "p") {
  MailItem item;
  item.id = id;
  item.sender = from;
  item.recipient = to;
  item.payload = payload;
  return item;
}

// The receipt the peer of `acker` makes for message `id` from `to`.
MailItem Receipt(const std::string& acker, const std::string& to,
                 const std::string& id, const std::string& payload = "sealed") {
  MailItem item = Message(acker, to, id, payload);
  item.kind = MailItem::Kind::kReceipt;
  return item;
}

class MailboxContractTest : public ::testing::TestWithParam<MailboxFactory> {
 protected:
  MailboxContractTest() {
    limits_.max_items = 5;
    limits_.max_bytes = 100;
    limits_.max_payload_bytes = 60;
    limits_.max_age = absl::Hours(1);
  }
  ~MailboxContractTest() override { mailbox_.reset(); }

  void SetUp() override { Open(); }

  void Open() {
    mailbox_.reset();
    auto mailbox = GetParam().open(clock_, dir_.File("registry.db"), limits_);
    ASSERT_THAT(mailbox, IsOk());
    mailbox_ = *std::move(mailbox);
  }

  std::vector<std::string> Ids(const std::string& recipient) {
    std::vector<std::string> ids;
    auto items = mailbox_->Peek(recipient, 0, 1000);
    EXPECT_THAT(items, IsOk());
    for (const MailItem& item : items.value_or(std::vector<MailItem>())) {
      ids.push_back(item.id);
    }
    return ids;
  }

  FakeClock clock_;
  TempDir dir_;
  MailboxLimits limits_;
  std::unique_ptr<Mailbox> mailbox_;
};

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

TEST_P(MailboxContractTest, DepositIsIdempotentPerRecipientAndId) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1", "first")),
              IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1", "again")),
              IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "carol", "m1")), IsOk());
  auto items = mailbox_->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(1));
  EXPECT_EQ((*items)[0].payload, "first");
  EXPECT_THAT(Ids("carol"), ElementsAre("m1"));
}

TEST_P(MailboxContractTest, AckRemovesAndTellsTheSender) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m2")), IsOk());
  auto removed =
      mailbox_->Ack("bob", {"m1", "unknown"}, {Receipt("Bob", "alice", "m1")});
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
  ASSERT_THAT(mailbox_->Ack("alice", {"m1"}, {}), IsOk());
  EXPECT_THAT(Ids("alice"), IsEmpty());
  EXPECT_THAT(Ids("bob"), ElementsAre("m2"));
}

TEST_P(MailboxContractTest, ALabSenderWithoutAMailboxGetsNoReceipt) {
  ASSERT_THAT(mailbox_->Deposit(Message("Davide De Rosa", "bob", "m1")),
              IsOk());
  ASSERT_THAT(
      mailbox_->Ack("bob", {"m1"}, {Receipt("bob", "Davide De Rosa", "m1")}),
      IsOk());
  EXPECT_THAT(Ids("bob"), IsEmpty());
}

TEST_P(MailboxContractTest, NoReceiptWithoutAPeerMadeOne) {
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "m1")), IsOk());
  ASSERT_THAT(mailbox_->Ack("bob", {"m1"}, {}), IsOk());
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
  auto removed = mailbox_->Ack(
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
  ASSERT_THAT(mailbox_->Ack("bob", {"m2"}, {Receipt("bob", "alice", "m2")}),
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
  ASSERT_THAT(mailbox_->Ack(
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
  ASSERT_THAT(mailbox_->Ack("frank", {"f1"}, {Receipt("frank", "erin", "f1")}),
              IsOk());
  EXPECT_THAT(Ids("erin"), SizeIs(5));
  EXPECT_THAT(mailbox_->Deposit(Message("x", "erin", "e5")),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_P(MailboxContractTest, TheLimitsFollowAcksCopiesReopensAndExpiry) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", absl::StrCat(i))),
                IsOk());
  }
  // A copy of a waiting message takes no room.
  ASSERT_THAT(mailbox_->Deposit(Message("alice", "bob", "0")), IsOk());
  ASSERT_THAT(mailbox_->Ack("bob", {"0", "1"}, {}), IsOk());
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
  ASSERT_THAT(mailbox_->Ack("bob", {"m1"}, {Receipt("bob", "alice", "m1")}),
              IsOk());
  Open();
  EXPECT_THAT(Ids("bob"), ElementsAre("m2"));
  EXPECT_THAT(Ids("alice"), ElementsAre("m1"));  // The receipt.
}

INSTANTIATE_TEST_SUITE_P(
    AllMailboxes, MailboxContractTest,
    ::testing::Values(MailboxFactory{"SqliteInMemory", false,
                                     [](const Clock& clock, const std::string&,
                                        const MailboxLimits& limits) {
                                       return OpenSqliteMailbox(
                                           ":memory:", clock, limits);
                                     }},
                      MailboxFactory{
                          "SqliteFile", true,
                          [](const Clock& clock, const std::string& path,
                             const MailboxLimits& limits) {
                            return OpenSqliteMailbox(path, clock, limits);
                          }}),
    [](const ::testing::TestParamInfo<MailboxFactory>& param_info) {
      return param_info.param.name;
    });

// What only the SQLite mailbox does. Storage failures are real SQLite
// errors: a trigger that a second connection adds to the file.
TEST(SqliteMailboxTest, AFailingWriteFailsAloneAndChangesNothing) {
  TempDir dir;
  FakeClock clock;
  MailboxLimits limits;
  limits.max_items = 1000;
  auto opened = OpenSqliteMailbox(dir.File("registry.db"), clock, limits);
  ASSERT_THAT(opened, IsOk());
  std::unique_ptr<Mailbox> mailbox = *std::move(opened);
  {
    SQLite::Database db(dir.File("registry.db"), SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER fail_bad BEFORE INSERT ON mail WHEN "
        "NEW.recipient_key = 'bad' BEGIN SELECT RAISE(ABORT, 'injected "
        "failure'); END");
  }
  // Deposits that share commits with the failing ones, whichever batches
  // they fall into, all succeed.
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20;
  std::vector<std::thread> threads;
  std::atomic<int> good_failures{0};
  std::atomic<int> bad_successes{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = absl::StrCat("m", t, "x", i);
        const std::string to = t % 2 == 0 ? "bad" : absl::StrCat("ok", t);
        absl::Status status = mailbox->Deposit(Message("alice", to, id));
        if (to == "bad" && status.ok()) ++bad_successes;
        if (to != "bad" && !status.ok()) ++good_failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(good_failures.load(), 0);
  EXPECT_EQ(bad_successes.load(), 0);
  EXPECT_THAT(
      mailbox->Deposit(Message("alice", "bad", "one more")),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected failure")));
  for (int t = 1; t < kThreads; t += 2) {
    auto stats = mailbox->Stat(absl::StrCat("ok", t));
    ASSERT_THAT(stats, IsOk());
    EXPECT_EQ(stats->count, size_t{kPerThread});
  }
  auto bad = mailbox->Stat("bad");
  ASSERT_THAT(bad, IsOk());
  EXPECT_EQ(bad->count, 0u);
  // The counts in memory match the file: a reopened mailbox agrees.
  mailbox.reset();
  opened = OpenSqliteMailbox(dir.File("registry.db"), clock, limits);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ((*opened)->Stat("ok1")->count, size_t{kPerThread});
}

}  // namespace
}  // namespace chat::registry
