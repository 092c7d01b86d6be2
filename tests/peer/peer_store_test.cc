#include "peer/peer_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "peer/history.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"
#include "tests/peer/peer_file_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

ChatMessage Outgoing(const std::string& id, const std::string& to,
                     const std::string& text) {
  ChatMessage message;
  message.id = id;
  message.from = "alice";
  message.to = to;
  message.text = text;
  return message;
}

ChatMessage Incoming(const std::string& id, int64_t sequence, int64_t floor,
                     const std::string& epoch = "e1",
                     const std::string& from = "bob") {
  ChatMessage message;
  message.id = id;
  message.from = from;
  message.to = "alice";
  message.text = "text " + id;
  message.sequence = sequence;
  message.sequence_floor = floor;
  message.sequence_epoch = epoch;
  return message;
}

// Calls `start` with a callback and waits for the result it is given.
template <typename T, typename Start>
absl::StatusOr<T> WaitFor(Start start) {
  absl::Notification done;
  absl::StatusOr<T> result;
  start([&](absl::StatusOr<T> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<ChatMessage> Add(PeerStore& store, ChatMessage message) {
  return WaitFor<ChatMessage>([&](Outbox::AddedCallback done) {
    store.outbox().Add(std::move(message), std::move(done));
  });
}

// The ids Receive() released, or "duplicate".
std::vector<std::string> Ids(const absl::StatusOr<Received>& received) {
  std::vector<std::string> ids;
  if (!received.ok()) return {"error"};
  if (received->duplicate) return {"duplicate"};
  for (const ChatMessage& m : received->ready) ids.push_back(m.id);
  return ids;
}

absl::StatusOr<Received> Receive(PeerStore& store, ChatMessage message) {
  return WaitFor<Received>([&](Inbox::ReceivedCallback done) {
    store.inbox().Receive(std::move(message), std::move(done));
  });
}

absl::StatusOr<Received> ReleaseOverdue(PeerStore& store,
                                        absl::Duration limit) {
  return WaitFor<Received>([&](Inbox::ReceivedCallback done) {
    store.inbox().ReleaseOverdue(limit, std::move(done));
  });
}

class PeerStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<PeerStore> Open() {
    auto store = OpenPeerStore(dir_.File("alice.db"), clock_);
    EXPECT_THAT(store.status(), IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST_F(PeerStoreTest, NumbersEachConversationFromOne) {
  auto store = Open();
  auto a = Add(*store, Outgoing("m1", "bob", "hi"));
  auto b = Add(*store, Outgoing("m2", "carol", "hi"));
  auto c = Add(*store, Outgoing("m3", "BOB", "again"));
  ASSERT_THAT(a.status(), IsOk());
  ASSERT_THAT(b.status(), IsOk());
  ASSERT_THAT(c.status(), IsOk());
  EXPECT_EQ(a->sequence, 1);
  EXPECT_EQ(b->sequence, 1);
  EXPECT_EQ(c->sequence, 2);
  EXPECT_EQ(a->sequence_epoch, c->sequence_epoch);
  EXPECT_FALSE(a->sequence_epoch.empty());
}

TEST_F(PeerStoreTest, OutboxSurvivesReopenAndKeepsNumbering) {
  std::string epoch;
  {
    auto store = Open();
    epoch = Add(*store, Outgoing("m1", "bob", "one"))->sequence_epoch;
    ASSERT_THAT(Add(*store, Outgoing("m2", "bob", "two")).status(), IsOk());
    store->outbox().MarkStored("m1", "bob");
  }
  auto store = Open();
  auto outbox = store->outbox().Entries();
  ASSERT_THAT(outbox.status(), IsOk());
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].message.id, "m1");
  EXPECT_TRUE((*outbox)[0].stored);
  EXPECT_EQ((*outbox)[0].message.text, "one");
  EXPECT_EQ((*outbox)[1].message.id, "m2");
  EXPECT_FALSE((*outbox)[1].stored);
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "bob", ""), 99), 1);
  auto next = Add(*store, Outgoing("m3", "bob", "three"));
  EXPECT_EQ(next->sequence, 3);
  EXPECT_EQ(next->sequence_epoch, epoch);
}

TEST_F(PeerStoreTest, FloorRisesAsMessagesLeaveTheOutbox) {
  auto store = Open();
  for (const char* id : {"m1", "m2", "m3"}) {
    ASSERT_THAT(Add(*store, Outgoing(id, "bob", "x")).status(), IsOk());
  }
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "bob", ""), 3), 1);
  // A delivery is per recipient: m2 to carol is none of m2 to bob.
  store->outbox().Remove("m2", "carol");
  store->outbox().MarkStored("m2", "carol");
  store->outbox().Remove("m1", "Bob");
  auto taken = store->outbox().Take("m2", "bob");  // Waits: m1's removal is in.
  ASSERT_THAT(taken.status(), IsOk());
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->message.id, "m2");
  EXPECT_FALSE((*taken)->stored);
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "bob", ""), 3), 3);
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "carol", ""), 7), 7);
  auto again = store->outbox().Take("m2", "bob");
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_FALSE(again->has_value());
}

// Storage failures are real SQLite errors: a trigger that a second
// connection adds to the file.
TEST_F(PeerStoreTest, AFailedRemovalKeepsTheMessageAndItsFloor) {
  auto store = Open();
  for (const char* id : {"m1", "m2"}) {
    ASSERT_THAT(Add(*store, Outgoing(id, "bob", "x")).status(), IsOk());
  }
  {
    SQLite::Database db(dir_.File("alice.db"), SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER fail_m1 BEFORE DELETE ON deliveries WHEN OLD.id = "
        "'m1' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  }
  store->outbox().Remove("m1", "Bob");  // Not waited for; fails alone.
  EXPECT_THAT(store->outbox().Take("m1", "bob").status(),
              StatusIs(absl::StatusCode::kUnavailable));
  auto taken = store->outbox().Take("m2", "bob");  // In a batch of its own.
  ASSERT_THAT(taken.status(), IsOk());
  EXPECT_TRUE(taken->has_value());
  // m1 is still there, and still holds the floor down.
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "bob", ""), 5), 1);
  store.reset();
  store = Open();
  auto outbox = store->outbox().Entries();
  ASSERT_THAT(outbox.status(), IsOk());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].message.id, "m1");
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "bob", ""), 5), 1);
}

TEST_F(PeerStoreTest, InOrderMessagesAreReleasedAtOnceAndOnce) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("a", 1, 1))), ElementsAre("a"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("b", 2, 2))), ElementsAre("b"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("b", 2, 2))),
              ElementsAre("duplicate"));
}

TEST_F(PeerStoreTest, AnOvertakingMessageWaitsForItsPredecessor) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("a", 1, 1))), ElementsAre("a"));
  // 2 sits in the mailbox; 3 came directly, saying 2 is still outstanding.
  EXPECT_THAT(Ids(Receive(*store, Incoming("c", 3, 2))), IsEmpty());
  EXPECT_THAT(Ids(Receive(*store, Incoming("d", 4, 2))), IsEmpty());
  EXPECT_THAT(Ids(Receive(*store, Incoming("b", 2, 2))),
              ElementsAre("b", "c", "d"));
}

TEST_F(PeerStoreTest, HeldMessagesSurviveARestart) {
  {
    auto store = Open();
    EXPECT_THAT(Ids(Receive(*store, Incoming("c", 3, 2))), IsEmpty());
  }
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("b", 2, 2))), ElementsAre("b", "c"));
}

TEST_F(PeerStoreTest, AFreshReceiverStartsAtTheSendersFloor) {
  auto store = Open();
  // Everything below 41 reached us before (or went to a lost inbox).
  EXPECT_THAT(Ids(Receive(*store, Incoming("x", 41, 41))), ElementsAre("x"));
}

TEST_F(PeerStoreTest, ARisingFloorReleasesWhatItCovers) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("a", 1, 1))), ElementsAre("a"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("c", 3, 2))), IsEmpty());
  // 2 was given up by the sender; 4 says nothing below 4 is outstanding.
  EXPECT_THAT(Ids(Receive(*store, Incoming("d", 4, 4))), ElementsAre("c", "d"));
}

TEST_F(PeerStoreTest, ANewEpochLetsGoOfTheOldOne) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("c", 3, 2, "old"))), IsEmpty());
  EXPECT_THAT(Ids(Receive(*store, Incoming("n", 1, 1, "new"))),
              ElementsAre("c", "n"));
}

TEST_F(PeerStoreTest, ConversationsAreOrderedSeparately) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("b2", 2, 1, "e", "bob"))),
              IsEmpty());
  EXPECT_THAT(Ids(Receive(*store, Incoming("c1", 1, 1, "e", "carol"))),
              ElementsAre("c1"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("b1", 1, 1, "e", "Bob"))),
              ElementsAre("b1", "b2"));
}

TEST_F(PeerStoreTest, OverdueGapsAreSkipped) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("a", 1, 1))), ElementsAre("a"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("c", 3, 2))), IsEmpty());
  EXPECT_THAT(Ids(Receive(*store, Incoming("e", 5, 2))), IsEmpty());
  EXPECT_THAT(Ids(ReleaseOverdue(*store, absl::Seconds(10))), IsEmpty());
  clock_.Advance(Millis(11000));
  EXPECT_THAT(Ids(Receive(*store, Incoming("d", 4, 2))), IsEmpty());
  // c and e are overdue; d came late but is in order after c.
  EXPECT_THAT(Ids(ReleaseOverdue(*store, absl::Seconds(10))),
              ElementsAre("c", "d", "e"));
  // The lost one turns up after all: shown, late, not dropped.
  EXPECT_THAT(Ids(Receive(*store, Incoming("b", 2, 2))), ElementsAre("b"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("f", 6, 6))), ElementsAre("f"));
}

TEST_F(PeerStoreTest, UnsequencedMessagesAreReleasedAtOnce) {
  auto store = Open();
  ChatMessage lab;
  lab.id = "given-on-arrival";
  lab.from = "Davide De Rosa";
  lab.text = "hello";
  EXPECT_THAT(Ids(Receive(*store, lab)), ElementsAre("given-on-arrival"));
}

TEST_F(PeerStoreTest, ReleasedButUnshownMessagesComeBackAfterACrash) {
  {
    auto store = Open();
    absl::StatusOr<Received> a = Receive(*store, Incoming("a", 1, 1));
    EXPECT_THAT(Ids(a), ElementsAre("a"));
    EXPECT_THAT(Ids(Receive(*store, Incoming("b", 2, 2))), ElementsAre("b"));
    store->inbox().MarkShown(a->ready, {});
  }
  auto store = Open();
  auto unshown = store->inbox().Unshown();
  ASSERT_THAT(unshown.status(), IsOk());
  ASSERT_EQ(unshown->size(), 1u);
  EXPECT_EQ((*unshown)[0].id, "b");
  EXPECT_EQ((*unshown)[0].text, "text b");
  // Shown ids still catch copies.
  EXPECT_THAT(Ids(Receive(*store, Incoming("a", 1, 1))),
              ElementsAre("duplicate"));
}

// Another sender's message (sealed by its own key) carrying the id of one
// on its way does not swallow it: ids are per sender.
TEST_F(PeerStoreTest, AnotherSendersIdIsNoCopy) {
  auto store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("x", 0, 0, "", "mallory"))),
              ElementsAre("x"));
  absl::StatusOr<Received> real = Receive(*store, Incoming("x", 1, 1));
  ASSERT_THAT(Ids(real), ElementsAre("x"));
  EXPECT_EQ(real->ready[0].from, "bob");
  EXPECT_EQ(real->ready[0].text, "text x");
  store->inbox().MarkShown(real->ready, {});
  // The same sender's copy still is one, shown or not, after a reopen too.
  EXPECT_THAT(Ids(Receive(*store, Incoming("x", 1, 1))),
              ElementsAre("duplicate"));
  store.reset();
  store = Open();
  EXPECT_THAT(Ids(Receive(*store, Incoming("x", 1, 1))),
              ElementsAre("duplicate"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("x", 0, 0, "", "Mallory"))),
              ElementsAre("duplicate"));
  // mallory's was never shown; bob's was.
  auto unshown = store->inbox().Unshown();
  ASSERT_THAT(unshown.status(), IsOk());
  ASSERT_EQ(unshown->size(), 1u);
  EXPECT_EQ((*unshown)[0].from, "mallory");
}

TEST_F(PeerStoreTest, RemembersTheLease) {
  {
    auto store = Open();
    EXPECT_EQ(store->lease().SavedLeaseId(), "");
    ASSERT_THAT(store->lease().SaveLeaseId("feedface"), IsOk());
  }
  EXPECT_EQ(Open()->lease().SavedLeaseId(), "feedface");
}

TEST_F(PeerStoreTest, ASecondProcessCannotOpenTheSameFile) {
  auto first = Open();
  EXPECT_THAT(OpenPeerStore(dir_.File("alice.db"), clock_).status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(PeerStoreTest, PathIsPerNameAndTheDirectoryIsMade) {
  auto path = PeerStorePath(dir_.File("deep/er"), "Alice");
  ASSERT_THAT(path.status(), IsOk());
  EXPECT_EQ(*path, dir_.File("deep/er") + "/alice.db");
  EXPECT_THAT(OpenPeerStore(*path, clock_).status(), IsOk());
  EXPECT_THAT(PeerStorePath("", "alice").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::peer

namespace chat::peer {
namespace {

// An authenticated message from `from`, sent at `ms`.
ChatMessage Sealed(const std::string& id, int64_t ms,
                   const std::string& from = "bob") {
  ChatMessage message;
  message.id = id;
  message.from = from;
  message.to = "alice";
  message.text = "text " + id;
  message.sent_at = absl::FromUnixMillis(ms);
  return message;
}

// Shows what arrives, as the peer does (MarkShown), so the trim can run.
bool ReceiveAndShow(PeerStore& store, const ChatMessage& message) {
  absl::StatusOr<Received> received = Receive(store, message);
  EXPECT_THAT(received, chat::testing::IsOk());
  if (!received.ok() || received->duplicate) return false;
  store.inbox().MarkShown(received->ready, {});
  return !received->ready.empty();
}

TEST(PeerStoreReplayTest, AReplayIsNeverShownTwiceEvenAfterItsIdIsForgotten) {
  TempDir dir;
  FakeClock clock;
  PeerStoreLimits limits;
  limits.shown_ids_kept = 5;
  limits.trim_every = 1;
  limits.watermark_senders_kept = 2;
  {
    auto store = OpenPeerStore(dir.File("alice.db"), clock, true, limits);
    ASSERT_THAT(store, chat::testing::IsOk());
    ASSERT_TRUE(ReceiveAndShow(**store, Sealed("first", 1000)));
    EXPECT_FALSE(ReceiveAndShow(**store, Sealed("first", 1000)));  // A copy.
    // Far more than are kept come after it: its id is forgotten.
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(
          ReceiveAndShow(**store, Sealed(absl::StrCat("m", i), 2000 + i)));
    }
    EXPECT_FALSE(ReceiveAndShow(**store, Sealed("first", 1000)));
    // A new message of bob's is still shown; so are unverified ones.
    EXPECT_TRUE(ReceiveAndShow(**store, Sealed("new", 5000)));
    ChatMessage lab = Sealed("lab", 1000, "Davide");
    lab.unverified = true;
    EXPECT_TRUE(ReceiveAndShow(**store, lab));
  }
  // Across a restart, and with more senders than watermarks are kept: the
  // oldest fold into one for everyone.
  auto store = OpenPeerStore(dir.File("alice.db"), clock, true, limits);
  ASSERT_THAT(store, chat::testing::IsOk());
  for (const char* sender : {"carol", "dave", "erin"}) {
    for (int i = 0; i < 8; ++i) {
      ASSERT_TRUE(ReceiveAndShow(
          **store, Sealed(absl::StrCat(sender, i), 10000 + i, sender)));
    }
  }
  EXPECT_FALSE(ReceiveAndShow(**store, Sealed("first", 1000)));
  EXPECT_FALSE(ReceiveAndShow(**store, Sealed("m3", 2003)));
  EXPECT_FALSE(ReceiveAndShow(**store, Sealed("carol0", 10000, "carol")));
}

TEST(PeerStorePinTest, PinsAreKeptAndRemoved) {
  TempDir dir;
  FakeClock clock;
  Identity bob = Identity::Generate();
  {
    auto store = OpenPeerStore(dir.File("alice.db"), clock);
    ASSERT_THAT(store, chat::testing::IsOk());
    ASSERT_THAT((*store)->pins().SavePin("Bob", bob.public_key()),
                chat::testing::IsOk());
    ASSERT_THAT((*store)->pins().SavePin("carol", bob.public_key()),
                chat::testing::IsOk());
    ASSERT_THAT((*store)->pins().SavePin("carol", std::nullopt),
                chat::testing::IsOk());
  }
  auto store = OpenPeerStore(dir.File("alice.db"), clock);
  ASSERT_THAT(store, chat::testing::IsOk());
  auto pins = (*store)->pins().Pins();
  ASSERT_THAT(pins, chat::testing::IsOk());
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].name, "Bob");
  EXPECT_EQ((*pins)[0].key, bob.public_key());
}

// ---- History.

// The value, or -1 for an error.
int64_t Erased(const absl::StatusOr<int64_t>& erased) {
  return erased.ok() ? *erased : -1;
}

// Commits whatever lazy writes are queued (they ride along with a waited
// one), so a read sees them.
void Flush(PeerStore& store) {
  ASSERT_THAT(store.lease().SaveLeaseId("x"), IsOk());
}

// "ours:text:status" or "theirs:text" for each history entry.
std::vector<std::string> Lines(const absl::StatusOr<HistoryPage>& page) {
  if (!page.ok()) return {"error"};
  std::vector<std::string> lines;
  for (const HistoryEntry& entry : page->entries) {
    if (entry.ours) {
      lines.push_back(absl::StrCat("ours:", entry.message.text, ":",
                                   static_cast<int>(entry.status)));
    } else {
      lines.push_back(absl::StrCat(
          "theirs:", entry.message.text, entry.message.late ? ":late" : "",
          entry.message.unverified ? ":unverified" : ""));
    }
  }
  return lines;
}

std::string Ours(const std::string& text, SendStatus status) {
  return absl::StrCat("ours:", text, ":", static_cast<int>(status));
}

// "id:state" of each row of theirs, in release order, and meta's mark.
std::vector<std::string> ShownStates(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  std::vector<std::string> rows;
  SQLite::Statement select(
      db, "SELECT id, state FROM messages WHERE ours = 0 ORDER BY released");
  while (select.executeStep()) {
    rows.push_back(absl::StrCat(select.getColumn(0).getString(), ":",
                                select.getColumn(1).getInt()));
  }
  rows.push_back(
      absl::StrCat("meta:", db.execAndGet("SELECT value FROM meta WHERE key = "
                                          "'shown_through'")
                                .getString()));
  return rows;
}

// The shown mark rides on the row of the message it reaches (state 3), so
// messages shown in order write no page of their own for it. One shown out
// of order is marked by itself (state 2) until the mark passes it.
TEST_F(PeerStoreTest, TheShownMarkRidesOnTheRowOfTheMessageItReaches) {
  const std::string path = dir_.File("alice.db");
  {
    auto store = Open();
    std::vector<absl::StatusOr<Received>> received;
    for (int i = 1; i <= 4; ++i) {
      received.push_back(Receive(*store, Incoming(absl::StrCat("m", i), i, i)));
      ASSERT_THAT(received.back(), IsOk());
    }
    store->inbox().MarkShown(received[0]->ready, {});
    store->inbox().MarkShown(received[2]->ready, {});
    Flush(*store);
    EXPECT_THAT(ShownStates(path),
                ElementsAre("m1:3", "m2:1", "m3:2", "m4:1", "meta:0"));
    // m2 fills the gap: the mark reaches m3, and m2's row carries it.
    store->inbox().MarkShown(received[1]->ready, {});
    Flush(*store);
    EXPECT_THAT(ShownStates(path),
                ElementsAre("m1:3", "m2:3", "m3:2", "m4:1", "meta:0"));
  }
  auto store = Open();
  auto unshown = store->inbox().Unshown();
  ASSERT_THAT(unshown.status(), IsOk());
  ASSERT_EQ(unshown->size(), 1u);
  EXPECT_EQ((*unshown)[0].id, "m4");
  EXPECT_THAT(
      Lines(store->history().Page("bob", 20)),
      ElementsAre("theirs:text m1", "theirs:text m2", "theirs:text m3"));
  // Shown after the restart, from where the file left it.
  store->inbox().MarkShown(*unshown, {});
  Flush(*store);
  EXPECT_THAT(ShownStates(path),
              ElementsAre("m1:3", "m2:3", "m3:2", "m4:3", "meta:0"));
}

// The inbox's trim folds the mark into meta, so the rows that carried it
// may be forgotten; the mark stays where it was across a restart.
TEST(PeerStoreShownMarkTest, TheTrimKeepsTheMarkWhenItForgetsItsRows) {
  TempDir dir;
  FakeClock clock;
  PeerStoreLimits limits;
  limits.shown_ids_kept = 2;
  limits.trim_every = 1;
  limits.history_kept = absl::ZeroDuration();  // Only the inbox keeps rows.
  const std::string path = dir.File("alice.db");
  {
    auto store = OpenPeerStore(path, clock, true, limits);
    ASSERT_THAT(store, IsOk());
    for (int i = 1; i <= 6; ++i) {
      ASSERT_TRUE(
          ReceiveAndShow(**store, Incoming(absl::StrCat("m", i), i, i)));
    }
    absl::StatusOr<Received> last = Receive(**store, Incoming("m7", 7, 7));
    ASSERT_THAT(last, IsOk());
    Flush(**store);
  }
  const std::vector<std::string> states = ShownStates(path);
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), "meta:6");  // Folded by the last trim.
  EXPECT_LT(states.size(), 8u);        // Some rows forgotten.
  auto store = OpenPeerStore(path, clock, true, limits);
  ASSERT_THAT(store, IsOk());
  auto unshown = (*store)->inbox().Unshown();
  ASSERT_THAT(unshown.status(), IsOk());
  ASSERT_EQ(unshown->size(), 1u);
  EXPECT_EQ((*unshown)[0].id, "m7");
  EXPECT_THAT(Ids(Receive(**store, Incoming("m6", 6, 6))),
              ElementsAre("duplicate"));
}

TEST_F(PeerStoreTest, HistoryKeepsBothWaysInOrderAcrossReopen) {
  {
    auto store = Open();
    ASSERT_THAT(Add(*store, Outgoing("m1", "bob", "hi bob")).status(), IsOk());
    ChatMessage late = Incoming("b1", 1, 1);
    late.late = true;
    ASSERT_TRUE(ReceiveAndShow(*store, late));
    ASSERT_THAT(Add(*store, Outgoing("m2", "carol", "hi carol")).status(),
                IsOk());
    ChatMessage plain = Incoming("b2", 0, 0);
    plain.unverified = true;
    ASSERT_TRUE(ReceiveAndShow(*store, plain));
    // Received but held back (b4 before b3): not shown, not history yet.
    EXPECT_THAT(Ids(Receive(*store, Incoming("b4", 3, 1))), IsEmpty());
  }
  auto store = Open();  // Closing finished every lazy write.
  absl::StatusOr<HistoryPage> bob = store->history().Page("BOB", 20);
  EXPECT_THAT(Lines(bob),
              ElementsAre(Ours("hi bob", SendStatus::kSent),
                          "theirs:text b1:late", "theirs:text b2:unverified"));
  ASSERT_THAT(bob.status(), IsOk());
  EXPECT_EQ(bob->total, 3);
  EXPECT_EQ(bob->entries[0].message.to, "bob");
  EXPECT_EQ(bob->entries[1].message.from, "bob");
  EXPECT_NE(bob->entries[1].message.received_at, absl::InfinitePast());
  EXPECT_THAT(Lines(store->history().Page("carol", 20)),
              ElementsAre(Ours("hi carol", SendStatus::kSent)));
  // The last N, oldest first.
  EXPECT_THAT(Lines(store->history().Page("bob", 2)),
              ElementsAre("theirs:text b1:late", "theirs:text b2:unverified"));
  EXPECT_THAT(Lines(store->history().Page("dave", 20)), IsEmpty());
}

TEST_F(PeerStoreTest, HistoryFollowsEveryStateAndNeverGoesBack) {
  auto store = Open();
  for (const char* id : {"m1", "m2", "m3", "m4"}) {
    ASSERT_THAT(Add(*store, Outgoing(id, "bob", id)).status(), IsOk());
  }
  store->history().RecordSendState("m1", "bob", SendStatus::kStored);
  store->history().RecordSendState("m1", "bob", SendStatus::kDelivered);
  store->history().RecordSendState("m1", "bob", SendStatus::kRead);
  store->history().RecordSendState("m1", "bob",
                                   SendStatus::kDelivered);  // Late: ignored.
  store->history().RecordSendState("m2", "bob", SendStatus::kStored);
  store->history().RecordSendState("m2", "bob", SendStatus::kExpired);
  store->history().RecordSendState("m3", "bob",
                                   SendStatus::kSent);  // A retry: no change.
  store->history().RecordSendState("m4", "bob", SendStatus::kFailed);
  store->history().RecordSendState("nobody", "bob", SendStatus::kDelivered);
  Flush(*store);
  EXPECT_THAT(Lines(store->history().Page("bob", 20)),
              ElementsAre(Ours("m1", SendStatus::kRead),
                          Ours("m2", SendStatus::kExpired),
                          Ours("m3", SendStatus::kSent),
                          Ours("m4", SendStatus::kFailed)));
}

TEST_F(PeerStoreTest, HistoryOlderThanItsDaysIsTrimmed) {
  PeerStoreLimits limits;
  limits.history_kept = absl::Hours(24 * 2);
  auto store = OpenPeerStore(dir_.File("alice.db"), clock_, true, limits);
  ASSERT_THAT(store.status(), IsOk());
  ASSERT_THAT(Add(**store, Outgoing("m1", "bob", "old")).status(), IsOk());
  clock_.Advance(std::chrono::hours(24));
  ASSERT_TRUE(ReceiveAndShow(**store, Incoming("b1", 1, 1)));
  clock_.Advance(std::chrono::hours(24) + std::chrono::minutes(1));
  ASSERT_THAT(Add(**store, Outgoing("m2", "bob", "new")).status(), IsOk());
  (*store)->history().Trim();
  Flush(**store);
  EXPECT_THAT(Lines((*store)->history().Page("bob", 20)),
              ElementsAre("theirs:text b1", Ours("new", SendStatus::kSent)));
  clock_.Advance(std::chrono::hours(24 * 3));
  (*store)->history().Trim();
  Flush(**store);
  EXPECT_THAT(Lines((*store)->history().Page("bob", 20)), IsEmpty());
  // Delivery state is not history: the outbox keeps both.
  auto outbox = (*store)->outbox().Entries();
  ASSERT_THAT(outbox.status(), IsOk());
  EXPECT_EQ(outbox->size(), 2u);
}

TEST_F(PeerStoreTest, HistoryKeepsAtMostItsRowCapInAll) {
  PeerStoreLimits limits;
  limits.history_rows_kept = 3;
  limits.history_trim_every = 2;
  auto store = OpenPeerStore(dir_.File("alice.db"), clock_, true, limits);
  ASSERT_THAT(store.status(), IsOk());
  for (int i = 1; i <= 6; ++i) {
    ASSERT_THAT(
        Add(**store, Outgoing(absl::StrCat("m", i),
                              i % 2 == 0 ? "bob" : "carol", absl::StrCat(i)))
            .status(),
        IsOk());
  }
  Flush(**store);
  absl::StatusOr<HistoryPage> bob = (*store)->history().Page("bob", 20);
  absl::StatusOr<HistoryPage> carol = (*store)->history().Page("carol", 20);
  EXPECT_THAT(Lines(bob), ElementsAre(Ours("4", SendStatus::kSent),
                                      Ours("6", SendStatus::kSent)));
  EXPECT_THAT(Lines(carol), ElementsAre(Ours("5", SendStatus::kSent)));
  // Start-up's trim keeps the cap too.
  (*store)->history().Trim();
  Flush(**store);
  EXPECT_EQ((*store)->history().Page("bob", 20)->total, 2);
}

TEST_F(PeerStoreTest, TheRowCapCountsWhatForgetAndReopenLeft) {
  PeerStoreLimits limits;
  limits.history_rows_kept = 4;
  limits.history_trim_every = 1;
  auto open = [&] {
    auto store = OpenPeerStore(dir_.File("alice.db"), clock_, true, limits);
    EXPECT_THAT(store.status(), IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  };
  auto add = [](PeerStore& store, int i, const char* to) {
    ASSERT_THAT(Add(store, Outgoing(absl::StrCat("m", i), to, absl::StrCat(i)))
                    .status(),
                IsOk());
  };
  {
    auto store = open();
    for (int i = 1; i <= 3; ++i) add(*store, i, "bob");
    add(*store, 4, "carol");
    Flush(*store);
    // Three rows go with bob: room for three more before the cap bites.
    EXPECT_EQ(Erased(store->history().Forget("bob")), 3);
    for (int i = 5; i <= 7; ++i) add(*store, i, "carol");
    Flush(*store);
    EXPECT_EQ(store->history().Page("carol", 20)->total, 4);
  }
  // Reopened, the count starts again from the file.
  auto store = open();
  add(*store, 8, "carol");
  add(*store, 9, "dave");
  Flush(*store);
  EXPECT_THAT(
      Lines(store->history().Page("carol", 20)),
      ElementsAre(Ours("6", SendStatus::kSent), Ours("7", SendStatus::kSent),
                  Ours("8", SendStatus::kSent)));
  EXPECT_EQ(store->history().Page("dave", 20)->total, 1);
}

// kShown notes ride on the shown mark; any later note of the message, or
// forgetting it, replaces them, across a reopen.
TEST_F(PeerStoreTest, ReadNotesKeptWithTheShownMarkAreReplacedOnce) {
  auto note = [](const std::string& id, ReadNote::State state, int64_t at_ms) {
    ReadNote n;
    n.peer = "Bob";
    n.id = id;
    n.state = state;
    n.at_unix_ms = at_ms;
    return n;
  };
  auto notes_of = [](PeerStore& store) {
    std::vector<std::string> lines;
    absl::StatusOr<std::vector<ReadNote>> notes =
        store.read_notes().ReadNotes();
    EXPECT_THAT(notes.status(), IsOk());
    if (!notes.ok()) return lines;
    for (const ReadNote& n : *notes) {
      lines.push_back(absl::StrCat(registry::NameKey(n.peer), ":", n.id, ":",
                                   static_cast<int>(n.state)));
    }
    return lines;
  };
  {
    auto store = Open();
    store->read_notes().SaveReadNotes(
        {note("ours", ReadNote::State::kAwaiting, 1)});
    for (const char* id : {"b1", "b2", "b3"}) {
      ChatMessage message = Incoming(id, 0, 0);
      message.received_at = absl::FromUnixMillis(10);
      absl::StatusOr<Received> received = Receive(*store, message);
      ASSERT_THAT(received.status(), IsOk());
      // b3 is noted nowhere (an unverified message gets no receipt).
      std::vector<ReadNote> unread;
      if (std::string(id) != "b3") {
        unread.push_back(note(id, ReadNote::State::kShown, 10));
      }
      store->inbox().MarkShown(received->ready, unread);
    }
    Flush(*store);
    EXPECT_THAT(notes_of(*store),
                ElementsAre("bob:ours:0", "bob:b1:1", "bob:b2:1"));
    // b1 read: owed, kept once; b2 forgotten.
    store->read_notes().SaveReadNotes({note("b1", ReadNote::State::kOwed, 20)});
    store->read_notes().ForgetReadNotes(
        {note("b2", ReadNote::State::kShown, 10)});
  }
  auto store = Open();
  EXPECT_THAT(notes_of(*store), ElementsAre("bob:ours:0", "bob:b1:2"));
  store->read_notes().ForgetReadNotes({note("b1", ReadNote::State::kOwed, 20)});
  Flush(*store);
  EXPECT_THAT(notes_of(*store), ElementsAre("bob:ours:0"));
}

TEST_F(PeerStoreTest, ZeroDaysKeepsNoHistory) {
  PeerStoreLimits limits;
  limits.history_kept = absl::ZeroDuration();
  auto store = OpenPeerStore(dir_.File("alice.db"), clock_, true, limits);
  ASSERT_THAT(store.status(), IsOk());
  ASSERT_THAT(Add(**store, Outgoing("m1", "bob", "hi")).status(), IsOk());
  ASSERT_TRUE(ReceiveAndShow(**store, Incoming("b1", 1, 1)));
  (*store)->history().RecordSendState("m1", "bob", SendStatus::kDelivered);
  Flush(**store);
  EXPECT_THAT(Lines((*store)->history().Page("bob", 20)), IsEmpty());
}

TEST_F(PeerStoreTest, ForgetErasesOneConversationAndKeepsDeliveryState) {
  auto store = Open();
  ASSERT_THAT(Add(*store, Outgoing("m1", "bob", "hi bob")).status(), IsOk());
  ASSERT_THAT(Add(*store, Outgoing("m2", "carol", "hi carol")).status(),
              IsOk());
  ASSERT_TRUE(ReceiveAndShow(*store, Incoming("b1", 1, 1)));
  Flush(*store);
  EXPECT_EQ(Erased(store->history().Forget("Bob")), 2);
  EXPECT_THAT(Lines(store->history().Page("bob", 20)), IsEmpty());
  EXPECT_THAT(Lines(store->history().Page("carol", 20)),
              ElementsAre(Ours("hi carol", SendStatus::kSent)));
  EXPECT_EQ(Erased(store->history().Forget("bob")), 0);
  // The outbox, the numbering and the inbox's memory stay.
  auto outbox = store->outbox().Entries();
  ASSERT_THAT(outbox.status(), IsOk());
  EXPECT_EQ(outbox->size(), 2u);
  EXPECT_EQ(Add(*store, Outgoing("m3", "bob", "again"))->sequence, 2);
  EXPECT_THAT(Ids(Receive(*store, Incoming("b1", 1, 1))),
              ElementsAre("duplicate"));
  EXPECT_THAT(Ids(Receive(*store, Incoming("b2", 2, 1))), ElementsAre("b2"));
  // A receipt for a forgotten message changes nothing.
  store->history().RecordSendState("m1", "bob", SendStatus::kDelivered);
  Flush(*store);
  EXPECT_THAT(Lines(store->history().Page("bob", 20)),
              ElementsAre(Ours("again", SendStatus::kSent)));
}

// A file of the build before conversations by id (schema 7), made by that
// build (tests/peer/testdata/peer_v7.sql, the generator's story: alice
// wrote "hi bob" (delivered and read), "still out" (in bob's mailbox) and
// "hi carol" (not delivered); bob's b1 and b2 were shown (b2 read, its
// receipt owed), his b4 is held for b3; carol's c1 was released but the
// process died before it was shown; a lab peer's x1 was shown). Opening it
// migrates, and everything it promised holds.
TEST_F(PeerStoreTest, AFileFromBeforeConversationsByIdKeepsItsPromises) {
  const std::string path = dir_.File("alice.db");
  MakePeerFileFromFixture(path, "peer_v7.sql");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(PeerFileVersion(path), kPeerSchemaVersion);
  // The outbox, its floors and numbering, per conversation.
  auto outbox = store->outbox().Entries();
  ASSERT_THAT(outbox.status(), IsOk());
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].message.id, "m2");
  EXPECT_TRUE((*outbox)[0].stored);
  EXPECT_EQ((*outbox)[1].message.id, "m3");
  EXPECT_FALSE((*outbox)[1].stored);
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "bob", ""), 9), 2);
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "Carol", ""), 9), 1);
  // The history, both ways, with the states reached.
  absl::StatusOr<HistoryPage> bob = store->history().Page("bob", 20);
  EXPECT_THAT(Lines(bob), ElementsAre(Ours("hi bob", SendStatus::kRead),
                                      Ours("still out", SendStatus::kStored),
                                      "theirs:text b1", "theirs:text b2"));
  ASSERT_THAT(bob.status(), IsOk());
  EXPECT_EQ(bob->total, 4);
  EXPECT_EQ(bob->entries[2].message.from, "Bob");
  EXPECT_THAT(Lines(store->history().Page("carol", 20)),
              ElementsAre(Ours("hi carol", SendStatus::kSent)));
  EXPECT_THAT(Lines(store->history().Page("davide", 20)),
              ElementsAre("theirs:text x1:unverified"));
  // The read notes both ways.
  auto notes = store->read_notes().ReadNotes();
  ASSERT_THAT(notes.status(), IsOk());
  std::vector<std::string> note_lines;
  for (const ReadNote& n : *notes) {
    note_lines.push_back(absl::StrCat(registry::NameKey(n.peer), ":", n.id, ":",
                                      static_cast<int>(n.state)));
  }
  EXPECT_THAT(note_lines,
              UnorderedElementsAre("bob:m1:0", "bob:b1:1", "bob:b2:2"));
  // What was released and not shown comes back, once.
  auto unshown = store->inbox().Unshown();
  ASSERT_THAT(unshown.status(), IsOk());
  ASSERT_EQ(unshown->size(), 1u);
  EXPECT_EQ((*unshown)[0].id, "c1");
  EXPECT_EQ((*unshown)[0].from, "carol");
  EXPECT_EQ((*unshown)[0].text, "text c1");
  store->inbox().MarkShown(*unshown, {});
  // Copies are still copies; what was held is released in order.
  EXPECT_THAT(Ids(Receive(*store, Incoming("b1", 1, 1))),
              ElementsAre("duplicate"));
  ChatMessage x1 = Incoming("x1", 0, 0, "", "Davide");
  x1.unverified = true;
  EXPECT_THAT(Ids(Receive(*store, x1)), ElementsAre("duplicate"));
  absl::StatusOr<Received> b3 = Receive(*store, Incoming("b3", 3, 1));
  EXPECT_THAT(Ids(b3), ElementsAre("b3", "b4"));
  ASSERT_THAT(b3.status(), IsOk());
  store->inbox().MarkShown(b3->ready, {});
  EXPECT_EQ(Add(*store, Outgoing("m4", "bob", "next"))->sequence, 3);
  // The rest stays.
  EXPECT_EQ(store->lease().SavedLeaseId(), "lease-1");
  auto contacts = store->contacts().Contacts();
  ASSERT_THAT(contacts.status(), IsOk());
  ASSERT_FALSE(contacts->empty());
  EXPECT_EQ((*contacts)[0].name, "Bob");
  Flush(*store);
  store.reset();
  store = Open();
  unshown = store->inbox().Unshown();
  ASSERT_THAT(unshown.status(), IsOk());
  EXPECT_THAT(*unshown, IsEmpty());
  EXPECT_THAT(
      Lines(store->history().Page("carol", 20)),
      ElementsAre(Ours("hi carol", SendStatus::kSent), "theirs:text c1"));
  EXPECT_EQ(store->history().Page("bob", 20)->total, 7);
}

// Counts what it is told.
class CountingSink final : public EventSink {
 public:
  void OnEvent(const PeerEvent&) override { ++events; }
  std::atomic<int> events{0};
};

TEST_F(PeerStoreTest, TheRecorderKeepsEveryStateItIsTold) {
  auto store = Open();
  ASSERT_THAT(Add(*store, Outgoing("m1", "bob", "hi")).status(), IsOk());
  ASSERT_THAT(Add(*store, Outgoing("m2", "bob", "lost")).status(), IsOk());
  CountingSink screen;
  HistoryRecorder recorder(&store->history(), &screen);
  PeerEvent event = MakeEvent(EventKind::kSendResult, "bob");
  event.message.id = "m1";
  for (SendStatus status :
       {SendStatus::kDelivered, SendStatus::kRead, SendStatus::kDelivered}) {
    event.status = status;
    recorder.OnSendState(event);
  }
  event.message.id = "m2";
  event.status = SendStatus::kExpired;
  recorder.OnSendState(event);
  // Every state is shown too, once it is written.
  EXPECT_EQ(screen.events.load(), 4);
  Flush(*store);
  // A state never goes back: the late kDelivered leaves kRead.
  EXPECT_THAT(Lines(store->history().Page("bob", 20)),
              ElementsAre(Ours("hi", SendStatus::kRead),
                          Ours("lost", SendStatus::kExpired)));
}

// ---- Group messages: one message, a copy per member.

constexpr char kGroupId[] = "0123456789abcdef0123456789abcdef";

ChatMessage ToGroup(const std::string& id, const std::string& text) {
  ChatMessage message;
  message.id = id;
  message.from = "alice";
  message.text = text;
  message.group_id = kGroupId;
  message.group_version = 1;
  message.group_state_hash = std::string(32, 'h');
  return message;
}

absl::StatusOr<std::vector<ChatMessage>> AddToGroup(
    PeerStore& store, ChatMessage message,
    std::vector<std::string> recipients) {
  return WaitFor<std::vector<ChatMessage>>(
      [&](Outbox::AddedCopiesCallback done) {
        store.outbox().AddToGroup(std::move(message), std::move(recipients),
                                  std::move(done));
      });
}

// "id>to:sequence" of each outbox entry, in Entries() order.
std::vector<std::string> OutboxLines(PeerStore& store) {
  absl::StatusOr<std::vector<OutboxEntry>> entries = store.outbox().Entries();
  if (!entries.ok()) return {"error"};
  std::vector<std::string> lines;
  for (const OutboxEntry& entry : *entries) {
    lines.push_back(absl::StrCat(entry.message.id, ">", entry.message.to, ":",
                                 entry.message.sequence));
  }
  return lines;
}

// "text:status copies/delivered" of each entry of ours.
std::vector<std::string> CopyLines(const absl::StatusOr<HistoryPage>& page) {
  if (!page.ok()) return {"error"};
  std::vector<std::string> lines;
  for (const HistoryEntry& entry : page->entries) {
    lines.push_back(absl::StrCat(entry.message.text, ":",
                                 static_cast<int>(entry.status), " ",
                                 entry.delivered_copies, "/", entry.copies));
  }
  return lines;
}

const std::string kGroup = GroupConversation(kGroupId);

TEST_F(PeerStoreTest, AGroupMessageIsOneNumberWithACopyPerMember) {
  auto store = Open();
  auto copies = AddToGroup(*store, ToGroup("g1", "hello"), {"bob", "Carol"});
  ASSERT_THAT(copies.status(), IsOk());
  ASSERT_EQ(copies->size(), 2u);
  EXPECT_EQ((*copies)[0].to, "bob");
  EXPECT_EQ((*copies)[1].to, "Carol");
  for (const ChatMessage& copy : *copies) {
    EXPECT_EQ(copy.id, "g1");
    EXPECT_EQ(copy.group_id, kGroupId);
    EXPECT_EQ(copy.group_version, 1);
    EXPECT_EQ(copy.sequence, 1);
    EXPECT_EQ(copy.sequence_floor, 1);
    EXPECT_EQ(copy.sequence_epoch, (*copies)[0].sequence_epoch);
  }
  // The group's numbering is its own: not bob's, and on from there.
  auto direct = Add(*store, Outgoing("m1", "bob", "hi"));
  ASSERT_THAT(direct.status(), IsOk());
  EXPECT_EQ(direct->sequence, 1);
  EXPECT_NE(direct->sequence_epoch, (*copies)[0].sequence_epoch);
  copies = AddToGroup(*store, ToGroup("g2", "again"), {"carol", "bob", "dave"});
  ASSERT_THAT(copies.status(), IsOk());
  ASSERT_EQ(copies->size(), 3u);
  EXPECT_EQ((*copies)[2].sequence, 2);
  // Each copy's floor is its member's: carol and bob still have g1 out.
  EXPECT_EQ((*copies)[0].sequence_floor, 1);
  EXPECT_EQ((*copies)[1].sequence_floor, 1);
  EXPECT_EQ((*copies)[2].sequence_floor, 2);
}

TEST_F(PeerStoreTest, AGroupMessageThatCannotBeWrittenIsRefused) {
  auto store = Open();
  ChatMessage direct = ToGroup("g1", "hello");
  direct.group_id.clear();
  EXPECT_THAT(AddToGroup(*store, direct, {"bob"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddToGroup(*store, ToGroup("g1", "hello"), {}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      AddToGroup(*store, ToGroup("g1", "hello"), {"bob", "carol", "BOB"})
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // Nothing of them was written.
  EXPECT_THAT(OutboxLines(*store), IsEmpty());
  EXPECT_THAT(Lines(store->history().Page(kGroup, 20)), IsEmpty());
  ASSERT_THAT(AddToGroup(*store, ToGroup("g1", "hello"), {"bob"}).status(),
              IsOk());
}

TEST_F(PeerStoreTest, AGroupMessagesCopiesSurviveAReopenTogetherByMember) {
  {
    auto store = Open();
    ASSERT_THAT(Add(*store, Outgoing("m1", "carol", "hi")).status(), IsOk());
    ASSERT_THAT(
        AddToGroup(*store, ToGroup("g1", "one"), {"carol", "bob"}).status(),
        IsOk());
    ASSERT_THAT(Add(*store, Outgoing("m2", "bob", "hi")).status(), IsOk());
    ASSERT_THAT(
        AddToGroup(*store, ToGroup("g2", "two"), {"bob", "carol"}).status(),
        IsOk());
    store->outbox().MarkStored("g1", "CAROL");
  }
  auto store = Open();
  // Every copy; each member's together (as the start resends them), each
  // conversation of theirs in order.
  EXPECT_THAT(OutboxLines(*store),
              ElementsAre("g1>bob:1", "g2>bob:2", "m2>bob:1", "g1>carol:1",
                          "g2>carol:2", "m1>carol:1"));
  auto entries = store->outbox().Entries();
  ASSERT_THAT(entries.status(), IsOk());
  for (const OutboxEntry& entry : *entries) {
    EXPECT_EQ(entry.stored, entry.message.id == "g1" &&
                                registry::NameKey(entry.message.to) == "carol");
    if (entry.message.id[0] == 'g') {
      EXPECT_EQ(entry.message.group_id, kGroupId);
      EXPECT_EQ(entry.message.text, entry.message.id == "g1" ? "one" : "two");
    }
  }
  // The numbering goes on after a reopen.
  auto copies = AddToGroup(*store, ToGroup("g3", "three"), {"bob"});
  ASSERT_THAT(copies.status(), IsOk());
  EXPECT_EQ((*copies)[0].sequence, 3);
}

TEST_F(PeerStoreTest, AGroupCopysFloorIsItsMembersAlone) {
  auto store = Open();
  ASSERT_THAT(
      AddToGroup(*store, ToGroup("g1", "one"), {"bob", "carol"}).status(),
      IsOk());
  ASSERT_THAT(
      AddToGroup(*store, ToGroup("g2", "two"), {"bob", "carol"}).status(),
      IsOk());
  ASSERT_THAT(Add(*store, Outgoing("m1", "carol", "hi")).status(), IsOk());
  ChatMessage to_bob = ToGroup("g2", "two");
  to_bob.to = "bob";
  ChatMessage to_carol = to_bob;
  to_carol.to = "Carol";
  EXPECT_EQ(store->outbox().Floor(to_bob, 2), 1);
  EXPECT_EQ(store->outbox().Floor(to_carol, 2), 1);
  // Carol got g1: her floor rises, bob's stays.
  ASSERT_THAT(store->outbox().Take("g1", "carol").status(), IsOk());
  EXPECT_EQ(store->outbox().Floor(to_bob, 2), 1);
  EXPECT_EQ(store->outbox().Floor(to_carol, 2), 2);
  // A direct message's floor is the direct conversation's.
  EXPECT_EQ(store->outbox().Floor(Outgoing("", "carol", ""), 9), 1);
  ChatMessage to_dave = to_bob;
  to_dave.to = "dave";
  EXPECT_EQ(store->outbox().Floor(to_dave, 2), 2);
}

TEST_F(PeerStoreTest, TakingOneCopyLeavesTheOthers) {
  auto store = Open();
  ASSERT_THAT(AddToGroup(*store, ToGroup("g1", "one"), {"bob", "carol", "dave"})
                  .status(),
              IsOk());
  auto taken = store->outbox().Take("g1", "Bob");
  ASSERT_THAT(taken.status(), IsOk());
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->message.to, "bob");
  EXPECT_EQ((*taken)->message.group_id, kGroupId);
  // Bob's is gone; a receipt from him again takes nothing.
  taken = store->outbox().Take("g1", "bob");
  ASSERT_THAT(taken.status(), IsOk());
  EXPECT_FALSE(taken->has_value());
  store->outbox().Remove("g1", "dave");
  Flush(*store);
  EXPECT_THAT(OutboxLines(*store), ElementsAre("g1>carol:1"));
  store.reset();
  store = Open();
  EXPECT_THAT(OutboxLines(*store), ElementsAre("g1>carol:1"));
}

TEST_F(PeerStoreTest, AGroupsHistoryCountsItsCopiesDelivered) {
  auto store = Open();
  ASSERT_THAT(AddToGroup(*store, ToGroup("g1", "one"), {"bob", "carol", "dave"})
                  .status(),
              IsOk());
  ASSERT_THAT(
      AddToGroup(*store, ToGroup("g2", "two"), {"bob", "carol"}).status(),
      IsOk());
  ASSERT_THAT(Add(*store, Outgoing("m1", "bob", "direct")).status(), IsOk());
  // Once, in the group's conversation, with the group's id.
  absl::StatusOr<HistoryPage> page = store->history().Page(kGroup, 20);
  EXPECT_THAT(CopyLines(page), ElementsAre("one:0 0/3", "two:0 0/2"));
  ASSERT_THAT(page.status(), IsOk());
  EXPECT_EQ(page->total, 2);
  EXPECT_TRUE(page->entries[0].ours);
  EXPECT_EQ(page->entries[0].message.to, kGroup);
  EXPECT_EQ(page->entries[0].message.group_id, kGroupId);
  EXPECT_THAT(CopyLines(store->history().Page("bob", 20)),
              ElementsAre("direct:0 0/0"));

  // Each copy counts once, however often told; the message is delivered
  // when every copy is.
  HistoryStore& history = store->history();
  history.RecordSendState("g1", "bob", SendStatus::kDelivered);
  history.RecordSendState("g1", "BOB", SendStatus::kDelivered);
  history.RecordSendState("g1", "carol", SendStatus::kStored);
  history.RecordSendState("g1", "mallory", SendStatus::kDelivered);
  history.RecordSendState("g2", "bob", SendStatus::kRead);
  history.RecordSendState("g2", "carol", SendStatus::kDelivered);
  Flush(*store);
  EXPECT_THAT(CopyLines(history.Page(kGroup, 20)),
              ElementsAre("one:0 1/3", "two:2 2/2"));
  // The lowest of its copies: stored while one waits in a mailbox and none
  // is merely sent...
  history.RecordSendState("g1", "dave", SendStatus::kDelivered);
  Flush(*store);
  EXPECT_THAT(CopyLines(history.Page(kGroup, 20)),
              ElementsAre("one:1 2/3", "two:2 2/2"));
  // ...and failed when one can never be sent, whatever the others did.
  history.RecordSendState("g1", "carol", SendStatus::kFailed);
  Flush(*store);
  EXPECT_THAT(CopyLines(history.Page(kGroup, 20)),
              ElementsAre("one:5 2/3", "two:2 2/2"));
  // Read by all once every copy is; it survives a reopen.
  history.RecordSendState("g2", "carol", SendStatus::kRead);
  Flush(*store);
  store.reset();
  store = Open();
  EXPECT_THAT(CopyLines(store->history().Page(kGroup, 20)),
              ElementsAre("one:5 2/3", "two:3 2/2"));
}

// Who read a group message of ours is named as the message named its
// members, each once, across a reopen; those who only have it are not.
TEST_F(PeerStoreTest, AGroupsHistoryNamesTheMembersWhoReadIt) {
  auto store = Open();
  ASSERT_THAT(AddToGroup(*store, ToGroup("g1", "one"), {"Carol", "bob", "dave"})
                  .status(),
              IsOk());
  ASSERT_THAT(Add(*store, Outgoing("m1", "bob", "direct")).status(), IsOk());
  HistoryStore& history = store->history();
  history.RecordSendState("g1", "carol", SendStatus::kRead);
  history.RecordSendState("g1", "BOB", SendStatus::kRead);
  history.RecordSendState("g1", "bob", SendStatus::kRead);
  history.RecordSendState("g1", "dave", SendStatus::kDelivered);
  history.RecordSendState("g1", "mallory", SendStatus::kRead);
  history.RecordSendState("m1", "bob", SendStatus::kRead);
  Flush(*store);
  store.reset();
  store = Open();
  absl::StatusOr<HistoryPage> page = store->history().Page(kGroup, 20);
  ASSERT_THAT(page.status(), IsOk());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_THAT(page->entries[0].read_by, ElementsAre("bob", "Carol"));
  EXPECT_EQ(page->entries[0].delivered_copies, 3);
  page = store->history().Page("bob", 20);
  ASSERT_THAT(page.status(), IsOk());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_THAT(page->entries[0].read_by, IsEmpty());
}

// "text:reader reader" of each entry, the readers as read_by has them.
std::vector<std::string> ReadByLines(const absl::StatusOr<HistoryPage>& page) {
  if (!page.ok()) return {"error"};
  std::vector<std::string> lines;
  for (const HistoryEntry& entry : page->entries) {
    lines.push_back(absl::StrCat(entry.message.text, ":",
                                 absl::StrJoin(entry.read_by, " ")));
  }
  return lines;
}

// Paged, each group message of ours names its own readers (in name order,
// as it named its members) and no other message's; a message of theirs
// names none, even under the id of one of ours, and so does a page's
// message whose readers are all on messages beyond the page.
TEST_F(PeerStoreTest, EachPageOfAGroupsHistoryNamesEachMessagesReaders) {
  auto store = Open();
  for (const char* id : {"g1", "g2"}) {
    ASSERT_THAT(
        AddToGroup(*store, ToGroup(id, id), {"Carol", "bob", "dave"}).status(),
        IsOk());
  }
  ChatMessage theirs = Incoming("g2", 1, 1);
  theirs.group_id = kGroupId;
  theirs.group_version = 1;
  theirs.group_state_hash = std::string(32, 'h');
  ASSERT_TRUE(ReceiveAndShow(*store, theirs));
  for (const char* id : {"g3", "g4"}) {
    ASSERT_THAT(
        AddToGroup(*store, ToGroup(id, id), {"Carol", "bob", "dave"}).status(),
        IsOk());
  }
  HistoryStore& history = store->history();
  history.RecordSendState("g1", "dave", SendStatus::kRead);
  history.RecordSendState("g1", "bob", SendStatus::kRead);
  history.RecordSendState("g2", "carol", SendStatus::kRead);
  history.RecordSendState("g2", "dave", SendStatus::kRead);
  history.RecordSendState("g2", "bob", SendStatus::kDelivered);
  for (const char* member : {"bob", "carol", "dave"}) {
    history.RecordSendState("g3", member, SendStatus::kDelivered);
    history.RecordSendState("g4", member, SendStatus::kRead);
  }
  Flush(*store);

  EXPECT_THAT(ReadByLines(history.Page(kGroup, 2)),
              ElementsAre("g3:", "g4:bob Carol dave"));
  EXPECT_THAT(ReadByLines(history.Page(kGroup, 3)),
              ElementsAre("text g2:", "g3:", "g4:bob Carol dave"));
  EXPECT_THAT(ReadByLines(history.Page(kGroup, 20)),
              ElementsAre("g1:bob dave", "g2:Carol dave",
                          "text g2:", "g3:", "g4:bob Carol dave"));
}

// A file of the build before read receipts in groups (schema 12): its
// copies know their members by key alone, its notes no group; it migrates
// and keeps both.
TEST_F(PeerStoreTest, AFileFromBeforeGroupReadsMigrates) {
  const std::string path = dir_.File("alice.db");
  {
    auto store = Open();
    ASSERT_THAT(
        AddToGroup(*store, ToGroup("g1", "one"), {"Bob", "carol"}).status(),
        IsOk());
    store->history().RecordSendState("g1", "bob", SendStatus::kRead);
    ReadNote note;
    note.peer = "carol";
    note.id = "g1";
    note.state = ReadNote::State::kAwaiting;
    store->read_notes().SaveReadNotes({note});
    Flush(*store);
  }
  LowerPeerFile(path,
                "ALTER TABLE reads DROP COLUMN group_id; ALTER TABLE "
                "copy_states DROP COLUMN recipient;",
                12);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(PeerFileVersion(path), kPeerSchemaVersion);
  absl::StatusOr<HistoryPage> page = store->history().Page(kGroup, 20);
  ASSERT_THAT(page.status(), IsOk());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_THAT(page->entries[0].read_by, ElementsAre("bob"));
  auto notes = store->read_notes().ReadNotes();
  ASSERT_THAT(notes.status(), IsOk());
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_EQ((*notes)[0].peer, "carol");
  EXPECT_EQ((*notes)[0].group_id, "");
}

// A file a newer build wrote is refused, not read as this build's schema,
// and left as it was.
TEST_F(PeerStoreTest, AFileFromANewerBuildIsRefused) {
  const std::string path = dir_.File("alice.db");
  Open().reset();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(absl::StrCat("PRAGMA user_version = ", kPeerSchemaVersion + 1));
  }
  EXPECT_THAT(OpenPeerStore(path, clock_).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(PeerFileVersion(path), kPeerSchemaVersion + 1);
}

// A note of ours awaiting a group copy's receipt keeps its group across a
// reopen; one per member, though the id is the same.
TEST_F(PeerStoreTest, ReadNotesOfAGroupsCopiesKeepTheirGroup) {
  {
    auto store = Open();
    std::vector<ReadNote> notes;
    for (const char* member : {"bob", "carol"}) {
      ReadNote note;
      note.peer = member;
      note.id = "g1";
      note.group_id = kGroupId;
      note.state = ReadNote::State::kAwaiting;
      note.at_unix_ms = 1;
      notes.push_back(note);
    }
    store->read_notes().SaveReadNotes(notes);
    Flush(*store);
  }
  auto store = Open();
  auto notes = store->read_notes().ReadNotes();
  ASSERT_THAT(notes.status(), IsOk());
  std::vector<std::string> lines;
  for (const ReadNote& n : *notes) {
    lines.push_back(absl::StrCat(n.peer, ":", n.id, ":", n.group_id));
  }
  EXPECT_THAT(lines, UnorderedElementsAre(absl::StrCat("bob:g1:", kGroupId),
                                          absl::StrCat("carol:g1:", kGroupId)));
}

TEST_F(PeerStoreTest, TheRecorderCountsAGroupMessagesCopiesByTheirMember) {
  auto store = Open();
  ASSERT_THAT(
      AddToGroup(*store, ToGroup("g1", "one"), {"bob", "carol"}).status(),
      IsOk());
  CountingSink screen;
  HistoryRecorder recorder(&store->history(), &screen);
  PeerEvent event = MakeEvent(EventKind::kSendResult, "bob");
  event.message = ToGroup("g1", "one");
  event.status = SendStatus::kDelivered;
  for (const char* member : {"bob", "carol"}) {
    event.message.to = member;
    recorder.OnSendState(event);
  }
  Flush(*store);
  EXPECT_THAT(CopyLines(store->history().Page(kGroup, 20)),
              ElementsAre("one:2 2/2"));
}

TEST_F(PeerStoreTest, ForgettingAGroupsHistoryKeepsItsCopiesOut) {
  const std::string path = dir_.File("alice.db");
  auto store = Open();
  ASSERT_THAT(
      AddToGroup(*store, ToGroup("g1", "one"), {"bob", "carol"}).status(),
      IsOk());
  ASSERT_THAT(Add(*store, Outgoing("m1", "bob", "direct")).status(), IsOk());
  ChatMessage theirs = Incoming("b1", 1, 1);
  theirs.group_id = kGroupId;
  theirs.group_version = 1;
  theirs.group_state_hash = std::string(32, 'h');
  absl::StatusOr<Received> received = Receive(*store, theirs);
  EXPECT_THAT(Ids(received), ElementsAre("b1"));
  ASSERT_THAT(received.status(), IsOk());
  store->inbox().MarkShown(received->ready, {});
  Flush(*store);
  EXPECT_THAT(Lines(store->history().Page(kGroup, 20)),
              ElementsAre(Ours("one", SendStatus::kSent), "theirs:text b1"));
  // A group message of bob's is not in the history with bob.
  EXPECT_THAT(Lines(store->history().Page("bob", 20)),
              ElementsAre(Ours("direct", SendStatus::kSent)));
  EXPECT_EQ(Erased(store->history().Forget(kGroup)), 2);
  EXPECT_THAT(Lines(store->history().Page(kGroup, 20)), IsEmpty());
  EXPECT_EQ(store->history().Page("bob", 20)->total, 1);
  // The copies still go; their states went with the message.
  EXPECT_THAT(OutboxLines(*store),
              ElementsAre("g1>bob:1", "m1>bob:1", "g1>carol:1"));
  store.reset();
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM copy_states").getInt(), 0);
}

}  // namespace
}  // namespace chat::peer
