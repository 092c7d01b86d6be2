// Sealing (peer/sealing.h), the key book (pins, key changes, /trust) and the
// envelope (what is refused on arrival), without a network: the directory
// is a map.

#include "peer/sealing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "peer/envelope.h"
#include "peer/key_book.h"
#include "peer/peer_store.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

ChatMessage Hello(const std::string& from, const std::string& to) {
  ChatMessage message;
  message.id = "01890a5d-ac96-774b-bcce-b302099a8057";
  message.from = from;
  message.to = to;
  message.text = "hello " + to;
  message.lab_time = "12:34";
  message.sent_at = absl::FromUnixMillis(1700000000000);
  message.sequence = 3;
  message.sequence_epoch = "e1";
  message.sequence_floor = 2;
  return message;
}

TEST(SealingTest, WhatIsSealedOpensWithEveryFieldAndShowsNothingOutside) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  auto outer =
      SealMessage(alice_cipher, bob.public_key(), Hello("alice", "bob"));
  ASSERT_THAT(outer, IsOk());
  EXPECT_TRUE(outer->msg().empty());
  EXPECT_TRUE(outer->time().empty());
  EXPECT_EQ(outer->sent_at_unix_ms(), 0);
  EXPECT_EQ(outer->sender(), "alice");
  EXPECT_EQ(outer->sequence(), 3);
  EXPECT_EQ(outer->sealed().find("hello"), std::string::npos);
  auto opened = OpenMessage(bob_cipher, alice.public_key(), *outer, "bob");
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->text, "hello bob");
  EXPECT_EQ(opened->lab_time, "12:34");
  EXPECT_EQ(opened->sent_at, absl::FromUnixMillis(1700000000000));
  EXPECT_EQ(opened->sequence_floor, 2);
}

TEST(SealingTest, ChangedRoutingForgedSenderAndBadBytesAreRefused) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  Identity mallory = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  PairCipher mallory_cipher(mallory);
  ::Message outer =
      *SealMessage(alice_cipher, bob.public_key(), Hello("alice", "bob"));

  ::Message moved = outer;
  moved.set_sequence(9);
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), moved, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ::Message renamed = outer;
  renamed.set_sender("carol");
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), renamed, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Mallory seals "from alice" with her own key: bob checks alice's.
  ::Message forged =
      *SealMessage(mallory_cipher, bob.public_key(), Hello("alice", "bob"));
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), forged, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ::Message flipped = outer;
  flipped.mutable_sealed()->back() ^= 1;
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), flipped, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ::Message short_bytes = outer;
  short_bytes.set_sealed("xyz");
  EXPECT_THAT(
      OpenMessage(bob_cipher, alice.public_key(), short_bytes, "bob"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sealed")));
  ::Message with_text = outer;
  with_text.set_msg("visible");
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), with_text, "bob"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Hello() sent to a group: its id, and the version and hash of the
// group's state as alice saw it.
ChatMessage GroupHello(const std::string& from, const std::string& to) {
  ChatMessage message = Hello(from, to);
  message.group_id = "0123456789abcdef0123456789abcdef";
  message.group_version = 7;
  message.group_state_hash = std::string(32, '\x5a');
  return message;
}

TEST(SealingTest, ADirectMessageCarriesNoGroupFieldsOnTheWire) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  // The plain form a lab peer gets: byte for byte what it was before groups.
  ::Message plain = ToProto(Hello("alice", "bob"));
  EXPECT_FALSE(HasGroupFields(plain));
  ::Message without_groups = plain;
  without_groups.clear_group_id();
  without_groups.clear_group_version();
  without_groups.clear_group_state_hash();
  EXPECT_EQ(plain.SerializeAsString(), without_groups.SerializeAsString());
  auto outer =
      SealMessage(alice_cipher, bob.public_key(), Hello("alice", "bob"));
  ASSERT_THAT(outer, IsOk());
  auto opened = OpenMessage(bob_cipher, alice.public_key(), *outer, "bob");
  ASSERT_THAT(opened, IsOk());
  EXPECT_TRUE(opened->group_id.empty());
  EXPECT_EQ(opened->group_version, 0);
  EXPECT_TRUE(opened->group_state_hash.empty());
}

TEST(SealingTest, GroupFieldsTravelInsideOnlyAndOpenAsSent) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  auto outer =
      SealMessage(alice_cipher, bob.public_key(), GroupHello("alice", "bob"));
  ASSERT_THAT(outer, IsOk());
  // The mailbox sees who writes to whom, not which group.
  EXPECT_FALSE(HasGroupFields(*outer));
  EXPECT_EQ(outer->sealed().find("0123456789abcdef"), std::string::npos);
  auto opened = OpenMessage(bob_cipher, alice.public_key(), *outer, "bob");
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->group_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(opened->group_version, 7);
  EXPECT_EQ(opened->group_state_hash, std::string(32, '\x5a'));
  EXPECT_EQ(opened->text, "hello bob");
  EXPECT_EQ(opened->sequence, 3);
  // The same fields shown outside too (not ours, but allowed): they agree.
  ::Message shown = *outer;
  shown.set_group_id("0123456789abcdef0123456789abcdef");
  shown.set_group_version(7);
  shown.set_group_state_hash(std::string(32, '\x5a'));
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), shown, "bob"),
              IsOk());
}

TEST(SealingTest, GroupFieldsOutsideThatDifferFromTheInsideAreRefused) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  const ::Message group =
      *SealMessage(alice_cipher, bob.public_key(), GroupHello("alice", "bob"));
  const ::Message direct =
      *SealMessage(alice_cipher, bob.public_key(), Hello("alice", "bob"));

  ::Message other_group = group;
  other_group.set_group_id("ffffffffffffffffffffffffffffffff");
  other_group.set_group_version(7);
  other_group.set_group_state_hash(std::string(32, '\x5a'));
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), other_group, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("group")));
  // One field outside is a claim about all three: the others must agree too.
  ::Message only_version = group;
  only_version.set_group_version(7);
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), only_version, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ::Message older = group;
  older.set_group_id("0123456789abcdef0123456789abcdef");
  older.set_group_version(6);
  older.set_group_state_hash(std::string(32, '\x5a'));
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), older, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // A direct message dressed up as a group's outside.
  ::Message dressed = direct;
  dressed.set_group_id("0123456789abcdef0123456789abcdef");
  dressed.set_group_version(7);
  dressed.set_group_state_hash(std::string(32, '\x5a'));
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), dressed, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Changed inside: the seal breaks.
  ::Message flipped = group;
  flipped.mutable_sealed()->back() ^= 1;
  EXPECT_THAT(OpenMessage(bob_cipher, alice.public_key(), flipped, "bob"),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(SealingTest, AGroupMessageSealedForOneMemberDoesNotOpenForAnother) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  Identity carol = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  PairCipher carol_cipher(carol);
  ::Message for_bob =
      *SealMessage(alice_cipher, bob.public_key(), GroupHello("alice", "bob"));
  // Bob forwards it to carol, as it is and readdressed.
  EXPECT_THAT(OpenMessage(carol_cipher, alice.public_key(), for_bob, "carol"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ::Message readdressed = for_bob;
  readdressed.set_recipient("carol");
  EXPECT_THAT(
      OpenMessage(carol_cipher, alice.public_key(), readdressed, "carol"),
      StatusIs(absl::StatusCode::kUnauthenticated));
  // Bob (a member, holding a pair key with carol) reseals it as his own:
  // it opens, but as bob's message, not alice's.
  ChatMessage inner =
      *OpenMessage(bob_cipher, alice.public_key(), for_bob, "bob");
  inner.to = "carol";
  ::Message resealed = *SealMessage(bob_cipher, carol.public_key(), inner);
  EXPECT_THAT(OpenMessage(carol_cipher, alice.public_key(), resealed, "carol"),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(SealingTest, MalformedGroupFieldsAreNeitherSealedNorOpened) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  ChatMessage no_hash = GroupHello("alice", "bob");
  no_hash.group_state_hash.clear();
  EXPECT_THAT(SealMessage(alice_cipher, bob.public_key(), no_hash),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("group_state_hash")));
  ChatMessage upper = GroupHello("alice", "bob");
  upper.group_id = "0123456789ABCDEF0123456789ABCDEF";
  EXPECT_THAT(
      SealMessage(alice_cipher, bob.public_key(), upper),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("group_id")));
  ChatMessage version_only = Hello("alice", "bob");
  version_only.group_version = 3;
  EXPECT_THAT(SealMessage(alice_cipher, bob.public_key(), version_only),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // Sealed by alice all the same (her own peer would not): bob refuses it
  // rather than take a malformed group message for a direct one.
  ::Message inner = ToProto(GroupHello("alice", "bob"));
  inner.set_group_version(0);
  std::string plaintext(kMessageTag);
  inner.AppendToString(&plaintext);
  ::Message outer;
  outer.set_sender("alice");
  outer.set_recipient("bob");
  outer.set_id(inner.id());
  outer.set_sequence(inner.sequence());
  outer.set_sequence_epoch(inner.sequence_epoch());
  outer.set_sequence_floor(inner.sequence_floor());
  outer.set_sealed(*alice_cipher.Seal(bob.public_key(), plaintext));
  EXPECT_THAT(
      OpenMessage(bob_cipher, alice.public_key(), outer, "bob"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("group_version")));
  // FromProto alone drops what is not whole, like a broken sequence.
  EXPECT_TRUE(FromProto(inner).group_id.empty());
}

TEST(SealingTest, ReadReceiptsOpenOnlyForTheSenderFromTheReadersKey) {
  Identity alice = Identity::Generate();  // Sent the messages.
  Identity bob = Identity::Generate();    // Read them.
  Identity mallory = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  PairCipher mallory_cipher(mallory);
  const std::vector<std::string> ids = {"id-1", "id-2"};
  auto sealed =
      SealReadReceipts(bob_cipher, alice.public_key(), "bob", "alice", ids);
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(sealed->sender(), "bob");
  EXPECT_EQ(sealed->recipient(), "alice");
  EXPECT_EQ(sealed->ids_size(), 0);  // The ids travel inside only.
  EXPECT_EQ(sealed->sealed().find("id-1"), std::string::npos);
  auto opened =
      OpenReadReceipts(alice_cipher, bob.public_key(), *sealed, "ALICE");
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(*opened, ids);

  // Checked with another key (mallory claims to be bob), or opened by
  // someone it was not sealed for.
  EXPECT_THAT(
      OpenReadReceipts(alice_cipher, mallory.public_key(), *sealed, "alice"),
      StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(
      OpenReadReceipts(mallory_cipher, bob.public_key(), *sealed, "mallory"),
      StatusIs(absl::StatusCode::kUnauthenticated));
  // Forged by mallory in bob's name: sealed with mallory's key.
  auto forged =
      SealReadReceipts(mallory_cipher, alice.public_key(), "bob", "alice", ids);
  ASSERT_THAT(forged, IsOk());
  EXPECT_THAT(
      OpenReadReceipts(alice_cipher, bob.public_key(), *forged, "alice"),
      StatusIs(absl::StatusCode::kUnauthenticated));
  // The routing changed on the way.
  ::ReadReceipts rerouted = *sealed;
  rerouted.set_sender("carol");
  EXPECT_THAT(
      OpenReadReceipts(alice_cipher, bob.public_key(), rerouted, "alice"),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("sender")));
  // A flipped byte.
  ::ReadReceipts changed = *sealed;
  changed.mutable_sealed()->back() ^= 1;
  EXPECT_THAT(
      OpenReadReceipts(alice_cipher, bob.public_key(), changed, "alice"),
      StatusIs(absl::StatusCode::kUnauthenticated));
  // Ids added outside.
  ::ReadReceipts padded = *sealed;
  padded.add_ids("id-3");
  EXPECT_THAT(OpenReadReceipts(alice_cipher, bob.public_key(), padded, "alice"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A delivery receipt's bytes never pass for read receipts.
  auto receipt = MakeReceipt(bob_cipher, alice.public_key(), "id-1", "bob");
  ASSERT_THAT(receipt, IsOk());
  ::ReadReceipts replayed = *sealed;
  replayed.set_sealed(*receipt);
  EXPECT_THAT(
      OpenReadReceipts(alice_cipher, bob.public_key(), replayed, "alice"),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // Bounds.
  EXPECT_THAT(
      SealReadReceipts(bob_cipher, alice.public_key(), "bob", "alice", {}),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SealReadReceipts(bob_cipher, alice.public_key(), "bob", "alice",
                               std::vector<std::string>(kMaxReadIds + 1, "x")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto full = SealReadReceipts(
      bob_cipher, alice.public_key(), "bob", "alice",
      std::vector<std::string>(kMaxReadIds, std::string(64, 'i')));
  ASSERT_THAT(full, IsOk());
  EXPECT_LE(full->ByteSizeLong(), 8192u);  // Fits a mailbox read receipt.
}

TEST(SealingTest, AReceiptChecksOnlyWithTheRecipientsKeyIdAndName) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  Identity mallory = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  PairCipher mallory_cipher(mallory);
  std::string receipt =
      *MakeReceipt(bob_cipher, alice.public_key(), "m1", "bob");
  EXPECT_TRUE(
      CheckReceipt(alice_cipher, bob.public_key(), receipt, "m1", "Bob"));
  EXPECT_FALSE(
      CheckReceipt(alice_cipher, bob.public_key(), receipt, "m2", "bob"));
  EXPECT_FALSE(
      CheckReceipt(alice_cipher, bob.public_key(), receipt, "m1", "carol"));
  std::string forged =
      *MakeReceipt(mallory_cipher, alice.public_key(), "m1", "bob");
  EXPECT_FALSE(
      CheckReceipt(alice_cipher, bob.public_key(), forged, "m1", "bob"));
  EXPECT_FALSE(
      CheckReceipt(alice_cipher, bob.public_key(), "junk", "m1", "bob"));
}

TEST(SealingTest, AProofOfDeliveryChecksOnlyForItsPairIdAndDirection) {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  Identity mallory = Identity::Generate();
  PairCipher alice_cipher(alice);
  PairCipher bob_cipher(bob);
  PairCipher mallory_cipher(mallory);
  // bob, having kept alice's message m1, proves it to her.
  const std::string proof =
      *MakeDeliveryProof(bob_cipher, alice.public_key(), "m1", "alice", "bob");
  EXPECT_EQ(proof.size(), kPairMacBytes);
  EXPECT_TRUE(CheckDeliveryProof(alice_cipher, bob.public_key(), proof, "m1",
                                 "Alice", "BOB"));
  // Another message, another recipient, the other direction (bob's m1 to
  // alice), another key, nothing at all: no.
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, bob.public_key(), proof, "m2",
                                  "alice", "bob"));
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, bob.public_key(), proof, "m1",
                                  "alice", "carol"));
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, bob.public_key(), proof, "m1",
                                  "bob", "alice"));
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, mallory.public_key(), proof,
                                  "m1", "alice", "bob"));
  const std::string forged = *MakeDeliveryProof(
      mallory_cipher, alice.public_key(), "m1", "alice", "bob");
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, bob.public_key(), forged, "m1",
                                  "alice", "bob"));
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, bob.public_key(), "", "m1",
                                  "alice", "bob"));
  // Lengths keep fields apart: ("m1", "alice") is not ("m1a", "lice").
  EXPECT_FALSE(CheckDeliveryProof(alice_cipher, bob.public_key(), proof, "m1a",
                                  "lice", "bob"));
  // Not the bytes of a receipt, or of a seal, under another name.
  EXPECT_FALSE(
      CheckReceipt(alice_cipher, bob.public_key(), proof, "m1", "bob"));
}

// A registry as a map: name -> key (absent: no key); `down` makes it fail.
struct FakeDirectory {
  std::map<std::string, PublicKey> keys;
  bool down = false;
  int lookups = 0;
  KeyBook::Options Options(EventSink* told) {
    KeyBook::Options options;
    options.directory = [this](const std::string& name)
        -> absl::StatusOr<std::optional<PublicKey>> {
      ++lookups;
      if (down) return absl::UnavailableError("registry away");
      auto it = keys.find(name);
      if (it == keys.end()) return std::optional<PublicKey>();
      return std::optional<PublicKey>(it->second);
    };
    options.events = told;
    return options;
  }
};

class KeyBookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenPeerStore(":memory:", clock_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }
  std::unique_ptr<KeyBook> NewBook() {
    return std::make_unique<KeyBook>(&store_->pins(), *store_->pins().Pins(),
                                     directory_.Options(&told_), clock_);
  }

  FakeClock clock_;
  std::unique_ptr<PeerStore> store_;
  FakeDirectory directory_;
  RecordingSink told_;
};

TEST_F(KeyBookTest, TheFirstKeyIsPinnedAndLookedUpOnce) {
  Identity bob = Identity::Generate();
  directory_.keys["bob"] = bob.public_key();
  auto book = NewBook();
  EXPECT_THAT(book->KeyFor("bob"), IsOk());
  EXPECT_EQ(*book->KeyFor("Bob"), bob.public_key());
  EXPECT_EQ(directory_.lookups, 1);
  // Kept across a restart, in the store.
  directory_.down = true;
  EXPECT_EQ(*NewBook()->KeyFor("bob"), bob.public_key());
  // A lab peer's name needs no lookup; a name without a key is plain.
  EXPECT_EQ(*book->KeyFor("Davide De Rosa"), std::nullopt);
  EXPECT_THAT(book->KeyFor("carol"), StatusIs(absl::StatusCode::kUnavailable));
  directory_.down = false;
  EXPECT_EQ(*book->KeyFor("carol"), std::nullopt);
}

TEST_F(KeyBookTest, AChangedKeyBlocksTheNameUntilTrust) {
  Identity bob = Identity::Generate();
  Identity thief = Identity::Generate();
  directory_.keys["bob"] = bob.public_key();
  auto book = NewBook();
  ASSERT_THAT(book->KeyFor("bob"), IsOk());
  directory_.keys["bob"] = thief.public_key();
  book->Listed("bob", thief.public_key());
  book->Listed("bob", thief.public_key());  // Told once.
  std::vector<PeerEvent> told = told_.Events();
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].kind, EventKind::kError);
  EXPECT_EQ(told[0].text,
            KeyBook::ChangedText("bob", bob.public_key(), thief.public_key()));
  EXPECT_THAT(told[0].text, HasSubstr("check with bob, then /trust bob"));
  EXPECT_THAT(book->KeyFor("bob"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("changed")));
  KeyView view = book->Verify("bob");
  EXPECT_TRUE(view.changed);
  EXPECT_EQ(view.pinned, bob.public_key());
  EXPECT_EQ(view.listed, std::optional<PublicKey>(thief.public_key()));
  auto trusted = book->Trust("bob");
  ASSERT_THAT(trusted, IsOk());
  EXPECT_EQ(*book->KeyFor("bob"), thief.public_key());
  EXPECT_EQ(*NewBook()->KeyFor("bob"), thief.public_key());
}

class EnvelopeTest : public KeyBookTest {
 protected:
  void SetUp() override {
    KeyBookTest::SetUp();
    directory_.keys["alice"] = alice_.public_key();
    directory_.keys["bob"] = bob_.public_key();
    book_ = NewBook();
  }
  Identity alice_ = Identity::Generate();
  Identity bob_ = Identity::Generate();
  std::unique_ptr<KeyBook> book_;
};

TEST_F(EnvelopeTest, ForgedAndSpoofedMessagesAreRefusedAndLoggedOncePerMinute) {
  // bob's side: alice has a key in the registry.
  Envelope bob(std::string("bob"), bob_, book_.get(), clock_);
  PairCipher mallory(Identity::Generate());
  ::Message forged =
      *SealMessage(mallory, bob_.public_key(), Hello("alice", "bob"));
  EXPECT_THAT(bob.Unwrap(forged, true),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ::Message plain = ToProto(Hello("alice", "bob"));
  EXPECT_THAT(bob.Unwrap(plain, true),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(bob.refusals_logged(), 1);
  clock_.Advance(Millis(61000));
  EXPECT_THAT(bob.Unwrap(plain, true),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(bob.refusals_logged(), 2);
  // A name without a key: plain, shown unverified.
  ::Message lab = ToProto(Hello("Davide", "bob"));
  auto shown = bob.Unwrap(lab, true);
  ASSERT_THAT(shown, IsOk());
  EXPECT_TRUE(shown->unverified);
  // The real alice.
  Envelope alice(std::string("alice"), alice_, book_.get(), clock_);
  auto wrapped = alice.Wrap(Hello("alice", "bob"));
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_FALSE(wrapped->sealed().empty());
  auto opened = bob.Unwrap(*wrapped, true);
  ASSERT_THAT(opened, IsOk());
  EXPECT_FALSE(opened->unverified);
  EXPECT_EQ(opened->text, "hello bob");
  // To a recipient with no key: plain.
  auto to_lab = alice.Wrap(Hello("alice", "Davide"));
  ASSERT_THAT(to_lab, IsOk());
  EXPECT_TRUE(to_lab->sealed().empty());
  EXPECT_EQ(to_lab->msg(), "hello Davide");
  // The registry away and the sender not pinned: try again later.
  directory_.down = true;
  EXPECT_THAT(bob.Unwrap(ToProto(Hello("carol", "bob")), true),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(EnvelopeTest, GroupMessagesAreAlwaysSealed) {
  Envelope alice(std::string("alice"), alice_, book_.get(), clock_);
  Envelope bob(std::string("bob"), bob_, book_.get(), clock_);
  auto wrapped = alice.Wrap(GroupHello("alice", "bob"));
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_FALSE(wrapped->sealed().empty());
  EXPECT_FALSE(HasGroupFields(*wrapped));
  auto opened = bob.Unwrap(*wrapped, true);
  ASSERT_THAT(opened, IsOk());
  EXPECT_FALSE(opened->unverified);
  EXPECT_EQ(opened->group_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(opened->group_version, 7);
  // Never plain: not to a recipient without a key...
  EXPECT_THAT(alice.Wrap(GroupHello("alice", "Davide")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(alice.Wrap(GroupHello("alice", "Davide"), /*for_mailbox=*/true),
              StatusIs(absl::StatusCode::kUnavailable));
  // ...and a plain one is refused as malformed, from a name with a key or
  // without one (a lab peer), by either authenticator, before any lookup.
  const int logged = bob.refusals_logged();
  const int lookups = directory_.lookups;
  EXPECT_THAT(
      bob.Unwrap(ToProto(GroupHello("alice", "bob")), true),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("always sealed")));
  ::Message lab_group = ToProto(Hello("Davide", "bob"));
  lab_group.set_group_id("0123456789abcdef0123456789abcdef");
  EXPECT_THAT(bob.Unwrap(lab_group, true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ::Message stranger_group = ToProto(Hello("dora", "bob"));
  stranger_group.set_group_version(1);
  EXPECT_THAT(bob.Unwrap(stranger_group, /*may_wait=*/false),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(directory_.lookups, lookups);
  EXPECT_EQ(bob.refusals_logged(), logged);
  EXPECT_THAT(PlainAuthenticator().Unwrap(lab_group, true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A lab peer's plain message is shown as before.
  auto lab = PlainAuthenticator().Unwrap(ToProto(Hello("Davide", "bob")), true);
  ASSERT_THAT(lab, IsOk());
  EXPECT_TRUE(lab->unverified);
  EXPECT_TRUE(lab->group_id.empty());
}

}  // namespace
}  // namespace chat::peer
