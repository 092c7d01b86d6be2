#include "registry/groups/group_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kGroupId[] = "0123456789abcdef0123456789abcdef";
constexpr int64_t kSignedAt = 1'700'000'000'000;

// Real keys: what is signed is checked by libsodium, as members will.
class GroupStateTest : public ::testing::Test {
 protected:
  // Version 1: alice owns it, bob is a member.
  GroupState Genesis() const {
    GroupState state;
    state.group_id = kGroupId;
    state.version = 1;
    state.display_name = "Book club";
    state.owner = "Alice";
    state.members = {{"Alice", alice_.public_key()},
                     {"bob", bob_.public_key()}};
    state.signed_at_unix_ms = kSignedAt;
    return Signed(std::move(state), alice_);
  }

  // The unsigned next version of `current`, changed by `change`.
  static GroupState Next(const GroupState& current,
                         const std::function<void(GroupState&)>& change = {}) {
    GroupState next = current;
    next.version = current.version + 1;
    next.previous_hash = GroupStateHash(current);
    next.signed_at_unix_ms = current.signed_at_unix_ms + 1000;
    next.signature.clear();
    if (change) change(next);
    return next;
  }

  static GroupState Signed(GroupState state, const Identity& signer) {
    absl::StatusOr<GroupState> signed_state =
        SignGroupState(std::move(state), signer);
    EXPECT_THAT(signed_state, IsOk());
    return signed_state.ok() ? *std::move(signed_state) : GroupState();
  }

  static GroupMember Member(const std::string& name, const Identity& id) {
    return GroupMember{name, id.public_key()};
  }

  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity carol_ = Identity::Generate();
  const Identity stranger_ = Identity::Generate();
  const GroupLimits limits_{};
};

// Proto conversions.

TEST_F(GroupStateTest, RoundTripsThroughTheProto) {
  GroupState state = Genesis();
  GroupState next =
      Signed(Next(state, [&](GroupState& s) { s.ended = true; }), alice_);
  for (const GroupState& original : {state, next}) {
    v1::GroupState proto;
    GroupStateToProto(original, &proto);
    EXPECT_EQ(proto.members_size(), 2);
    EXPECT_EQ(proto.members(1).public_key(), bob_.public_key().Bytes());
    absl::StatusOr<GroupState> back = GroupStateFromProto(proto);
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(*back, original);
    EXPECT_EQ(GroupStateHash(*back), GroupStateHash(original));
  }
}

TEST_F(GroupStateTest, ToProtoClearsWhatWasThere) {
  v1::GroupState proto;
  proto.add_members()->set_name("leftover");
  GroupStateToProto(Genesis(), &proto);
  EXPECT_EQ(proto.members_size(), 2);
  EXPECT_EQ(proto.members(0).name(), "Alice");
}

TEST_F(GroupStateTest, FromProtoNamesTheBadField) {
  v1::GroupState good;
  GroupStateToProto(Genesis(), &good);

  v1::GroupState short_key = good;
  short_key.mutable_members(1)->set_public_key(std::string(31, 'k'));
  EXPECT_THAT(GroupStateFromProto(short_key),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("members[1].public_key is 31 bytes, not 32")));

  v1::GroupState bad_id = good;
  bad_id.set_group_id("not-hex");
  EXPECT_THAT(
      GroupStateFromProto(bad_id),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("group_id")));

  v1::GroupState unsigned_state = good;
  unsigned_state.clear_signature();
  EXPECT_THAT(GroupStateFromProto(unsigned_state),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("signature is 0 bytes, not 64")));

  // No limit applies here: the caller's limits are ValidateGroupState's.
  v1::GroupState many = good;
  for (int i = 0; i < 100; ++i) {
    GroupMember extra{absl::StrCat("m", i), stranger_.public_key()};
    v1::GroupMember* member = many.add_members();
    member->set_name(extra.name);
    member->set_public_key(extra.key.Bytes());
  }
  EXPECT_THAT(GroupStateFromProto(many), IsOk());
}

// Canonical bytes and the hash.

TEST_F(GroupStateTest, SignedBytesAreIndependentOfMemberOrder) {
  GroupState state = Genesis();
  state.members.push_back(Member("Carol", carol_));
  GroupState shuffled = state;
  shuffled.members = {state.members[2], state.members[0], state.members[1]};
  EXPECT_EQ(GroupStateSignedBytes(shuffled), GroupStateSignedBytes(state));

  // So a signature made over one order verifies in any other.
  GroupState signed_state = Signed(state, alice_);
  shuffled.signature = signed_state.signature;
  EXPECT_THAT(CheckGenesis(shuffled, limits_), IsOk());
  EXPECT_EQ(GroupStateHash(shuffled), GroupStateHash(signed_state));
}

TEST_F(GroupStateTest, SignedBytesChangeWithEveryField) {
  const GroupState base = Genesis();
  const std::vector<std::pair<std::string, std::function<void(GroupState&)>>>
      changes = {
          {"group_id", [](GroupState& s) { s.group_id[0] = 'f'; }},
          {"version", [](GroupState& s) { s.version = 2; }},
          {"previous_hash",
           [](GroupState& s) { s.previous_hash = std::string(32, 'h'); }},
          {"display_name", [](GroupState& s) { s.display_name = "Book Club"; }},
          {"owner", [](GroupState& s) { s.owner = "bob"; }},
          {"owner's case", [](GroupState& s) { s.owner = "alice"; }},
          {"a member's name", [](GroupState& s) { s.members[1].name = "Bob"; }},
          {"a member's key",
           [this](GroupState& s) { s.members[1].key = carol_.public_key(); }},
          {"a member more",
           [this](GroupState& s) {
             s.members.push_back(Member("carol", carol_));
           }},
          {"a member less", [](GroupState& s) { s.members.pop_back(); }},
          {"ended", [](GroupState& s) { s.ended = true; }},
          {"signed_at_unix_ms", [](GroupState& s) { s.signed_at_unix_ms++; }},
      };
  std::set<std::string> seen = {GroupStateSignedBytes(base)};
  for (const auto& [field, change] : changes) {
    GroupState changed = base;
    change(changed);
    EXPECT_TRUE(seen.insert(GroupStateSignedBytes(changed)).second) << field;
  }

  // The signature is not signed, but it is hashed.
  GroupState resigned = base;
  resigned.signature[0] ^= 1;
  EXPECT_EQ(GroupStateSignedBytes(resigned), GroupStateSignedBytes(base));
  EXPECT_NE(GroupStateHash(resigned), GroupStateHash(base));
}

TEST_F(GroupStateTest, BytesCannotMoveBetweenFields) {
  GroupState a = Genesis();
  GroupState b = Genesis();
  a.display_name = "ab";
  a.owner = "c";
  b.display_name = "a";
  b.owner = "bc";
  EXPECT_NE(GroupStateSignedBytes(a), GroupStateSignedBytes(b));
}

// The layout is a wire contract: other builds sign and check the same bytes.
TEST_F(GroupStateTest, SignedBytesArePinned) {
  GroupState state;
  state.group_id = kGroupId;
  state.version = 2;
  state.previous_hash = std::string(32, 'h');
  state.display_name = "G";
  state.owner = "b";
  PublicKey key_a, key_b;
  key_a.bytes.fill(0xaa);
  key_b.bytes.fill(0xbb);
  state.members = {{"b", key_b}, {"A", key_a}};
  state.ended = true;
  state.signed_at_unix_ms = 0x0102030405060708;

  std::string expected("chat-group-state-v1\0", 20);
  expected += std::string("\0\0\0\x20", 4) + kGroupId;
  expected += std::string("\0\0\0\0\0\0\0\x02", 8);
  expected += std::string("\0\0\0\x20", 4) + std::string(32, 'h');
  expected += std::string("\0\0\0\x01", 4) + "G";
  expected += std::string("\0\0\0\x01", 4) + "b";
  expected += std::string("\0\0\0\x02", 4);
  expected += std::string("\0\0\0\x01", 4) + "A";
  expected += std::string("\0\0\0\x20", 4) + std::string(32, '\xaa');
  expected += std::string("\0\0\0\x01", 4) + "b";
  expected += std::string("\0\0\0\x20", 4) + std::string(32, '\xbb');
  expected += std::string("\x01", 1);
  expected += "\x01\x02\x03\x04\x05\x06\x07\x08";
  EXPECT_EQ(GroupStateSignedBytes(state), expected);
  EXPECT_EQ(GroupStateHash(state).size(), kGroupHashBytes);
}

// Genesis.

TEST_F(GroupStateTest, GenesisSignedByItsOwnerIsAccepted) {
  EXPECT_THAT(CheckGenesis(Genesis(), limits_), IsOk());
}

TEST_F(GroupStateTest, GenesisSignedByAnyoneButTheOwnerIsRefused) {
  GroupState state = Genesis();
  for (const Identity* signer : {&bob_, &stranger_}) {
    EXPECT_THAT(CheckGenesis(Signed(state, *signer), limits_),
                StatusIs(absl::StatusCode::kUnauthenticated,
                         HasSubstr("not signed by \"Alice\"")));
  }
  // A stranger who lists itself as the owner's key makes a group of its own
  // that is valid, but not a change of alice's: its bytes differ, so its hash
  // and everything after it do.
  GroupState forged = state;
  forged.members[0].key = stranger_.public_key();
  forged = Signed(forged, stranger_);
  EXPECT_THAT(CheckGenesis(forged, limits_), IsOk());
  EXPECT_NE(GroupStateHash(forged), GroupStateHash(state));
}

TEST_F(GroupStateTest, GenesisMustBeVersionOneAndNotEnded) {
  GroupState later = Genesis();
  later.version = 2;
  later.previous_hash = std::string(32, 'h');
  EXPECT_THAT(CheckGenesis(Signed(later, alice_), limits_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not its creation")));

  GroupState ended = Genesis();
  ended.ended = true;
  EXPECT_THAT(CheckGenesis(Signed(ended, alice_), limits_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("cannot be created ended")));
}

TEST_F(GroupStateTest, AFieldChangedAfterSigningIsRefused) {
  const GroupState state = Genesis();
  const std::vector<std::function<void(GroupState&)>> tampers = {
      [](GroupState& s) { s.display_name = "Fight club"; },
      [this](GroupState& s) {
        s.members.push_back(Member("mallory", stranger_));
      },
      [this](GroupState& s) { s.members[1].key = stranger_.public_key(); },
      [](GroupState& s) { s.owner = "bob"; },
      [](GroupState& s) { s.signed_at_unix_ms += 1; },
      [](GroupState& s) { s.signature[10] ^= 0x40; },
  };
  for (size_t i = 0; i < tampers.size(); ++i) {
    GroupState tampered = state;
    tampers[i](tampered);
    EXPECT_THAT(CheckGenesis(tampered, limits_),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << "tamper " << i;
  }
}

// Successors.

TEST_F(GroupStateTest, TheOwnerChangesTheGroupAndHandsItOver) {
  const GroupState v1 = Genesis();
  const GroupState v2 =
      Signed(Next(v1,
                  [this](GroupState& s) {
                    s.members.push_back(Member("carol", carol_));
                    s.display_name = "Readers";
                  }),
             alice_);
  EXPECT_THAT(CheckSuccessor(v1, v2, limits_), IsOk());

  // Alice hands over to bob: she signs it, bob signs what follows.
  const GroupState v3 =
      Signed(Next(v2, [](GroupState& s) { s.owner = "BOB"; }), alice_);
  EXPECT_THAT(CheckSuccessor(v2, v3, limits_), IsOk());
  const GroupState v4 = Signed(
      Next(v3, [](GroupState& s) { s.members.erase(s.members.begin()); }),
      bob_);
  EXPECT_THAT(CheckSuccessor(v3, v4, limits_), IsOk());
  EXPECT_THAT(CheckSuccessor(v3, Signed(v4, alice_), limits_),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("not signed by \"BOB\"")));

  // The owner may leave by ending the group.
  const GroupState v5 = Signed(Next(v4,
                                    [](GroupState& s) {
                                      s.members = {s.members[1]};  // carol
                                      s.ended = true;
                                    }),
                               bob_);
  EXPECT_THAT(CheckSuccessor(v4, v5, limits_), IsOk());
}

TEST_F(GroupStateTest, TheOwnerMayReplaceItsOwnKey) {
  const GroupState v1 = Genesis();
  const Identity new_alice = Identity::Generate();
  const GroupState v2 = Signed(
      Next(v1,
           [&](GroupState& s) { s.members[0].key = new_alice.public_key(); }),
      alice_);
  EXPECT_THAT(CheckSuccessor(v1, v2, limits_), IsOk());
  EXPECT_THAT(CheckSuccessor(v2, Signed(Next(v2), new_alice), limits_), IsOk());
  EXPECT_THAT(CheckSuccessor(v2, Signed(Next(v2), alice_), limits_),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(GroupStateTest, ASuccessorSignedByAMemberOrAStrangerIsRefused) {
  const GroupState v1 = Genesis();
  const GroupState next = Next(v1, [this](GroupState& s) {
    s.members.push_back(Member("mallory", stranger_));
  });
  for (const Identity* signer : {&bob_, &stranger_}) {
    EXPECT_THAT(CheckSuccessor(v1, Signed(next, *signer), limits_),
                StatusIs(absl::StatusCode::kUnauthenticated,
                         HasSubstr("not signed by \"Alice\"")));
  }
  // Naming oneself the owner in the new state does not help: the signer is
  // the owner of the state before.
  GroupState takeover = next;
  takeover.owner = "bob";
  EXPECT_THAT(CheckSuccessor(v1, Signed(takeover, bob_), limits_),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(GroupStateTest, ASuccessorChangedAfterSigningIsRefused) {
  const GroupState v1 = Genesis();
  GroupState v2 = Signed(Next(v1), alice_);
  v2.members.push_back(Member("mallory", stranger_));
  EXPECT_THAT(CheckSuccessor(v1, v2, limits_),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(GroupStateTest, AWrongPreviousHashIsRefused) {
  const GroupState v1 = Genesis();
  GroupState wrong = Next(v1);
  wrong.previous_hash[0] ^= 1;
  EXPECT_THAT(CheckSuccessor(v1, Signed(wrong, alice_), limits_),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("does not chain to version 1")));

  // A fork: a second version 1 with the same id, other bytes. What follows
  // one does not follow the other.
  GroupState other_v1 = v1;
  other_v1.display_name = "Other";
  other_v1 = Signed(other_v1, alice_);
  EXPECT_THAT(CheckSuccessor(other_v1, Signed(Next(v1), alice_), limits_),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(GroupStateTest, ASkippedOrRepeatedVersionDoesNotFollow) {
  const GroupState v1 = Genesis();
  const GroupState v2 = Signed(Next(v1), alice_);
  GroupState skipped = Next(v1);
  skipped.version = 3;
  EXPECT_THAT(CheckSuccessor(v1, Signed(skipped, alice_), limits_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("versions in between are missing")));
  // Another version 2 after the registry took one: the loser re-bases.
  GroupState repeated = Next(v1, [](GroupState& s) { s.display_name = "X"; });
  EXPECT_THAT(CheckSuccessor(v2, Signed(repeated, alice_), limits_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("version 2 of group " + std::string(kGroupId) +
                                 " does not follow the latest, version 2 "
                                 "(that version is taken)")));
  EXPECT_THAT(CheckSuccessor(v2, v1, limits_),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(GroupStateTest, AStateOfAnotherGroupIsRefused) {
  const GroupState v1 = Genesis();
  GroupState other = Next(v1);
  other.group_id = "ffffffffffffffffffffffffffffffff";
  EXPECT_THAT(CheckSuccessor(v1, Signed(other, alice_), limits_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("of group ffffffffffffffffffffffffffffffff, "
                                 "not of group")));
}

TEST_F(GroupStateTest, NothingFollowsAnEndedState) {
  const GroupState v1 = Genesis();
  const GroupState ended =
      Signed(Next(v1, [](GroupState& s) { s.ended = true; }), alice_);
  ASSERT_THAT(CheckSuccessor(v1, ended, limits_), IsOk());
  EXPECT_THAT(CheckSuccessor(ended, Signed(Next(ended), alice_), limits_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("ended at version 2")));
}

TEST_F(GroupStateTest, AMalformedSuccessorIsInvalidBeforeAnythingElse) {
  const GroupState v1 = Genesis();
  GroupState next = Next(v1);
  next.members.push_back(Member("ALICE", stranger_));
  // Signed by the owner all the same (SignGroupState would refuse it).
  next.signature = alice_.Sign(GroupStateSignedBytes(next));
  EXPECT_THAT(CheckSuccessor(v1, next, limits_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("members[2].name \"ALICE\" is members[0]")));
}

// Validation.

TEST_F(GroupStateTest, DuplicateMembersAreRefusedRegardlessOfCase) {
  GroupState state = Genesis();
  state.members.push_back(Member("BoB", carol_));
  EXPECT_THAT(
      ValidateGroupState(state, limits_),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          HasSubstr("members[2].name \"BoB\" is members[1] (\"bob\") again")));
  // The same member twice, exactly, too.
  state.members.back() = state.members[1];
  EXPECT_THAT(ValidateGroupState(state, limits_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(GroupStateTest, MembersAreLimited) {
  GroupLimits limits;
  limits.max_members = 3;
  GroupState state = Genesis();
  state.members.push_back(Member("carol", carol_));
  EXPECT_THAT(CheckGenesis(Signed(state, alice_), limits), IsOk());
  state.members.push_back(Member("dave", stranger_));
  EXPECT_THAT(CheckGenesis(Signed(state, alice_), limits),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("4 members; a group may have at most 3")));

  GroupState crowd = Genesis();
  for (int i = 0; i < 63; ++i) {
    crowd.members.push_back({absl::StrCat("m", i), stranger_.public_key()});
  }
  EXPECT_THAT(
      ValidateGroupState(Signed(crowd, alice_), GroupLimits()),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("at most 64")));
  crowd.members.pop_back();
  EXPECT_THAT(ValidateGroupState(Signed(crowd, alice_), GroupLimits()), IsOk());
}

TEST_F(GroupStateTest, MalformedFieldsAreNamed) {
  struct Case {
    std::string what;
    std::function<void(GroupState&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"short id", [](GroupState& s) { s.group_id.pop_back(); },
       "group_id must be 32 lowercase hex characters"},
      {"long id", [](GroupState& s) { s.group_id += "0"; }, "group_id"},
      {"upper-case id", [](GroupState& s) { s.group_id[0] = 'A'; }, "group_id"},
      {"version 0", [](GroupState& s) { s.version = 0; }, "version is 0"},
      {"negative version", [](GroupState& s) { s.version = -1; },
       "version is -1"},
      {"hash on version 1",
       [](GroupState& s) { s.previous_hash = std::string(32, 'h'); },
       "previous_hash must be empty for version 1"},
      {"no hash on version 2", [](GroupState& s) { s.version = 2; },
       "previous_hash is 0 bytes, not 32"},
      {"short hash",
       [](GroupState& s) {
         s.version = 2;
         s.previous_hash = std::string(31, 'h');
       },
       "previous_hash is 31 bytes, not 32"},
      {"empty display name", [](GroupState& s) { s.display_name.clear(); },
       "display_name is empty"},
      {"long display name",
       [](GroupState& s) { s.display_name = std::string(65, 'x'); },
       "display_name is 65 bytes; at most 64"},
      {"bad UTF-8", [](GroupState& s) { s.display_name = "caf\xc3"; },
       "display_name is not valid UTF-8"},
      {"escape", [](GroupState& s) { s.display_name = "x\x1b[2J"; },
       "display_name contains a control character (at byte 1)"},
      {"newline", [](GroupState& s) { s.display_name = "a\nb"; },
       "control character"},
      {"DEL", [](GroupState& s) { s.display_name = "a\x7f"; },
       "control character"},
      {"C1", [](GroupState& s) { s.display_name = "a\xc2\x9b"; },
       "control character"},
      {"bad owner", [](GroupState& s) { s.owner = "-alice"; },
       "owner: name \"-alice\" must start with a letter or a digit"},
      {"owner not a member", [](GroupState& s) { s.owner = "carol"; },
       "owner \"carol\" is not a member"},
      {"bad member name", [](GroupState& s) { s.members[1].name = "b b"; },
       "members[1].name: name \"b b\" may contain only"},
      {"empty member name", [](GroupState& s) { s.members[1].name.clear(); },
       "members[1].name: name is empty"},
      {"long member name",
       [](GroupState& s) { s.members[1].name = std::string(65, 'b'); },
       "members[1].name"},
      {"negative time", [](GroupState& s) { s.signed_at_unix_ms = -1; },
       "signed_at_unix_ms is -1"},
      {"short signature", [](GroupState& s) { s.signature.pop_back(); },
       "signature is 63 bytes, not 64"},
      {"no signature", [](GroupState& s) { s.signature.clear(); },
       "signature is 0 bytes, not 64 (the state is not signed)"},
  };
  for (const Case& c : cases) {
    GroupState state = Genesis();
    c.change(state);
    EXPECT_THAT(
        ValidateGroupState(state, limits_),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.what;
  }
}

TEST_F(GroupStateTest, DisplayNamesMayBeAnyTextWithoutControls) {
  GroupState state = Genesis();
  const std::vector<std::string> names = {"Ünïcödé 名前 🙂",
                                          std::string(64, 'x'),
                                          "a\xc2\xa0"
                                          "b"};  // NBSP: not C1.
  for (const std::string& name : names) {
    state.display_name = name;
    EXPECT_THAT(ValidateGroupState(state, limits_), IsOk()) << name;
  }
}

TEST_F(GroupStateTest, AnEndedStateNeedNotListItsOwner) {
  GroupState state = Genesis();
  state.ended = true;
  state.members.erase(state.members.begin());
  EXPECT_THAT(ValidateGroupState(state, limits_), IsOk());
  state.members.clear();
  EXPECT_THAT(ValidateGroupState(state, limits_), IsOk());
}

TEST_F(GroupStateTest, SigningRefusesAMalformedState) {
  GroupState state = Genesis();
  state.display_name.clear();
  EXPECT_THAT(
      SignGroupState(state, alice_),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("display_name")));
  // An unsigned state is signable; the limit is the verifier's.
  GroupState unsigned_state = Genesis();
  unsigned_state.signature.clear();
  for (int i = 0; i < 100; ++i) {
    unsigned_state.members.push_back(
        {absl::StrCat("m", i), stranger_.public_key()});
  }
  EXPECT_THAT(SignGroupState(unsigned_state, alice_), IsOk());
}

TEST(NewGroupIdTest, IsAFreshValidId) {
  const std::string a = NewGroupId();
  const std::string b = NewGroupId();
  EXPECT_EQ(a.size(), kGroupIdHexChars);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(GroupStateTest, MemberKeysAreFoundByNameInAnyCase) {
  const GroupState state = Genesis();
  EXPECT_EQ(GroupMemberKey(state, "ALICE"), alice_.public_key());
  EXPECT_EQ(GroupMemberKey(state, "bob"), bob_.public_key());
  EXPECT_EQ(GroupMemberKey(state, "carol"), std::nullopt);
}

// What members are told.

TEST_F(GroupStateTest, DiffSaysWhatChanged) {
  const GroupState before = Genesis();
  GroupState after = Next(before, [this](GroupState& s) {
    s.members = {Member("zed", stranger_), Member("Alice", alice_),
                 Member("carol", carol_)};
    s.owner = "carol";
    s.display_name = "Readers";
  });
  GroupChange change = DiffGroupStates(before, after);
  EXPECT_THAT(change.added,
              ElementsAre(Member("carol", carol_), Member("zed", stranger_)));
  EXPECT_THAT(change.removed, ElementsAre(Member("bob", bob_)));
  EXPECT_TRUE(change.rekeyed.empty());
  EXPECT_EQ(change.new_owner, "carol");
  EXPECT_EQ(change.new_display_name, "Readers");
  EXPECT_FALSE(change.ended);
  EXPECT_FALSE(change.empty());
}

TEST_F(GroupStateTest, DiffReportsKeyChangesAndTheEnd) {
  const GroupState before = Genesis();
  GroupState after = Next(before, [this](GroupState& s) {
    s.members[1] = Member("BOB", stranger_);
    s.owner = "ALICE";
    s.ended = true;
  });
  GroupChange change = DiffGroupStates(before, after);
  EXPECT_THAT(change.rekeyed, ElementsAre(Member("BOB", stranger_)));
  EXPECT_TRUE(change.added.empty());
  EXPECT_TRUE(change.removed.empty());
  EXPECT_EQ(change.new_owner, std::nullopt);  // Same name, another case.
  EXPECT_TRUE(change.ended);
  EXPECT_FALSE(DiffGroupStates(after, after).ended);
}

TEST_F(GroupStateTest, DiffOfAStateWithOnlyANewTimeIsEmpty) {
  const GroupState before = Genesis();
  EXPECT_TRUE(DiffGroupStates(before, Next(before)).empty());
}

}  // namespace
}  // namespace chat::registry
