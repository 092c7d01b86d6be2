// ReadTracker on its own: a real store in memory, a key book that knows the
// senders' keys, receipts caught where they would be sent and opened as
// their reader would open them. The end-to-end cases are in
// read_receipts_test.cc.

#include "peer/read_tracker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "peer/envelope.h"
#include "peer/key_book.h"
#include "peer/peer_store.h"
#include "peer/sealing.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr size_t kBound = 4;

class ReadTrackerTest : public ::testing::Test {
 protected:
  ReadTrackerTest() {
    auto store = OpenPeerStore(":memory:", clock_);
    EXPECT_THAT(store, IsOk());
    store_ = *std::move(store);
    KeyBook::Options book;
    book.directory = [this](const std::string& name)
        -> absl::StatusOr<std::optional<PublicKey>> {
      if (name == "bob") return bob_.public_key();
      if (name == "carol") return carol_.public_key();
      return std::nullopt;
    };
    keys_ = std::make_unique<KeyBook>(&store_->pins(), std::vector<Pin>(),
                                      std::move(book), clock_);
    envelope_ =
        std::make_unique<Envelope>("alice", alice_, keys_.get(), clock_);
    ReadTracker::Options options;
    options.own_name = "alice";
    options.envelope = envelope_.get();
    options.max_notes = kBound;
    options.send_direct = [this](const std::string& to,
                                 const ::ReadReceipts& receipts) {
      absl::MutexLock lock(&mu_);
      sent_[to].push_back(receipts);
      return absl::OkStatus();
    };
    options.deposit = [](const registry::MailItem&) {
      return absl::UnavailableError("no mailbox in this test");
    };
    tracker_ = std::make_unique<ReadTracker>(
        &events_, &store_->read_notes(), &store_->outbox(),
        std::vector<ReadNote>(), clock_, std::move(options));
  }

  ~ReadTrackerTest() override { tracker_->Stop(); }

  void Show(const std::string& from, const std::string& id,
            const std::string& group_id = "") {
    ChatMessage message;
    message.id = id;
    message.from = from;
    message.to = "alice";
    message.text = "hello";
    message.group_id = group_id;
    tracker_->Shown(message);
  }

  // Our message `id` was delivered to `to`: a copy of a group's when
  // `group_id` is set.
  void Delivered(const std::string& id, const std::string& to,
                 const std::string& group_id = "") {
    PeerEvent event = MakeEvent(EventKind::kSendResult, to);
    event.status = SendStatus::kDelivered;
    event.message.id = id;
    event.message.from = "alice";
    event.message.to = to;
    event.message.group_id = group_id;
    tracker_->OnSendState(event);
  }

  // `reader` says it read `ids` of ours, as its peer would seal it.
  absl::Status ReceiptFrom(const std::string& reader,
                           const Identity& reader_identity,
                           const std::vector<std::string>& ids) {
    PairCipher cipher(reader_identity);
    absl::StatusOr<::ReadReceipts> receipts =
        SealReadReceipts(cipher, alice_.public_key(), reader, "alice", ids);
    if (!receipts.ok()) return receipts.status();
    return tracker_->TakeReadReceipts(*receipts, /*may_wait=*/true);
  }

  // The kRead events told so far, as "id to member [group]".
  std::vector<std::string> Reads() {
    std::vector<std::string> reads;
    for (const PeerEvent& event : events_.Events()) {
      if (event.status != SendStatus::kRead) continue;
      reads.push_back(absl::StrCat(event.message.id, " to ", event.message.to,
                                   event.message.group_id.empty() ? "" : " ",
                                   event.message.group_id));
    }
    return reads;
  }

  // The ids `reader` was told we read, in the order sent: waits (at most
  // 10 s) until `count` have gone to it, then opens them as it would.
  std::vector<std::string> ReadBy(const std::string& reader,
                                  const Identity& reader_identity,
                                  size_t count) {
    std::vector<::ReadReceipts> batches;
    {
      absl::MutexLock lock(&mu_);
      auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        size_t ids = 0;
        for (const ::ReadReceipts& batch : sent_[reader]) {
          PairCipher cipher(reader_identity);
          auto opened =
              OpenReadReceipts(cipher, alice_.public_key(), batch, reader);
          if (opened.ok()) ids += opened->size();
        }
        return ids >= count;
      };
      mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
      batches = sent_[reader];
    }
    std::vector<std::string> ids;
    PairCipher cipher(reader_identity);
    for (const ::ReadReceipts& batch : batches) {
      auto opened =
          OpenReadReceipts(cipher, alice_.public_key(), batch, reader);
      EXPECT_THAT(opened, IsOk());
      if (opened.ok()) ids.insert(ids.end(), opened->begin(), opened->end());
    }
    return ids;
  }

  FakeClock clock_;
  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity carol_ = Identity::Generate();
  std::unique_ptr<PeerStore> store_;
  std::unique_ptr<KeyBook> keys_;
  std::unique_ptr<Envelope> envelope_;
  RecordingSink events_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<::ReadReceipts>> sent_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ReadTracker> tracker_;  // Last: it uses the above.
};

TEST_F(ReadTrackerTest, BeyondTheBoundTheOldestNotesOfAllAreForgotten) {
  // Carol's four unread fill the bound; bob's newer one must not be the one
  // forgotten (it was, when the bound cut from the sender who wrote last).
  for (const char* id : {"c1", "c2", "c3", "c4"}) Show("carol", id);
  Show("bob", "b1");
  Show("bob", "b2");
  tracker_->MarkRead("bob");
  EXPECT_THAT(ReadBy("bob", bob_, 2), ElementsAre("b1", "b2"));
  tracker_->MarkRead("carol");
  EXPECT_THAT(ReadBy("carol", carol_, 2), ElementsAre("c3", "c4"));
}

// The tracker is on the path of a state change: it writes the note a
// delivery makes (kAwaiting: its read receipt may come) there, and hands
// every state on, in order, to what shows it.
TEST_F(ReadTrackerTest, ADeliveryIsNotedWhereItHappensAndHandedOn) {
  PeerEvent event = MakeEvent(EventKind::kSendResult, "bob");
  event.message.id = "m1";
  event.message.from = "alice";
  event.message.to = "bob";
  for (SendStatus status : {SendStatus::kSent, SendStatus::kDelivered}) {
    event.status = status;
    tracker_->OnSendState(event);
  }
  std::vector<SendStatus> told;
  for (const PeerEvent& shown : events_.Events()) told.push_back(shown.status);
  EXPECT_THAT(told, ElementsAre(SendStatus::kSent, SendStatus::kDelivered));
  // A waited write: the notes' writes before it are in the file.
  ASSERT_THAT(store_->lease().SaveLeaseId("x"), IsOk());
  auto notes = store_->read_notes().ReadNotes();
  ASSERT_THAT(notes, IsOk());
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_EQ(notes->front().id, "m1");
  EXPECT_EQ(notes->front().peer, "bob");
  EXPECT_EQ(notes->front().state, ReadNote::State::kAwaiting);
}

TEST_F(ReadTrackerTest, NotesReadLeaveTheBound) {
  Show("bob", "b1");
  Show("bob", "b2");
  tracker_->MarkRead("bob");
  EXPECT_THAT(ReadBy("bob", bob_, 2), ElementsAre("b1", "b2"));
  // Bob's notes are owed receipts now, no longer shown ones: carol's four
  // fit the bound whole.
  for (const char* id : {"c1", "c2", "c3", "c4"}) Show("carol", id);
  tracker_->MarkRead("carol");
  EXPECT_THAT(ReadBy("carol", carol_, 4), ElementsAre("c1", "c2", "c3", "c4"));
}

// A group message has one id and a copy per member: each copy awaits its
// own member's receipt, noted apart, and each member's receipt reports that
// member's copy alone.
TEST_F(ReadTrackerTest, AGroupMessagesCopiesAreReadPerMember) {
  Delivered("g1", "bob", "grp");
  Delivered("g1", "carol", "grp");
  // A waited write: the notes' writes before it are in the file.
  ASSERT_THAT(store_->lease().SaveLeaseId("x"), IsOk());
  auto notes = store_->read_notes().ReadNotes();
  ASSERT_THAT(notes, IsOk());
  std::vector<std::string> noted;
  for (const ReadNote& note : *notes) {
    noted.push_back(absl::StrCat(note.id, " ", note.peer, " ", note.group_id));
  }
  EXPECT_THAT(noted, UnorderedElementsAre("g1 bob grp", "g1 carol grp"));

  ASSERT_THAT(ReceiptFrom("bob", bob_, {"g1"}), IsOk());
  EXPECT_THAT(Reads(), ElementsAre("g1 to bob grp"));
  // Bob again: his copy is read already; carol's still waits for hers.
  ASSERT_THAT(ReceiptFrom("bob", bob_, {"g1"}), IsOk());
  EXPECT_THAT(Reads(), ElementsAre("g1 to bob grp"));
  ASSERT_THAT(ReceiptFrom("carol", carol_, {"g1"}), IsOk());
  EXPECT_THAT(Reads(), ElementsAre("g1 to bob grp", "g1 to carol grp"));
  EXPECT_EQ(tracker_->dropped(), 0);
  // A late kDelivered of a copy read already is not handed on.
  const size_t told = events_.Events().size();
  Delivered("g1", "carol", "grp");
  EXPECT_EQ(events_.Events().size(), told);
}

// A group message's id from someone who got no copy of it (not a member
// then, or never sent it) reads nothing: dropped and counted.
TEST_F(ReadTrackerTest, AReceiptForACopyNeverSentToItsReaderIsDropped) {
  Delivered("g1", "bob", "grp");
  ASSERT_THAT(ReceiptFrom("carol", carol_, {"g1"}), IsOk());
  EXPECT_THAT(Reads(), IsEmpty());
  EXPECT_EQ(tracker_->dropped(), 1);
  // Bob's own copy is still his to read.
  ASSERT_THAT(ReceiptFrom("bob", bob_, {"g1"}), IsOk());
  EXPECT_THAT(Reads(), ElementsAre("g1 to bob grp"));
}

// Being active in the direct conversation with bob reads what bob wrote
// there, not what he wrote in a group; being active in the group reads
// what everyone wrote in it, each receipt to its sender.
TEST_F(ReadTrackerTest, AGroupAndADirectConversationAreReadApart) {
  Show("bob", "d1");
  Show("bob", "g1", "grp");
  Show("carol", "g2", "grp");
  Show("carol", "d2");
  tracker_->MarkRead("bob");
  EXPECT_THAT(ReadBy("bob", bob_, 1), ElementsAre("d1"));
  tracker_->MarkGroupRead("grp");
  EXPECT_THAT(ReadBy("bob", bob_, 2), ElementsAre("d1", "g1"));
  EXPECT_THAT(ReadBy("carol", carol_, 1), ElementsAre("g2"));
  tracker_->MarkRead("carol");
  EXPECT_THAT(ReadBy("carol", carol_, 2), ElementsAre("g2", "d2"));
}

}  // namespace
}  // namespace chat::peer
