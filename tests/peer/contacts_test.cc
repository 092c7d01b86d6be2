#include "peer/contacts.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "peer/peer_store.h"
#include "tests/peer/peer_file_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Counts the changes it is told of.
struct CountingListener final : FollowedListener {
  void OnFollowedChanged() override { ++count; }
  int count = 0;
};

class ContactsTest : public ::testing::Test {
 protected:
  ContactsTest() : path_(dir_.File("alice.db")) { Open(); }

  // (Re)opens the store and a Contacts over it, with `max` at most.
  void Open(size_t max = 3) {
    contacts_.reset();
    store_.reset();  // Flushes what was not waited for.
    auto store = OpenPeerStore(path_, clock_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
    auto loaded = store_->contacts().Contacts();
    ASSERT_THAT(loaded, IsOk());
    Contacts::Options options;
    options.own_name = "alice";
    options.max_followed = max;
    contacts_ = std::make_unique<Contacts>(&store_->contacts(),
                                           *std::move(loaded), options, clock_);
    changes_.count = 0;
    contacts_->Listen(&changes_);
  }

  chat::testing::TempDir dir_;
  std::string path_;
  FakeClock clock_;
  std::unique_ptr<PeerStore> store_;
  std::unique_ptr<Contacts> contacts_;
  CountingListener changes_;
};

TEST_F(ContactsTest, WhomWeTalkWithWeFollowAndRemember) {
  EXPECT_THAT(contacts_->Followed(), IsEmpty());
  contacts_->Talked("bob");
  contacts_->Talked("Carol");
  contacts_->Talked("BOB");  // The same name.
  EXPECT_EQ(changes_.count, 2);
  EXPECT_TRUE(contacts_->Follows("bob"));
  EXPECT_TRUE(contacts_->Follows("carol"));
  EXPECT_FALSE(contacts_->Follows("dave"));
  Open();
  EXPECT_THAT(contacts_->Followed(), ElementsAre("Carol", "bob"));
}

TEST_F(ContactsTest, NeitherOurselvesNorALabPeersNameIsFollowed) {
  contacts_->Talked("ALICE");
  contacts_->Talked("Davide De Rosa");
  EXPECT_THAT(contacts_->Followed(), IsEmpty());
  EXPECT_EQ(changes_.count, 0);
  EXPECT_THAT(contacts_->Follow("alice"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(contacts_->Follow("no such/name"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ContactsTest, AnUnfollowedNameStaysUnfollowedUntilFollowed) {
  contacts_->Talked("bob");
  EXPECT_TRUE(contacts_->Unfollow("bob"));
  EXPECT_FALSE(contacts_->Unfollow("bob"));
  contacts_->Talked("bob");  // Talking does not follow bob again.
  EXPECT_FALSE(contacts_->Follows("bob"));
  Open();
  EXPECT_FALSE(contacts_->Follows("bob"));
  EXPECT_THAT(contacts_->Follow("bob"), IsOk());
  EXPECT_TRUE(contacts_->Follows("bob"));
  EXPECT_EQ(changes_.count, 1);
}

TEST_F(ContactsTest, TheLeastRecentlyTalkedWithMakesRoom) {
  contacts_->Talked("bob");
  clock_.Advance(Millis(1000));
  contacts_->Talked("carol");
  clock_.Advance(Millis(1000));
  contacts_->Talked("dave");
  clock_.Advance(Millis(1000));
  contacts_->Talked("bob");  // Recent again.
  clock_.Advance(Millis(1000));
  contacts_->Talked("erin");  // The fourth of three: carol goes.
  EXPECT_THAT(contacts_->Followed(), ElementsAre("bob", "dave", "erin"));
  Open();
  EXPECT_THAT(contacts_->Followed(), ElementsAre("bob", "dave", "erin"));
}

TEST_F(ContactsTest, ChosenNamesStayAndAFullChoiceIsRefusedNamingTheLimit) {
  ASSERT_THAT(contacts_->Follow("bob"), IsOk());
  ASSERT_THAT(contacts_->Follow("carol"), IsOk());
  contacts_->Talked("dave");
  clock_.Advance(Millis(1000));
  // Strangers writing to us push out only those not chosen.
  for (int i = 0; i < 20; ++i) {
    contacts_->Talked(absl::StrCat("junk", i));
    clock_.Advance(Millis(1000));
  }
  EXPECT_THAT(contacts_->Followed(), ElementsAre("bob", "carol", "junk19"));
  ASSERT_THAT(contacts_->Follow("dave"), IsOk());  // junk19 goes.
  EXPECT_THAT(contacts_->Follow("erin"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("(limit 3, --max-follow)")));
  contacts_->Talked("frank");  // Nobody to make room: not followed.
  EXPECT_THAT(contacts_->Followed(), ElementsAre("bob", "carol", "dave"));
  ASSERT_TRUE(contacts_->Unfollow("carol"));
  EXPECT_THAT(contacts_->Follow("erin"), IsOk());  // carol's row goes.
  EXPECT_THAT(contacts_->Followed(), ElementsAre("bob", "dave", "erin"));
}

TEST_F(ContactsTest, ASmallerLimitKeepsTheChosenAndTheMostRecent) {
  Open(/*max=*/10);
  contacts_->Talked("bob");
  clock_.Advance(Millis(1000));
  ASSERT_THAT(contacts_->Follow("carol"), IsOk());
  clock_.Advance(Millis(1000));
  contacts_->Talked("dave");
  clock_.Advance(Millis(1000));
  contacts_->Talked("erin");
  Open(/*max=*/2);
  EXPECT_THAT(contacts_->Followed(), ElementsAre("carol", "erin"));
  Open(/*max=*/10);  // The others were forgotten for good.
  EXPECT_THAT(contacts_->Followed(), ElementsAre("carol", "erin"));
}

TEST_F(ContactsTest, AFileFromBeforeFollowsItsConversations) {
  // A file of the build before contacts (schema 2) with conversations:
  // written to bob, heard from carol and from a lab peer (whose name cannot
  // be followed). Opening it migrates.
  contacts_.reset();
  store_.reset();
  MakePeerFileFromFixture(path_, "peer_schema_v2.sql");
  {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    db.exec(
        "INSERT INTO conversations (peer_key, epoch, next_sequence) VALUES "
        "('bob', 'e', 2)");
    db.exec(
        "INSERT INTO inbound (sender_key, epoch, next_sequence) VALUES "
        "('carol', 'e', 2), ('davide de rosa', 'e', 2)");
  }
  Open(/*max=*/1);  // bob, written to, ranks before carol.
  EXPECT_THAT(contacts_->Followed(), ElementsAre("bob"));
}

}  // namespace
}  // namespace chat::peer
