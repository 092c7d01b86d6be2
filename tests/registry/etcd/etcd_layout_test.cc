// The etcd backend's keys, lease ids and value codecs, without etcd.

#include "registry/etcd/etcd_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace chat::registry::etcd {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

PublicKey KeyOf(uint8_t fill) {
  PublicKey key;
  key.bytes.fill(fill);
  return key;
}

TEST(EtcdLayoutTest, KeysAreLowercasedUnderTheRoot) {
  EtcdLayout layout("/chat/test");
  EXPECT_EQ(layout.root(), "/chat/test/");
  EXPECT_EQ(layout.Name("Alice"), "/chat/test/names/alice");
  EXPECT_EQ(layout.Binding("Alice"), "/chat/test/bindings/alice");
  EXPECT_EQ(layout.Static("Lab"), "/chat/test/statics/lab");
  EXPECT_EQ(layout.End("Bob"), "/chat/test/ends/bob");
  EXPECT_EQ(layout.AdminTokenHash(), "/chat/test/admin/token_hash");
}

// The store reads everything under its root (snapshot, watch): the mail
// must be under a root that neither contains it nor is contained in it.
TEST(EtcdLayoutTest, TheStoreAndTheMailboxHaveRootsThatDoNotNest) {
  EXPECT_EQ(StoreRoot("/chat/v1/"), "/chat/v1/registry/");
  EXPECT_EQ(MailboxRoot("/chat/v1"), "/chat/v1/mailbox/");
  const std::string store = StoreRoot("/chat/v1/");
  const std::string mail = MailboxRoot("/chat/v1/");
  EXPECT_NE(mail.compare(0, store.size(), store), 0);
  EXPECT_NE(store.compare(0, mail.size(), mail), 0);
}

TEST(EtcdLayoutTest, TheGroupsHaveARootOfTheirOwn) {
  EXPECT_EQ(GroupsRoot("/chat/v1"), "/chat/v1/groups/");
  const std::string groups = GroupsRoot("/chat/v1/");
  for (const std::string& other :
       {StoreRoot("/chat/v1/"), MailboxRoot("/chat/v1/")}) {
    EXPECT_NE(groups.compare(0, other.size(), other), 0);
    EXPECT_NE(other.compare(0, groups.size(), groups), 0);
  }
}

TEST(EtcdLayoutTest, OwnersAreHexSoTheirBytesNeverSplitAKey) {
  EtcdLayout layout;
  const std::string owner = std::string("k/\0\xff", 4);
  EXPECT_EQ(layout.OwnerPrefix(owner), "/chat/v1/owners/6b2f00ff/");
  EXPECT_EQ(layout.Owner(owner, "Bob"), "/chat/v1/owners/6b2f00ff/bob");
  EXPECT_EQ(layout.OwnerRev(owner), "/chat/v1/owner_rev/6b2f00ff");
}

TEST(EtcdLayoutTest, ParseTellsNamesAndBindingsFromTheRest) {
  EtcdLayout layout;
  auto name = layout.Parse(layout.Name("Carol"));
  EXPECT_EQ(name.kind, EtcdLayout::Parsed::Kind::kName);
  EXPECT_EQ(name.name_key, "carol");
  auto binding = layout.Parse(layout.Binding("carol"));
  EXPECT_EQ(binding.kind, EtcdLayout::Parsed::Kind::kBinding);
  EXPECT_EQ(binding.name_key, "carol");
  EXPECT_EQ(layout.Parse(layout.Owner("o", "carol")).kind,
            EtcdLayout::Parsed::Kind::kOther);
  EXPECT_EQ(layout.Parse(layout.NamesPrefix()).kind,
            EtcdLayout::Parsed::Kind::kOther);
  EXPECT_EQ(layout.Parse("/other/names/carol").kind,
            EtcdLayout::Parsed::Kind::kOther);
}

TEST(EtcdLayoutTest, LeaseIdsCarryTheEtcdLease) {
  const std::string id = MakeLeaseId(0x694d7d6c1a2b3c4d, "s3cr3t");
  EXPECT_EQ(id, "694d7d6c1a2b3c4d.s3cr3t");
  auto parsed = ParseLeaseId(id);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->etcd_lease, 0x694d7d6c1a2b3c4d);
  EXPECT_EQ(parsed->secret, "s3cr3t");
  for (const char* bad :
       {"", "abc", "694d7d6c1a2b3c4d.", ".secret", "0000000000000000.secret",
        "694d7d6c1a2b3c4g.s", "694d7d6c1a2b3c4.secret"}) {
    EXPECT_THAT(ParseLeaseId(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(EtcdLayoutTest, NameRecordsRoundTrip) {
  Record leased;
  leased.name = "Alice";
  leased.address = "10.0.0.1:50051";
  leased.lease_id = MakeLeaseId(42, "secret");
  leased.public_key = KeyOf(7);
  leased.ttl = Millis(10000);
  leased.services = "chat,greet";
  leased.client = "10.0.0.9";
  auto back = DecodeName(EncodeName(leased), 42);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->name, "Alice");
  EXPECT_EQ(back->address, leased.address);
  EXPECT_EQ(back->lease_id, leased.lease_id);
  EXPECT_EQ(back->public_key, leased.public_key);
  EXPECT_EQ(back->ttl, leased.ttl);
  EXPECT_EQ(back->services, leased.services);
  EXPECT_EQ(back->client, leased.client);

  Record fixed;
  fixed.name = "lab";
  fixed.address = "127.0.0.1:9";
  fixed.services = "chat";
  auto fixed_back = DecodeName(EncodeName(fixed), 0);
  ASSERT_THAT(fixed_back, IsOk());
  EXPECT_TRUE(fixed_back->is_static());
  EXPECT_FALSE(fixed_back->public_key.has_value());
}

TEST(EtcdLayoutTest, BindingsRoundTripOnlineAndReserved) {
  BindingRecord online{"Bob", KeyOf(3), absl::InfiniteFuture(), 1000};
  auto back = DecodeBinding(EncodeBinding(online, 77));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->binding, online);
  EXPECT_EQ(back->online_lease, 77);

  BindingRecord reserved{"Bob", KeyOf(3), absl::FromUnixMillis(123456789),
                         2000};
  auto reserved_back = DecodeBinding(EncodeBinding(reserved, 0));
  ASSERT_THAT(reserved_back, IsOk());
  EXPECT_EQ(reserved_back->binding, reserved);
  EXPECT_EQ(reserved_back->online_lease, 0);
}

TEST(EtcdLayoutTest, DamagedValuesAreDataLoss) {
  EXPECT_THAT(DecodeName("\xff\xff\xff", 1),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeBinding("\xff\xff\xff"),
              StatusIs(absl::StatusCode::kDataLoss));
  // A key of the wrong length (field 2, 3 bytes).
  EXPECT_THAT(DecodeBinding(std::string("\x12\x03"
                                        "abc",
                                        5)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("32")));
}

}  // namespace
}  // namespace chat::registry::etcd
